"""Running the command line in-process and checking how it reports a user's mistake."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from bcl_dali.command import cli


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="cli.py")


def assert_one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def assert_error_after_progress(result: Result, fragment: str, progress: tuple[str, ...] = ("epoch ",)) -> None:
    """A refusal in the middle of training: exit 2, and after the progress lines on stderr, one
    line "error: ..." that ends the output; no traceback."""
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert lines and lines[-1].startswith("error: ") and fragment in lines[-1], result.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, result.stderr
    assert all(line.startswith(progress) for line in lines[:-1]), result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
