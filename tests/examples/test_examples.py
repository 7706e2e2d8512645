"""The examples run as a user runs them: a loop of one's own (a torchvision ResNet-18 and the API
object) for two epochs, in which each sample's weight drives that sample's ops, then its backbone
evaluated."""
from __future__ import annotations

import runpy
import subprocess
import sys

import numpy as np
import pytest

from bcl_dali.train.planner import EpochPlanner
from tests.paths import REPO


@pytest.mark.slow
def test_a_users_loop_boosts_each_sample_by_its_weight_and_its_backbone_is_evaluated(tmp_path, monkeypatch, capsys):
    """BCL-I in the example's loop: in epoch 2, every sample's magnitude is 10 + 20 w of its own weight
    (the trainer's own test checks the same). Mutation caught: the planner pairing the weights with the
    samples in index order instead of the epoch's order."""
    plans, plan = [], EpochPlanner.plan
    monkeypatch.setattr(EpochPlanner, "plan", lambda self, images: plans.append(plan(self, images)) or plans[-1])
    checkpoint = tmp_path / "own.pt"
    monkeypatch.setattr(sys, "argv", ["own_loop.py", "--epochs", "2", "--classes", "3", "--batch-size", "64",
                                      "--device", "cpu", "--out", str(checkpoint)])
    runpy.run_path(str(REPO / "examples" / "own_loop.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("epoch 1: loss") and lines[1].startswith("epoch 2: loss")
    assert len(plans) == 2
    (first, zero), (second, weights) = plans
    assert not zero.any() and not first.params.view1.op_applied.any()
    w = weights.numpy()[second.order]
    assert w.std() > 0.05
    for view in second.params.views:
        np.testing.assert_allclose(view.op_magnitude[:, 0], 10 + 20 * w, atol=1e-5)
    evaluated = subprocess.run([sys.executable, "examples/evaluate_backbone.py", str(checkpoint), "--device", "cpu"],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert evaluated.stdout.startswith("full-shot probe: top-1") and "kNN: top-1" in evaluated.stdout
