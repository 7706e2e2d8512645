"""End-to-end training, in one place: BCL-D trains two epochs through `train` on the built-in data
set, its recorded weights checked against BCL's rule; SimCLR boosted is BCL-I bit for bit; runs of
BCL-D, MoCo and BYOL, boosted, resume exactly, evaluate and report; one runs under torchrun,
resumes there and on one process, and evaluates. (Plain SimCLR end to end: the fidelity
experiment's test.) (Image folders end to end:
tests/bcl_dali/training/test_runs.py.)"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bcl_dali.config import TrainConfig
from bcl_dali.runs.checkpoint import load_checkpoint
from bcl_dali.train.momentum import MomentumLoss
from tests.cli_support import run
from tests.distributed_support import finish, launch, torchrun, two_nodes

BUILT_IN = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64",
            "--device", "cpu", "--workers", "2", "--seed", "3")
"""3 classes: 499 long-tailed images (450, 45, 4), 8 steps an epoch."""
DISTRIBUTED = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64", "--device", "cpu",
               "--workers", "1", "--warmup-epochs", "1")


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def bcl_weights(momentum_losses: torch.Tensor) -> np.ndarray:
    """BCL's weights written out in numpy: z = (s - mean) / std (unbiased std), w = z / max|z| / 2 + 1/2."""
    s = momentum_losses.double().numpy()
    z = (s - s.mean()) / s.std(ddof=1)
    return z / np.abs(z).max() / 2 + 0.5


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bcl-d"])
def test_bcl_d_trains_two_epochs_with_weights_by_bcl_s_rule(tmp_path, method):
    """Also checks the recorded weights against BCL's rule recomputed in numpy from the momentum
    losses s of the run's checkpoints: z = (s - mean) / std (unbiased), w = z / max|z| / 2 + 1/2, so
    epoch 2's weights (from the epoch-1 snapshot) have the recorded mean and std, and the sample
    furthest from the mean lands exactly on 0 or 1. Fails if the weights are not that rule (mutation
    tried: MomentumLoss.weights centring s on its median instead of its mean)."""
    out = tmp_path / method
    result = run("train", "--method", method, "--epochs", "2", "--snapshot-every", "1", "--out", out, *BUILT_IN)
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
    assert config["method"] == method and config["boost"] == 2
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
def test_simclr_boosted_once_is_bcl_i_bit_for_bit(tmp_path):
    """Boosting is a setting of the method: `--method simclr --boost 1` trains exactly what `--method
    bcl-i` trains (same losses, weights and momentum state) and is named BCL-I."""
    simclr, bcl_i = tmp_path / "simclr", tmp_path / "bcl-i"
    boosted = run("train", "--method", "simclr", "--boost", "1", "--epochs", "2", "--out", simclr, *BUILT_IN)
    assert boosted.exit_code == 0, boosted.output
    assert run("train", "--method", "bcl-i", "--epochs", "2", "--out", bcl_i, *BUILT_IN).exit_code == 0
    assert boosted.stdout.startswith("bcl-i on synthetic-lt") and "method      bcl-i" in boosted.stdout
    assert [r["loss"] for r in metrics(simclr)] == [r["loss"] for r in metrics(bcl_i)]
    a, b = load_checkpoint(simclr / "last.pt"), load_checkpoint(bcl_i / "last.pt")
    assert torch.equal(a["momentum"]["ema"], b["momentum"]["ema"])
    assert all(torch.equal(value, b["model"][name]) for name, value in a["model"].items())


