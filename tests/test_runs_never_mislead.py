"""Runs that never mislead (issue L): evaluations of a run still training, empty class groups in
JSON and tables, evaluations that add up instead of replacing each other, reports of short runs.
Each test names the defect it catches."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bcl_dali.data.generated_jpegs import write_jpeg_folder
from bcl_dali.runs.rundir import RunDir
from tests.cli_support import assert_one_line_error, run

NO_MANY_CLASS = [40, 20, 12, 10]
"""No class above 100 training images: the Many group of image folders is empty."""


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    """A folder run of 0 epochs (the untrained network) whose Many group is empty."""
    root = tmp_path_factory.mktemp("runs")
    tree = write_jpeg_folder(root / "tree", NO_MANY_CLASS, 3, sides=(16, 24))
    out = root / "run"
    result = run("train", "--dataset", "folder", "--data-dir", tree, "--arch", "resnet18", "--width", "16",
                 "--image-size", "16", "--batch-size", "16", "--epochs", "0", "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _strict(path: Path) -> dict:
    def refuse(constant: str):
        raise ValueError(f"{path} holds {constant}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.slow
def test_an_empty_group_is_null_in_json_and_na_in_tables(untrained, tmp_path):
    """Before, `--json` and eval-epochE.json held `"many": NaN` (strict parsers refuse it) and the
    several-runs table printed `nan +- nan`. Mutations caught: evaluate storing the group's NaN; the
    table printing the number; write_json without its NaN guard (with the first mutation)."""
    report = tmp_path / "eval.json"
    result = run("eval", untrained, "--shots", "full", "--json", report)
    assert result.exit_code == 0, result.output
    written = _strict(report)
    assert written["shots"]["full"]["many"] is None and written["shots"]["full"]["few"] is not None
    assert _strict(untrained / "eval-epoch0.json")["shots"]["full"]["many"] is None
    row = next(line for line in result.stdout.splitlines() if line.startswith("full-shot"))
    assert "n/a" in row and "nan" not in row
    both = run("eval", untrained, untrained, "--shots", "full", "--json", tmp_path / "both.json")
    assert both.exit_code == 0, both.output
    assert "nan" not in both.stdout and "n/a" in both.stdout
    assert _strict(tmp_path / "both.json")["across_runs"]["full"]["many"] == {"mean": None, "std": None}


@pytest.mark.slow
def test_an_evaluation_with_other_shots_keeps_the_earlier_ones(untrained):
    """`eval --shots 10` after `eval --shots full` replaced eval-epochE.json, losing the full-shot
    result. Mutation caught: the earlier shots not merged."""
    assert run("eval", untrained, "--shots", "full").exit_code == 0
    assert run("eval", untrained, "--shots", "10").exit_code == 0
    kept = _strict(untrained / "eval-epoch0.json")
    assert set(kept["shots"]) == {"full", "10"}


def test_a_run_still_training_is_not_evaluated_from_its_stale_checkpoint(untrained):
    """While `train` holds the run, last.pt may be a minute or more behind: `eval RUN` evaluated epoch 0
    of a run in progress and wrote eval-epoch0.json, which `report` then showed as the run's. Now it
    refuses in one line; a checkpoint named explicitly is evaluated as the epoch it holds. Mutation
    caught: the lock not consulted."""
    with RunDir(untrained).lock():
        result = run("eval", untrained, "--shots", "full")
        assert_one_line_error(result, "is still training")
        named = run("eval", untrained / "last.pt", "--shots", "full")
    assert named.exit_code == 0, named.output
    assert "at epoch 0" in named.stdout


@pytest.mark.slow
def test_a_report_says_which_epoch_it_evaluated_and_has_no_empty_tables(tmp_path):
    """A one-epoch run has no weights yet: the report said nothing but a table header. And an
    evaluation of an earlier epoch than the run reached is labelled as such. Mutations caught: the
    header printed without rows; the evaluated epoch not shown."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    args = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "32", "--device", "cpu")
    assert run("train", *args, "--epochs", "0", "--out", out).exit_code == 0
    assert run("eval", out, "--shots", "full").exit_code == 0
    assert run("train", "--resume", out, "--epochs", "1").exit_code == 0
    assert run("report", out).exit_code == 0
    report = (out / "report" / "report.md").read_text()
    assert "| run | epoch | Many | Medium | Few | rho |" not in report
    assert "No weights to show yet" in report
    assert "| evaluated at epoch | 0 (of 1 trained) |" in report


