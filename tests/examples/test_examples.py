"""The examples run as a user runs them: a loop of one's own for two epochs, then its backbone evaluated."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.paths import REPO


@pytest.mark.slow
def test_a_users_loop_trains_and_its_backbone_is_evaluated(tmp_path):
    checkpoint = tmp_path / "own.pt"
    trained = subprocess.run([sys.executable, "examples/own_loop.py", "--epochs", "2", "--classes", "3",
                              "--batch-size", "64", "--device", "cpu", "--out", str(checkpoint)],
                             cwd=REPO, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    lines = trained.stdout.splitlines()
    assert lines[0].startswith("epoch 1: loss") and lines[1].startswith("epoch 2: loss")
    assert all("next epoch's weights: mean 0.500" in line and "std 0.000" not in line for line in lines[:2])
    evaluated = subprocess.run([sys.executable, "examples/evaluate_backbone.py", str(checkpoint), "--device", "cpu"],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert evaluated.stdout.startswith("full-shot probe: top-1") and "kNN: top-1" in evaluated.stdout
