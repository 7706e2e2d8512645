"""Augmentation throughput of an executor: samples per second, two views each, views on the device.

The BCL-I policy at mixed weights (uniform in [0, 1]) on the built-in synthetic-lt training set;
the first batches (graph setup, worker start-up) are excluded.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.timing import gpu_name, synchronize
from bcl_dali.data import load_data
from bcl_dali.policy import BoostPolicy
from pipelines.dali_executor import DaliExecutor
from pipelines.plan import EpochPlan
from pipelines.reference import ReferenceExecutor

WARMUP_BATCHES = 3


def measure_pipeline(executor: str, device: torch.device, batch_size: int, iters: int, workers: int,
                     k: int = 1, seed: int = 0, num_classes: int = 100) -> dict:
    images = load_data("synthetic-lt", num_classes=num_classes, seed=seed).train.images
    size = images.shape[1]
    if executor == "dali":
        runner = DaliExecutor(images, size=size, num_slots=k, batch_size=batch_size, device=device, threads=workers)
    else:
        runner = ReferenceExecutor(images, size=size, workers=workers)
    rng = np.random.default_rng(seed)
    total = (WARMUP_BATCHES + iters) * batch_size
    order = np.resize(rng.permutation(len(images)), total)
    params = BoostPolicy(k).sample(rng.random(total), rng, (size, size))
    start = None
    for b, (_, views) in enumerate(runner.epoch(EpochPlan(order, batch_size, params))):
        views.to(device, non_blocking=True)
        if b == WARMUP_BATCHES - 1:
            synchronize(device)
            start = time.perf_counter()
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"benchmark": "pipeline", "executor": executor, "device": str(device), "batch_size": batch_size,
            "iters": iters, "workers": workers, "rand_k": k, "seconds": seconds,
            "samples_per_second": iters * batch_size / seconds, "torch": torch.__version__,
            "gpu": gpu_name(device)}


def summary(result: dict) -> str:
    return (f"pipeline {result['executor']} on {result['device']}: {result['samples_per_second']:,.0f} samples/s "
            f"(batch {result['batch_size']}, {result['iters']} batches, {result['workers']} workers, k={result['rand_k']})")