@pytest.mark.slow
def test_more_epochs_on_resume_are_recorded_with_the_schedule_they_imply(tmp_path):
    """--epochs on --resume was accepted silently: not in metrics.jsonl, the learning rate jumping back up
    the new cosine. Now the change, the rate it implies and the rate the old schedule had are recorded and
    said. Mutation caught: epochs among the operational fields (changeable without a record)."""
    out = tmp_path / "run"
    args = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "32", "--device", "cpu",
            "--warmup-epochs", "1")
    assert run("train", *args, "--epochs", "2", "--out", out).exit_code == 0
    resumed = run("train", "--resume", out, "--epochs", "3")
    assert resumed.exit_code == 0, resumed.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (change,) = [r for r in records if "resumed_with" in r]
    assert change["epoch"] == 2 and change["resumed_with"] == {"epochs": [2, 3]}
    schedule = change["schedule"]
    assert schedule["ends_at_epoch"] == 3 and schedule["lr_now"] > 100 * schedule["lr_before"]
    assert "--epochs 2 -> 3: the cosine schedule now ends at epoch 3" in resumed.output
    assert [r["epoch"] for r in records if "loss" in r] == [1, 2, 3]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path]:
    """A folder run stopped after 1 of 2 epochs, and its data (list files)."""
    root = tmp_path_factory.mktemp("resume")
    data = write_jpeg_folder(root / "data", [30, 20, 10], 2, sides=(16, 24))
    out = root / "run"
    result = run("train", *_folder_flags(data), "--epochs", "2", "--stop-after", "1", "--out", out)
    assert result.exit_code == 0, result.output
    return data, out


def _folder_flags(data: Path) -> tuple:
    return ("--dataset", "folder", "--data-dir", data, "--train-list", data / "train.txt", "--test-list",
            data / "test.txt", "--arch", "resnet18", "--width", "16", "--image-size", "16", "--batch-size", "20",
            "--device", "cpu")


def _copy_run(folder_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    import shutil
    data, out = folder_run
    return Path(shutil.copytree(data, tmp_path / "data", copy_function=shutil.copy)), Path(
        shutil.copytree(out, tmp_path / "run"))


def test_a_resume_after_touching_or_copying_the_data_goes_on(folder_run, tmp_path):
    """Times changed (`touch`, a `cp -r` without -p, here the data copied elsewhere with its lists):
    the resume re-reads only those files, finds the same bytes, and goes on. Before, it was refused for
    good with a message naming neither the file nor the cause. Mutation caught: the time part of the
    identity (data compared by paths, sizes and times)."""
    data, out = _copy_run(folder_run, tmp_path)
    for image in data.rglob("*.jpg"):
        os.utime(image, None)
    for name in ("train.txt", "test.txt"):
        (data / name).write_text((folder_run[0] / name).read_text())
    result = run("train", "--resume", out, "--data-dir", data, "--train-list", data / "train.txt",
                 "--test-list", data / "test.txt")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)] == [1, 2]


def test_a_resume_names_the_file_whose_bytes_changed(folder_run, tmp_path):
    """A file with the same size and other bytes: the resume names it and says how it changed.
    Mutation caught: content hashes left out of the comparison."""
    data, out = _copy_run(folder_run, tmp_path)
    victim = data / "train" / "class01" / "00003.jpg"
    payload = bytearray(victim.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    victim.write_bytes(bytes(payload))
    result = run("train", "--resume", out, "--data-dir", data, "--train-list", data / "train.txt",
                 "--test-list", data / "test.txt")
    assert_one_line_error(result, "train/class01/00003.jpg changed since the run started (same size, other bytes")


def test_a_resume_of_untouched_data_reads_no_file(folder_run, tmp_path, monkeypatch):
    """Sizes and times as recorded: the recorded hashes stand, nothing is read. Mutation caught: every
    file re-hashed on resume."""
    data, out = _copy_run(folder_run, tmp_path)
    import bcl_dali.data.files as files

    def refuse(path):
        raise AssertionError(f"{path} was read")

    result = run("train", "--resume", out, "--data-dir", folder_run[0], "--stop-after", "1")
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(files, "_content_hash", refuse)
    result = run("train", "--resume", out, "--data-dir", folder_run[0])
    assert result.exit_code == 0, result.output


def test_outside_a_terminal_a_long_epoch_still_shows_progress(tmp_path, monkeypatch):
    """A job's log (stderr not a terminal) got nothing between an epoch's label and its end line: the
    progress bar cannot redraw there. Now a line every PROGRESS_SECONDS (here, every step). Mutation
    caught: the plain lines dropped."""
    import bcl_dali.training as run_training
    monkeypatch.setattr(run_training, "PROGRESS_SECONDS", 0.0)
    result = run("train", "--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "32",
                 "--device", "cpu", "--epochs", "1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    steps = [line for line in result.stderr.splitlines() if line.startswith("epoch 1/1: step ")]
    assert len(steps) >= 2 and "samples/s" in steps[-1]


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


def test_help_imports_neither_torchvision_nor_dali():
    """`cli.py --help` took 4 s, 2.3 of them importing torchvision: commands now import what they run
    when they run. Mutation caught: cli.py importing the benchmarks (and through them DALI and
    torchvision) at the top."""
    import subprocess
    import sys
    code = ("import runpy, sys; sys.argv = ['cli.py', '--help']\n"
            "try:\n    runpy.run_path('cli.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torchvision', 'nvidia.dali') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
