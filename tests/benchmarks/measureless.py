"""`python -m bcl_dali.benchmarks.gpu_check` with a stand-in for every measurement: the check's plumbing (its
plan, tiers, verdicts, results.json and decision) without its benchmarks, for
tests/benchmarks/test_gpu_check.py. The stand-ins meet every target; MEASURELESS_FAIL names an item
whose measurement raises."""
from __future__ import annotations

import os
from pathlib import Path

from bcl_dali.benchmarks import gpu_check

FAST = 1e6


def _pipeline(*args, **kwargs) -> dict:
    return {"samples_per_second": FAST, "operators": 2, "host_syncs": 0}


def _step(method: str, *args, **kwargs) -> dict:
    if os.environ.get("MEASURELESS_FAIL") == f"step_{method}":
        raise RuntimeError("a stand-in failure")
    return {"samples_per_second": FAST}


def _training(*args, **kwargs) -> dict:
    return {"samples_per_second": FAST}


def _profile(device, batch_size, k, path: Path, **kwargs) -> dict:
    path.write_text("a kernel profile\n")
    return {"table": "a kernel profile", "kernels": 1, "gpu_milliseconds_per_iteration": 1.0}


def _start_run(overrides: dict, out: Path, resume, echo) -> dict:
    out.mkdir(parents=True)
    (out / "metrics.jsonl").write_text('{"epoch": 1, "loss": 1.0}\n')
    return {"epochs": overrides["epochs"], "knn_top1": 50.0, "samples_per_second": FAST}


def _compare(*args, **kwargs) -> dict:
    return {"ours": {"samples_per_second": FAST}, "ours_pil_executor": {"samples_per_second": FAST / 2},
            "reference": {"samples_per_second": FAST / 10}, "speedup": 10.0, "speedup_over_pil_executor": 2.0}


def main() -> None:
    gpu_check.measure_pipeline = _pipeline
    gpu_check.measure_step = _step
    gpu_check.measure_training = _training
    gpu_check.stress_handoff = lambda *args, **kwargs: {"views_differing": 0, "views": 64}
    gpu_check.folder_memory = lambda *args: {"benchmark": "folder_memory", "peak_bytes_with": 2 ** 30,
                                             "peak_bytes_without": 2 ** 30, "huge_side": 6000, "ratio": 1.1}
    gpu_check.compare = _compare
    gpu_check.measure_scaling = lambda *args: {"runs": [{"samples_per_second": FAST}]}
    gpu_check.iteration_profile = _profile
    gpu_check.start_run = _start_run
    gpu_check.imagenet_like_folder = lambda root, files: None
    gpu_check.main()


if __name__ == "__main__":
    main()