@pytest.mark.slow
@pytest.mark.parametrize("method,norm", [("bcl-d", "paper"), ("moco", "paper"), ("byol", "rank")])
def test_resume_continues_exactly(tmp_path, method, norm):
    """Stop after the first epoch, --resume for the second (whose ops are boosted): bit for bit the
    run made straight, momentum encoder, queue, schedule and rank weights included; MoCo's run then
    reports and BYOL's evaluates, each under its name."""
    epochs = 2
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = ("--method", method, "--boost", "2" if method == "bcl-d" else "1", "--weight-norm", norm,
            "--epochs", str(epochs), *BUILT_IN)
    assert run("train", *args, "--out", straight).exit_code == 0
    assert run("train", *args, "--stop-after", "1", "--out", split).exit_code == 0
    assert [r["epoch"] for r in metrics(split)] == [1]
    resumed = run("train", "--resume", split)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.stdout
    expected, got = metrics(straight), metrics(split)
    assert [r["epoch"] for r in got] == list(range(1, epochs + 1))
    assert [r["loss"] for r in got] == [r["loss"] for r in expected]
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(split / "last.pt")
    assert torch.equal(a["momentum"]["ema"], b["momentum"]["ema"])
    assert all(torch.equal(value, b["model"][name]) for name, value in a["model"].items())
    assert json.loads((split / "config.json").read_text())["weight_norm"] == norm
    name = f"{method}-boost1" + ("-rank" if norm == "rank" else "")
    if method == "byol":
        evaluated = run("eval", split, "--shots", "full", "--device", "cpu")
        assert evaluated.exit_code == 0, evaluated.output
        assert f"{name} at epoch {epochs}" in evaluated.stdout
    if method == "moco":
        reported = run("report", split, "--out", tmp_path / "report")
        assert reported.exit_code == 0, reported.output
        page = (tmp_path / "report" / "report.md").read_text()
        assert f"| method | {method} |" in page and f"| trained as | {name} |" in page


@pytest.mark.slow
def test_torchrun_trains_resumes_and_evaluates(tmp_path):
    """Two processes write one run directory, here as two nodes meeting through c10d (rank 0 alone
    reports); resumed on two processes of one node it is the uninterrupted run bit for bit (every
    process on one thread, as torchrun sets it for several processes of a node); resumed on one
    process (the momentum state and the plan are global, so another world size is fine) it goes on;
    the checkpoint says which world size wrote it, and the run evaluates like any other."""
    out, whole = tmp_path / "bcl-d", tmp_path / "whole"
    *nodes, uninterrupted_run = finish([
        *two_nodes("train", "--method", "bcl-d", "--epochs", "2", "--stop-after", "1", "--out", str(out), *DISTRIBUTED),
        torchrun("train", "--method", "bcl-d", "--epochs", "2", "--out", str(whole), *DISTRIBUTED)])
    assert all(node.returncode == 0 for node in nodes), [node.stderr[-2000:] for node in nodes]
    assert uninterrupted_run.returncode == 0, uninterrupted_run.stderr[-3000:]
    assert (nodes[0].stdout + nodes[1].stdout).count("epoch 1/2") == 1
    assert sorted(p.name for p in out.iterdir()) == ["classes.json", "config.json", "last.pt", "metrics.jsonl"]
    assert torch.load(out / "last.pt", weights_only=True)["world_size"] == 2
    alone = Path(shutil.copytree(out, tmp_path / "alone"))
    resumed, on_one = finish([torchrun("train", "--resume", str(out)), launch("cli.py", "train", "--resume", str(alone))])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and state["momentum"]["epochs_done"] == 2 and state["world_size"] == 2
    assert [r["epoch"] for r in metrics(out)] == [1, 2] and "knn_top1" in metrics(out)[-1]
    uninterrupted = torch.load(whole / "last.pt", weights_only=True)
    assert all(torch.equal(value, uninterrupted["model"][name]) for name, value in state["model"].items())
    assert torch.equal(state["momentum"]["ema"], uninterrupted["momentum"]["ema"])
    assert on_one.returncode == 0, on_one.stderr[-3000:]
    assert torch.load(alone / "last.pt", weights_only=True)["world_size"] == 1
    evaluated = run("eval", out, "--shots", "full", "--device", "cpu")
    assert evaluated.exit_code == 0, evaluated.output
    assert "full-shot" in evaluated.stdout
