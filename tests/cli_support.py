"""Running the command line in-process and checking how it reports a user's mistake."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from cli import cli


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
