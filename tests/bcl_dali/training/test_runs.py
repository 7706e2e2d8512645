"""`cli.py train` end to end on the CPU at a small size: all four methods, exact resume, refusals."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bcl_dali.errors import UserError
from bcl_dali.methods.simclr import SimCLRMethod
from bcl_dali.runs.checkpoint import load_checkpoint
from bcl_dali.training import start_run
from tests.cli_support import assert_one_line_error, run
from tests.folders import SIZE, TRAIN_COUNTS, list_flags

SMALL = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64",
         "--device", "cpu", "--workers", "2", "--seed", "3")
"""3 classes: 499 long-tailed images (450, 45, 4), 8 steps an epoch."""

TINY = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64", "--device", "cpu",
        "--workers", "1")
FOLDER_RUN = ("--arch", "resnet18", "--width", "16", "--image-size", str(SIZE), "--batch-size", "64", "--workers", "2")


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_zero_epochs_writes_the_untrained_network(tmp_path):
    out = tmp_path / "untrained"
    result = run("train", "--epochs", "0", "--out", out, *SMALL)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "last.pt")["epoch"] == 0
    assert (out / "config.json").exists()


def test_an_existing_run_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    assert run("train", "--epochs", "0", "--out", out, *SMALL).exit_code == 0
    before = (out / "last.pt").read_bytes()
    assert_one_line_error(run("train", "--epochs", "1", "--out", out, *SMALL), "already holds a run")
    assert (out / "last.pt").read_bytes() == before


@pytest.mark.slow
def test_incompatible_resume_is_refused_but_the_divergence_remedies_are_recorded(tmp_path):
    """A resume may not change what the run computed (--temperature), but may lower --lr or change
    --precision, the remedies the NaN-loss message gives; the change is written into the run."""
    out = tmp_path / "run"
    assert run("train", "--epochs", "1", "--out", out, *SMALL).exit_code == 0
    assert_one_line_error(run("train", "--resume", out, "--temperature", "0.3"), "temperature=0.2")
    assert_one_line_error(run("train", "--resume", out, "--out", tmp_path / "x"), "drop --out")
    resumed = run("train", "--resume", out, "--lr", "0.1", "--epochs", "2")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "config.json").read_text())["lr"] == 0.1
    (change,) = [r for r in metrics(out) if "resumed_with" in r]
    assert change["epoch"] == 1 and change["resumed_with"] == {"lr": [0.5, 0.1], "epochs": [1, 2]}
    assert [r["epoch"] for r in metrics(out) if "loss" in r] == [1, 2]


@pytest.mark.parametrize("args,fragment", [
    (("--dataset", "cifar100-lt", "--data-dir", "/nonexistent/cifar"), "--data-dir"),
    (("--split", "/nonexistent/split.npy"), "split.npy"),
    (("--method", "bcl-d", "--prune-ratio", "0"), "--prune-ratio"),
    (("--boost", "1", "--rand-strength", "5"), "--rand-strength"),
    (("--dataset", "npz"), "--data-dir FILE.npz"),
    (("--device", "cpu", "--width", "8"), "'--width': 8 is not in the range x>=16"),
])
def test_bad_inputs_give_one_line_and_write_nothing(tmp_path, args, fragment):
    out = tmp_path / "never"
    assert_one_line_error(run("train", *args, "--out", out), fragment)
    assert not out.exists()


def test_resume_of_a_missing_directory_is_refused(tmp_path):
    assert_one_line_error(run("train", "--resume", tmp_path / "nothing"), "nothing")


def test_bad_split_file_is_refused_before_anything_is_written(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([0, 1, 1]))
    out = tmp_path / "never"
    assert_one_line_error(run("train", "--split", str(bad), "--out", out, *SMALL), "repeats 1 indices")
    assert not out.exists()


def test_resume_of_an_empty_directory_is_refused(tmp_path):
    assert_one_line_error(run("train", "--resume", tmp_path), "holds no run")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused(tmp_path):
    out = tmp_path / "never"
    assert_one_line_error(run("train", "--device", "cuda", "--out", out), "no CUDA GPU")
    assert not out.exists()


@pytest.mark.slow
def test_nan_loss_stops_with_the_last_good_checkpoint_intact(tmp_path, monkeypatch):
    out = tmp_path / "run"
    overrides = dict(dataset="synthetic-lt", num_classes=3, width=16, batch_size=64, device="cpu", workers=2,
                     epochs=2, stop_after=1)
    start_run(overrides, out, None, echo=lambda line: None)
    good = (out / "last.pt").read_bytes()

    gradients = SimCLRMethod.gradients
    monkeypatch.setattr(SimCLRMethod, "gradients", lambda *a, **k: gradients(*a, **k) * float("nan"))
    with pytest.raises(UserError, match="loss became nan in epoch 2"):
        start_run({}, None, out, echo=lambda line: None)
    assert (out / "last.pt").read_bytes() == good


@pytest.mark.slow
def test_a_run_whose_first_epoch_fails_can_be_resumed(tmp_path, monkeypatch):
    """last.pt exists from the moment a run is created (epoch 0), so no run is left unresumable."""
    out = tmp_path / "run"
    overrides = dict(dataset="synthetic-lt", num_classes=3, width=16, batch_size=64, device="cpu", workers=2,
                     epochs=1)
    gradients = SimCLRMethod.gradients
    with monkeypatch.context() as patch:
        patch.setattr(SimCLRMethod, "gradients", lambda *a, **k: gradients(*a, **k) * float("nan"))
        with pytest.raises(UserError, match="epoch 1"):
            start_run(overrides, out, None, echo=lambda line: None)
    assert load_checkpoint(out / "last.pt")["epoch"] == 0
    summary = start_run({}, None, out, echo=lambda line: None)
    assert summary["epochs"] == 1 and np.isfinite(summary["final_loss"])


def test_a_last_batch_of_one_image_is_refused(tmp_path):
    assert_one_line_error(run("train", *SMALL, "--batch-size", "498", "--out", tmp_path / "x"), "batch of one")


def _npz(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 60)
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    np.savez(path, x_train=images, y_train=labels, x_test=images[:30], y_test=labels[:30])
    return path


def test_resume_on_other_data_is_refused(tmp_path):
    first, second = _npz(tmp_path / "a.npz", 0), _npz(tmp_path / "b.npz", 1)
    out = tmp_path / "run"
    args = ("--dataset", "npz", "--imbalance", "2", "--width", "16", "--batch-size", "32", "--device", "cpu")
    assert run("train", *args, "--data-dir", first, "--epochs", "2", "--stop-after", "1", "--out", out).exit_code == 0
    assert_one_line_error(run("train", "--resume", out, "--data-dir", second), "trained on other images")
    assert run("train", "--resume", out, "--data-dir", first).exit_code == 0


@pytest.mark.slow
def test_dali_and_pil_executors_train_identically_on_the_cpu(tmp_path):
    """The DALI graph is PIL's arithmetic and its float32 views are the PIL executor's numbers, so
    BCL-D (two slots, the pruned twin) trained through either executor ends in the same state."""
    states = {}
    for executor in ("dali", "reference"):
        out = tmp_path / executor
        args = ("--method", "bcl-d", "--epochs", "2", "--batch-size", "64", "--num-classes", "3", "--executor", executor)
        result = run("train", "--out", out, *args, *SMALL[:2], "--width", "16", "--device", "cpu", "--seed", "4")
        assert result.exit_code == 0, result.output
        states[executor] = (metrics(out), load_checkpoint(out / "last.pt")["model"])
    (dali_metrics, dali_model), (pil_metrics, pil_model) = states["dali"], states["reference"]
    assert [r["loss"] for r in dali_metrics] == [r["loss"] for r in pil_metrics]
    assert all(torch.equal(dali_model[name], pil_model[name]) for name in dali_model)


def test_data_the_evaluation_cannot_group_is_refused_before_training(tmp_path: Path) -> None:
    """A 2-class npz would train every epoch and then fail in the probe: it is refused first."""
    npz = tmp_path / "two.npz"
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    images = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    np.savez(npz, x_train=images, y_train=labels, x_test=images, y_test=labels)
    result = run("train", "--dataset", "npz", "--data-dir", npz, "--imbalance", "1", "--width", "16", "--batch-size",
                 "8", "--device", "cpu", "--epochs", "1", "--out", tmp_path / "r")
    assert_one_line_error(result, "at least 3 classes")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_probe_only_at_the_end_and_a_relative_split_from_anywhere(tmp_path: Path, monkeypatch) -> None:
    """--probe --stop-after 1 of 2 epochs: no probe at the stop, one at the end. The run was started
    with a relative --split; it resumes from another directory given the same split by its
    absolute path. Fails if the probe runs at every stop, or if paths are stored as typed."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert run("splits", "make", "--dataset", "synthetic-lt", "--num-classes", "3", "--out", "split.npy").exit_code == 0
    out = tmp_path / "run"
    first = run("train", "--probe", "--epochs", "2", "--stop-after", "1", "--split", "split.npy", "--out", out, *TINY)
    assert first.exit_code == 0, first.output
    assert "probe_full_top1" not in json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "full-shot probe" not in first.stdout  # nor in the stop's summary
    assert json.loads((out / "config.json").read_text())["split"] == str(work / "split.npy")
    monkeypatch.chdir(tmp_path)
    second = run("train", "--resume", out, "--split", work / "split.npy")
    assert second.exit_code == 0, second.output
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 2 and "probe_full_top1" in last and "full-shot probe" in second.stdout


