"""The command line as a whole: help, and user errors as one line with a non-zero exit."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_support import assert_one_line_error, run
from tests.paths import REPO


TINY = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64", "--device", "cpu",
        "--workers", "1")


def test_bare_bench_shows_its_help() -> None:
    result = run("bench")
    assert result.exit_code == 0 and "pipeline" in result.output and "train" in result.output


@pytest.mark.parametrize("args,fragment", [
    (("train", "--split-seed", "-3"), "--split-seed must be an integer in [0, 4294967295]"),
    (("show", "--out", "/proc/views.png"), "cannot write /proc/views.png"),
    (("show", "--out", "/nonexistent-folder/views.png"), "folder /nonexistent-folder does not exist"),
])
def test_seeds_and_unwritable_pictures_are_one_line(tmp_path: Path, monkeypatch, args, fragment) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run(*args), fragment)
    assert list(tmp_path.iterdir()) == []


def test_help_offers_only_what_the_command_takes():
    """`show --help` offered `folder`, then refused it; `--width` and `--image-size` said x>=1 where the
    real minimum is 16. Mutations caught: show's choices of every data set; the ranges from 1."""
    show = run("show", "--help").output
    choices = show.split("--dataset [")[1].split("]")[0]
    assert "synthetic-lt" in choices and "folder" not in choices
    train = run("train", "--help").output
    for flag in ("--width", "--image-size"):
        assert "x>=16" in train.split(flag)[1].split("\n  --")[0]
    assert_one_line_error(run("train", "--image-size", "8", "--dataset", "folder", "--data-dir", "/data"),
                          "8 is not in the range x>=16")


@pytest.mark.slow
def test_help_imports_neither_torchvision_nor_dali():
    """`cli.py --help` took 4 s, 2.3 of them importing torchvision: commands now import what they run
    when they run. Mutation caught: cli.py importing the benchmarks (and through them DALI and
    torchvision) at the top."""
    import subprocess
    import sys
    code = ("import runpy, sys; sys.argv = ['cli.py', '--help']\n"
            "try:\n    runpy.run_path('cli.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torchvision', 'nvidia.dali') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_messages_name_the_command_as_the_user_called_it(tmp_path):
    """`bcl-dali` after an install, `cli.py` in a checkout: the commands a message suggests are the
    user's own. Mutation caught: `cli.py` written into the message."""
    from click.testing import CliRunner

    from bcl_dali.command import cli

    for name in ("bcl-dali", "cli.py"):
        result = CliRunner().invoke(cli, ["eval", str(tmp_path / "a"), str(tmp_path / "b"), "--plot",
                                          str(tmp_path / "p.png")], prog_name=name)
        assert result.exit_code == 2 and f"compare runs with `{name} report`" in result.stderr, result.output
