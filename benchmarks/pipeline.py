"""Augmentation throughput of the executors: samples per second, two views each, views on the device.

The policy at mixed weights (uniform in [0, 1]) on the built-in synthetic-lt training set. The clock
runs between two synchronisations at iteration boundaries in the middle of an epoch: warm-up
iterations before it (graph setup, worker start-up) and tail iterations after it, so the executor's
prefetching is as far ahead when the clock stops as when it starts. The DALI figures come with the
cost model's counts (benchmarks.profile), and with `profile` with the time of each fused stage.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.profile import StageTimer, graph_census, kernel_census
from benchmarks.timing import gpu_name, synchronize
from bcl_dali.data import load_data
from bcl_dali.policy import BoostPolicy
from pipelines.dali_executor import DaliExecutor
from pipelines.dali_graph import PREFETCH_DEPTH
from pipelines.plan import EpochPlan
from pipelines.reference import ReferenceExecutor

WARMUP_ITERATIONS = 3
TAIL_ITERATIONS = PREFETCH_DEPTH + 1
COST_MODEL_KEYS = ("operators", "expansions", "host_to_device_copies", "kernels", "full_image_passes_per_view",
                   "bytes_per_view")


def measure_pipeline(executor: str, device: torch.device, batch_size: int, iters: int, workers: int,
                     k: int = 1, seed: int = 0, num_classes: int = 100, profile: bool = False,
                     batches_together: int | None = None) -> dict:
    images = load_data("synthetic-lt", num_classes=num_classes, seed=seed).train.images
    size = images.shape[1]
    timer = StageTimer(device) if profile else None
    if executor == "dali":
        runner = DaliExecutor(images, size=size, num_slots=k, batch_size=batch_size, device=device, threads=workers,
                              timer=timer, batches_together=batches_together)
    else:
        runner = ReferenceExecutor(images, size=size, workers=workers)
    together = runner.batches_together if executor == "dali" else 1
    in_flight = TAIL_ITERATIONS * together if executor == "dali" else 2 * workers + 1
    warmup, timed = WARMUP_ITERATIONS * together, -(-iters // together) * together
    rng = np.random.default_rng(seed)
    total = (warmup + timed + in_flight) * batch_size
    order = np.resize(rng.permutation(len(images)), total)
    params = BoostPolicy(k).sample(rng.random(total), rng, (size, size))
    start = seconds = None
    for b, (_, views) in enumerate(runner.epoch(EpochPlan(order, batch_size, params))):
        views.to(device, non_blocking=True)
        if b + 1 in (warmup, warmup + timed):
            synchronize(device)
            if start is None:
                start = time.perf_counter()
            else:
                seconds = time.perf_counter() - start
    result = {"benchmark": "pipeline", "executor": executor, "device": str(device), "batch_size": batch_size,
              "iters": timed, "workers": workers, "rand_k": k, "seconds": seconds,
              "samples_per_second": timed * batch_size / seconds, "torch": torch.__version__, "gpu": gpu_name(device)}
    if executor == "dali":
        result["batches_per_iteration"] = runner.batches_together
        result.update(graph_census(k, "gpu" if device.type == "cuda" else "cpu"))
        result.update(kernel_census(k))
    if timer is not None:
        result["stage_milliseconds_per_iteration"] = timer.milliseconds(skip=WARMUP_ITERATIONS)
    return result


def compare_pipelines(device: torch.device, batch_size: int, iters: int, workers: int, k: int = 1,
                      num_classes: int = 100, profile: bool = False) -> dict:
    """Both executors in one run; `ratio` is DALI's throughput over the reference executor's. The
    cost model's counts of the DALI graph are repeated at the top level."""
    dali = measure_pipeline("dali", device, batch_size, iters, workers, k, num_classes=num_classes, profile=profile)
    reference = measure_pipeline("reference", device, batch_size, iters, workers, k, num_classes=num_classes)
    return {"benchmark": "pipelines", "device": str(device), "gpu": gpu_name(device), "rand_k": k,
            **{key: dali[key] for key in COST_MODEL_KEYS}, "dali": dali, "reference": reference,
            "ratio": dali["samples_per_second"] / reference["samples_per_second"]}


def summary(result: dict) -> str:
    if result["benchmark"] == "pipelines":
        return "\n".join([summary(result["dali"]), summary(result["reference"]),
                          f"DALI / reference: {result['ratio']:.2f}x"])
    line = (f"pipeline {result['executor']} on {result['device']}: {result['samples_per_second']:,.0f} samples/s "
            f"(batch {result['batch_size']}, {result['iters']} batches, {result['workers']} workers, "
            f"k={result['rand_k']})")
    if result["executor"] == "dali":
        line += (f"; per iteration: {result['operators']} DALI operators, {result['expansions']} expanding, "
                 f"{result['host_to_device_copies']} host-to-device copies, {result['kernels']} torch kernels; "
                 f"per view: {result['full_image_passes_per_view']} full-image passes, "
                 f"{result['bytes_per_view'] / 1e6:.2f} MB moved")
    return line


def profile_table(result: dict) -> str:
    """The cost model of one DALI iteration, stage by stage, as `bench pipeline --profile` prints it."""
    dali = result["dali"] if result["benchmark"] == "pipelines" else result
    lines = [f"one iteration = {dali['batches_per_iteration']} batch(es) of {dali['batch_size']} samples "
             f"({2 * dali['batches_per_iteration'] * dali['batch_size']} views), k = {dali['rand_k']}",
             f"DALI operators: {dali['operators']}  " + ", ".join(
                 f"{kind} x{count}" for kind, count in dali["operators_by_kind"].items()),
             f"expanding operators (one sample per frame): {dali['expansions']}",
             f"host-to-device parameter copies: {dali['host_to_device_copies']}",
             f"per view: {dali['full_image_passes_per_view']} full-image passes, "
             f"{dali['bytes_per_view'] / 1e6:.2f} MB read and written",
             f"{'stage':<10}{'torch kernels':>15}{'ms / iteration':>16}"]
    times = dali.get("stage_milliseconds_per_iteration", {})
    for stage, kernels in dali["kernels_by_stage"].items():
        lines.append(f"{stage:<10}{kernels:>15}{times.get(stage, float('nan')):>16.2f}")
    return "\n".join(lines)