@pytest.mark.slow
def test_more_epochs_on_resume_are_recorded_with_the_schedule_they_imply(tmp_path):
    """--epochs on --resume moves the learning rate onto a new cosine: the change, the rate it implies and
    the rate the old schedule had are recorded in metrics.jsonl and said. Mutation caught: epochs among
    the operational fields (changeable without a record)."""
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_eval_and_resume_on_a_folder(folder, tmp_path):
    """A run stopped after epoch 1 and resumed ends where the straight run ends; eval groups its classes
    as the folder thresholds say."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = (*list_flags(folder), *FOLDER_RUN, "--method", "bcl-d", "--epochs", "2")
    assert run("train", *args, "--out", straight).exit_code == 0
    assert json.loads((straight / "classes.json").read_text()) == {"train_class_counts": TRAIN_COUNTS,
                                                                   "grouping": "counts"}
    assert run("train", *args, "--stop-after", "1", "--out", split).exit_code == 0
    resumed = run("train", "--resume", split)
    assert resumed.exit_code == 0, resumed.output
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(split / "last.pt")
    torch.testing.assert_close(a["momentum"]["ema"], b["momentum"]["ema"], rtol=0, atol=1e-6)
    evaluated = run("eval", straight, "--shots", "full", "--json", tmp_path / "eval.json")
    assert evaluated.exit_code == 0, evaluated.output
    assert "Many > 100, Medium 20-100, Few < 20 training images (1 / 2 / 2 classes)" in evaluated.stdout
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["groups"] == {"many": [0], "medium": [2, 1], "few": [4, 3]}
    per_class = np.array(result["shots"]["full"]["per_class"])
    assert result["shots"]["full"]["few"] == pytest.approx(per_class[[3, 4]].mean())
