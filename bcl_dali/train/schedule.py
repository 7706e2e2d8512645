"""The reference's learning-rate schedule: per-step linear warm-up, then cosine to 1e-6."""
from __future__ import annotations

import math

FINAL_LR = 1e-6


def lr_at(step: int, base_lr: float, total_steps: int, warmup_steps: int) -> float:
    """Learning rate of optimiser step `step` (0-based).

    The reference steps its LambdaLR *before* each iteration, so iteration i runs with the
    schedule's value at i + 1; reproduced here so the two runs see identical rates.
    """
    s = step + 1
    if s < warmup_steps:
        return base_lr * s / warmup_steps
    floor = FINAL_LR / base_lr
    progress = (s - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
