"""The GPU check's plan fits one lease by its own estimates, and its plumbing (the script, the tiers, the verdicts, results.json) runs end to end with every measurement replaced by a stand-in."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bcl_dali.benchmarks.gpu_check import CHECK_BUDGET_S, Check, FULL, SMOKE, TARGETS
from tests.paths import REPO


def test_the_gpu_check_fits_its_window_by_its_own_estimate(tmp_path):
    """Every tier has items, each item a distinct name, and the whole check (the gpu-marked tests
    included) is estimated within the window of one lease; the plan says so before anything runs
    (the script prints it first: test_the_check_runs_every_tier_and_writes_each_verdict)."""
    check = Check(tmp_path, FULL, lambda line: None)
    items = check.items()
    assert len({item.name for item in items}) == len(items)
    assert {item.tier for item in items} == {1, 2, 3}
    assert check.estimate() <= CHECK_BUDGET_S
    assert {name for name, _, _ in TARGETS} <= {item.name for item in items}
    plan = check.plan([1, 2, 3])
    assert plan[-1] == f"estimate: {check.estimate():.0f} s of GPU time in all (window {CHECK_BUDGET_S} s)"
    assert plan[0].startswith("tier 0: the gpu-marked tests")


@pytest.mark.slow
def test_the_check_runs_every_tier_and_writes_each_verdict(tmp_path):
    """benchmarks/gpu_check.sh at tiny sizes on the CPU, every measurement a stand-in
    (tests/benchmarks/measureless.py; each benchmark has its own tests): the plan, each item of each
    tier but those only a GPU can run, a failing item recorded without stopping the rest, every
    target's verdict, the decision, and results.json. Mutation caught (tried): the failing item's
    exception not caught (the tier stops there)."""
    python = tmp_path / "python"
    python.write_text(f'#!/usr/bin/env bash\nshift 2\nexec "{sys.executable}" -m tests.benchmarks.measureless "$@"\n')
    python.chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": str(python), "MEASURELESS_FAIL": "step_sdclr", "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(out), "--smoke"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    log = (out / "check.log").read_text()
    results = json.loads((out / "results.json").read_text())
    assert "estimate:" in log
    for item in Check(out, SMOKE, lambda line: None).items():
        if item.gpu_only:
            assert f"{item.name}: not run on the CPU" in log, item.name
        elif item.name != "step_sdclr":
            assert "error" not in results[item.name] and f"{item.name}: " in log, item.name
    assert "step_sdclr: FAILED RuntimeError: a stand-in failure" in log and "error" in results["step_sdclr"]
    measured = [line for line in log.splitlines() if line.startswith("target ")]
    assert len(measured) == len(TARGETS) and all(line.endswith(" met") for line in measured), measured
    assert "decision: --cuda-graphs default none" in log
    assert results["sizes"]["device"] == "cpu" and (out / "profile.txt").exists()
