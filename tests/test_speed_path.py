"""The fast path's promises that a CPU can check: no host synchronisation inside the training step,
and the prepared GPU check runs (at tiny sizes, on the CPU)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.gpu_check import CHECK_BUDGET_S, FULL, SMOKE, TARGETS, Check
from bcl_dali.config import TrainConfig
from bcl_dali.train.trainer import Trainer

REPO = Path(__file__).parents[1]
HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")
"""Every way Python code can pull a tensor's value to the host. On CUDA each one blocks until the
GPU has caught up; torch's own data-dependent syncs (nonzero, masked_select...) are caught on a GPU
by torch.cuda.set_sync_debug_mode in tests/test_gpu.py."""


@pytest.mark.parametrize("method", ["bcl-i", "bcl-d"])
def test_training_step_reads_nothing_back_to_the_host(method, monkeypatch):
    config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=3, width=16, batch_size=16,
                         epochs=2, device="cpu").resolve()
    trainer = Trainer(config, config.load_data(), torch.device("cpu"), executor=None)
    trainer.momentum.end_epoch()  # the EMA branch of the update, as in every epoch after the first
    views = torch.randn(32, 32, 32, 3).permute(0, 3, 1, 2)
    indices = torch.arange(16)
    trainer.train_step(indices, views, 16)  # warm-up outside the counted region
    reads = []

    def refuse(name):
        def read(tensor, *args, **kwargs):
            reads.append(name)
            return original[name](tensor, *args, **kwargs)
        return read

    original = {name: getattr(torch.Tensor, name) for name in HOST_READS}
    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, refuse(name))
    loss = trainer.train_step(indices + 16, views, 16)
    monkeypatch.undo()
    assert reads == []
    assert loss.shape == (16,) and torch.isfinite(loss).all()


def test_the_gpu_check_fits_its_window_by_its_own_estimate(tmp_path):
    """Every tier has items, each item a distinct name, and the whole check (the gpu-marked tests
    included) is estimated within the window of one lease; --plan prints it before anything runs."""
    check = Check(tmp_path, FULL, lambda line: None)
    items = check.items()
    assert len({item.name for item in items}) == len(items)
    assert {item.tier for item in items} == {1, 2, 3}
    assert check.estimate() <= CHECK_BUDGET_S
    assert {name for name, _, _ in TARGETS} <= {item.name for item in items}
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", str(tmp_path), "--plan"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"estimate: {check.estimate():.0f} s of GPU time in all (window {CHECK_BUDGET_S} s)" in done.stdout
    assert "tier 0: the gpu-marked tests" in done.stdout


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_item(tmp_path):
    """benchmarks/gpu_check.sh --smoke: the GPU check's code at tiny sizes on the CPU, every item but
    those only a GPU can run, each with its verdicts in check.log."""
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path), "--smoke"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    failed = {name: item["error"] for name, item in results.items() if isinstance(item, dict) and "error" in item}
    assert not failed
    log = (tmp_path / "check.log").read_text()
    assert "estimate:" in log
    for item in Check(tmp_path, SMOKE, lambda line: None).items():
        expected = item.name if not item.gpu_only else f"{item.name}: not run on the CPU"
        assert expected in log, item.name
    assert "target handoff_stress views_differing == 0: 0.00 met" in log
    for name in ("pipeline_dali_k1", "pipeline_dali_k2", "step_bcl-d", "train_bcl-i_vs_reference", "train_sdclr_best",
                 "pipeline_dali_k2_2_batches_per_iteration", "pipeline_folder_dali_k2", "step_bcl-d_imagenet_lt",
                 "train_bcl-d_imagenet_lt_folder"):
        figure = results[name].get("samples_per_second") or results[name]["speedup"]
        assert figure > 0, name
    assert results["pipeline_dali_k2"]["operators"] == 2 and results["pipeline_dali_k2"]["host_syncs"] == 0
    assert results["cuda_graphs_default"]["default"] == "none"  # only "none" runs on the CPU
    assert results["bcl-i_training_run"]["summary"]["epochs"] == 2
    assert (tmp_path / "profile.txt").exists()
    assert results["train_bcl-d_imagenet_lt_folder"]["of_step"] > 0
    measured = [line for line in log.splitlines() if line.startswith("target ")]
    assert len(measured) == len(TARGETS) and not any("not measured" in line for line in measured)
