"""The hand-off under stress: views read long after DALI has run ahead must still be the views DALI made.

For every batch the consumer copies its views at once, then queues a long sleep on its stream, copies
them again and drops them, as a training loop drops its views after queuing a step. The host races
through the epoch while the GPU sleeps, so DALI runs ahead and allocates the next iterations' outputs;
if an output went back to DALI before the late copy ran, DALI's stream could write over it first and
the two copies would differ (pipelines.handoff).
"""
from __future__ import annotations

import numpy as np
import torch

from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.inputs import ResidentInput
from bcl_dali.pipelines.plan import EpochPlan

SLEEP_CYCLES = 20_000_000
"""About 10 ms of a GPU's clock per batch: far longer than DALI takes to run an iteration ahead."""


def stress_handoff(device: torch.device, images: np.ndarray, batch_size: int = 64, batches: int = 24,
                   k: int = 2, seed: int = 0) -> dict:
    """One epoch of `batches` batches, one per DALI iteration; the count of views whose late copy differs
    from the copy taken at once (0 when the hand-off holds)."""
    rng = np.random.default_rng(seed)
    n = batch_size * batches
    order = np.resize(rng.permutation(len(images)), n)
    plan = EpochPlan(order, batch_size, BoostPolicy(k).sample(rng.random(n), rng, images.shape[1:3]))
    executor = DaliExecutor(ResidentInput(images), size=images.shape[1], num_slots=k, batch_size=batch_size, device=device,
                            threads=4, dtype=torch.float32, batches_together=1)
    pairs = []
    for _, views in executor.epoch(plan):
        at_once = views.clone()
        if device.type == "cuda":
            torch.cuda._sleep(SLEEP_CYCLES)
        pairs.append((at_once, views.clone()))
        del views
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    differing = sum(int((early != late).flatten(1).any(1).sum()) for early, late in pairs)
    return {"benchmark": "handoff_stress", "device": str(device), "batches": len(pairs),
            "views": sum(len(early) for early, _ in pairs), "views_differing": differing}
