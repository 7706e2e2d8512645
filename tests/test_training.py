"""`cli.py train` end to end on the CPU at a small size: all four methods, exact resume, refusals."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bcl_dali.methods.simclr import SimCLRMethod
from bcl_dali.runs.checkpoint import load_checkpoint
from bcl_dali.errors import UserError
from bcl_dali.train.momentum import MomentumLoss
from bcl_dali.config import TrainConfig
from bcl_dali.training import start_run
from tests.cli_support import assert_one_line_error, run

SMALL = ("--dataset", "synthetic-lt", "--num-classes", "10", "--width", "16", "--batch-size", "64",
         "--device", "cpu", "--workers", "2", "--seed", "3")
"""10 classes: 1,111 long-tailed images (450 down to 4), 18 steps an epoch."""


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def bcl_weights(momentum_losses: torch.Tensor) -> np.ndarray:
    """BCL's weights written out in numpy: z = (s - mean) / std (unbiased std), w = z / max|z| / 2 + 1/2."""
    s = momentum_losses.double().numpy()
    z = (s - s.mean()) / s.std(ddof=1)
    return z / np.abs(z).max() / 2 + 0.5


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) for m in ("simclr", "bcl-i", "sdclr")]
                         + ["bcl-d"])
def test_each_method_trains_two_epochs(tmp_path, method):
    """Also checks the recorded weights against BCL's rule recomputed in numpy from the momentum
    losses s of the run's checkpoints: z = (s - mean) / std (unbiased), w = z / max|z| / 2 + 1/2, so
    epoch 2's weights (from the epoch-1 snapshot) have the recorded mean and std, and the sample
    furthest from the mean lands exactly on 0 or 1. Fails if the weights are not that rule (mutation
    tried: MomentumLoss.weights centring s on its median instead of its mean)."""
    out = tmp_path / method
    result = run("train", "--method", method, "--epochs", "2", "--snapshot-every", "1", "--out", out, *SMALL)
    assert result.exit_code == 0, result.output
    records = metrics(out)
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(np.isfinite(r["loss"]) and r["samples_per_second"] > 0 for r in records)
    assert records[0]["weight_mean"] == 0.0  # epoch 1 runs before any weight exists
    after_epoch_1 = bcl_weights(load_checkpoint(out / "epoch_0001.pt")["momentum"]["ema"])
    assert records[1]["weight_mean"] == pytest.approx(after_epoch_1.mean(), abs=1e-6)  # 1/2: z has mean 0
    assert records[1]["weight_std"] == pytest.approx(after_epoch_1.std(), abs=1e-6) and after_epoch_1.std() > 0.01
    assert "knn_top1" in records[-1] and "kNN top-1" in result.stdout
    _check_memorization_records(records, after_epoch_1, out)
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == method and config["rand_k"] == {"simclr": 0, "bcl-i": 1, "sdclr": 0, "bcl-d": 2}[method]
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and state["momentum"]["epochs_done"] == 2
    momentum = MomentumLoss(len(state["momentum"]["ema"]))
    momentum.load_state_dict(state["momentum"])
    weights = momentum.weights().double().numpy()
    np.testing.assert_allclose(weights, bcl_weights(state["momentum"]["ema"]), rtol=0, atol=1e-6)
    assert weights.min() >= 0.0 and weights.max() <= 1.0 and (weights.min() == 0.0 or weights.max() == 1.0)


def _check_memorization_records(records: list[dict], weights: np.ndarray, out: Path) -> None:
    """Epoch 1 has no weights to describe; epoch 2's histogram and class means are those of the
    epoch-1 weights, per the run's own classes.json."""
    assert "weight_histogram" not in records[0]
    counts = json.loads((out / "classes.json").read_text())["train_class_counts"]
    assert records[1]["weight_histogram"] == np.histogram(weights, bins=20, range=(0, 1))[0].tolist()
    labels = TrainConfig.load(out / "config.json").load_data().train.labels
    assert np.bincount(labels).tolist() == counts
    means = [weights[labels == c].mean() for c in range(len(counts))]
    np.testing.assert_allclose(records[1]["class_weight_mean"], means, atol=1e-6)
    assert -1 <= records[1]["size_weight_spearman"] <= 1


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    """2 epochs, stop, --resume for 1 more (with boosted ops): the same per-epoch losses as 3 straight."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = ("--method", "bcl-d", "--epochs", "3", *SMALL)
    assert run("train", *args, "--out", straight).exit_code == 0
    assert run("train", *args, "--stop-after", "2", "--out", split).exit_code == 0
    assert [r["epoch"] for r in metrics(split)] == [1, 2]
    resumed = run("train", "--resume", split)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.stdout
    expected, got = metrics(straight), metrics(split)
    assert [r["epoch"] for r in got] == [1, 2, 3]
    np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in expected], rtol=0, atol=1e-6)
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(split / "last.pt")
    torch.testing.assert_close(a["momentum"]["ema"], b["momentum"]["ema"], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_reference_executor_trains(tmp_path):
    result = run("train", "--executor", "reference", "--epochs", "1", "--out", tmp_path / "ref", *SMALL)
    assert result.exit_code == 0, result.output
    assert np.isfinite(metrics(tmp_path / "ref")[0]["loss"])


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
    (("--rand-k", "1", "--rand-strength", "5"), "--rand-strength"),
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
    overrides = dict(dataset="synthetic-lt", num_classes=10, width=16, batch_size=64, device="cpu", workers=2,
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
    overrides = dict(dataset="synthetic-lt", num_classes=10, width=16, batch_size=64, device="cpu", workers=2,
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
    assert_one_line_error(run("train", *SMALL, "--batch-size", "1110", "--out", tmp_path / "x"), "batch of one")


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
        args = ("--method", "bcl-d", "--epochs", "2", "--batch-size", "32", "--num-classes", "3", "--executor", executor)
        result = run("train", "--out", out, *args, *SMALL[:2], "--width", "16", "--device", "cpu", "--seed", "4")
        assert result.exit_code == 0, result.output
        states[executor] = (metrics(out), load_checkpoint(out / "last.pt")["model"])
    (dali_metrics, dali_model), (pil_metrics, pil_model) = states["dali"], states["reference"]
    assert [r["loss"] for r in dali_metrics] == [r["loss"] for r in pil_metrics]
    assert all(torch.equal(dali_model[name], pil_model[name]) for name in dali_model)
