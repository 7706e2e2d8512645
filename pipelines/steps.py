"""Which views each masked step of the augmentation changes, and the two ways a stage runs a step.

Most steps change only some views: a ColorJitter blend slot, the hue, grayscale, the blur, and in each
RandAugment slot its warp, enhance, channel-table and cutout kernels. `step_masks` says which views,
from a table's columns; it is the one definition, read on the device (dense) and, when an iteration
is planned, on the host (sparse), so the two schedules cannot disagree.

- Dense: every view runs the step and keeps the result where its mask holds. A few launches, no read
  back to the host: the GPU's schedule for small views, where launches are the cost.
- Sparse: the step runs only on the rows the host planned (pipelines.iteration). Pixels are the cost:
  the CPU's schedule, and the GPU's for large views. The rows are slices of a tensor uploaded once
  per epoch, and their counts are known on the host, so nothing is read back either.

Both give the same pixels, since every step treats each view on its own.
"""
from __future__ import annotations

import functools
from typing import Callable, Mapping

import numpy as np
import torch

from bcl_dali.pipelines import slot_kernels
from bcl_dali.pipelines.table import JITTER_SLOTS, Table

Take = Callable[[str], Table]
StepFunction = Callable[..., torch.Tensor]
DENSE_MAX_SIZE = 64
"""The largest views the GPU runs dense. A full pass over an iteration's views grows with their
pixels: at 32 pixels (CIFAR) 4,096 views are 12 MB, well under the cost of the launches a step
makes; at 224 pixels (ImageNet-LT) 1,024 views are 150 MB per uint8 pass and several times that in
float32, so a step that most views skip costs far more run on all of them."""


def step_predicates(num_slots: int, blur: bool) -> dict[str, Callable[[Take], Table]]:
    """Each masked step's (n,) bool mask as a function of a numpy or torch table, in the order the
    stages run them."""
    predicates: dict[str, Callable[[Take], Table]] = {
        f"jitter{j}": lambda take, j=j: take("jitter_factor")[:, j] != 1 for j in range(JITTER_SLOTS)}
    predicates["hue"] = lambda take: take("hue_active") > 0
    predicates["grayscale"] = lambda take: take("grayscale") > 0
    if blur:
        predicates["blur"] = lambda take: take("blur_active") > 0
    for s in range(num_slots):
        for kernel in slot_kernels.SLOT_KERNELS:
            predicates[f"slot{s}_{kernel.name}"] = functools.partial(_runs, f"slot{s}_stage", kernel.stages)
    return predicates


def _runs(column: str, stages: tuple[int, ...], take: Take) -> Table:
    """Whether each view's slot stage (`column`) is one of `stages`."""
    stage = take(column)
    found = stage == stages[0]
    for other in stages[1:]:
        found = found | (stage == other)
    return found


def step_masks(take: Take, num_slots: int, blur: bool) -> dict[str, Table]:
    """Every masked step's mask, read from a table at once (where an iteration is planned)."""
    return {name: predicate(take) for name, predicate in step_predicates(num_slots, blur).items()}


def dense_for(device: torch.device, size: int) -> bool:
    """Dense for small views on the GPU, sparse on the CPU and for large views (see DENSE_MAX_SIZE)."""
    return device.type == "cuda" and size <= DENSE_MAX_SIZE


class DenseSteps:
    """Every step on every view, each view keeping the result where its own mask holds (read from the
    table on the device as the step runs)."""

    def __init__(self, take: Take, predicates: Mapping[str, Callable[[Take], torch.Tensor]]) -> None:
        self.take = take
        self.predicates = predicates

    def apply(self, name: str, step: StepFunction, x: torch.Tensor, *columns: torch.Tensor) -> torch.Tensor:
        return torch.where(self.predicates[name](self.take).view(-1, 1, 1, 1), step(x, *columns), x)


class SparseSteps:
    """Each step on its planned rows only: `rows[name]` is a 1-d index tensor whose length the host knows."""

    def __init__(self, rows: Mapping[str, torch.Tensor]) -> None:
        self.rows = rows

    def apply(self, name: str, step: StepFunction, x: torch.Tensor, *columns: torch.Tensor) -> torch.Tensor:
        rows = self.rows[name]
        if len(rows) == 0:
            return x
        if len(rows) == len(x):
            return step(x, *columns)
        changed = step(x.index_select(0, rows), *(column.index_select(0, rows) for column in columns))
        return x.index_copy(0, rows, changed)


def host_rows(masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each step's rows, read from host masks (where an iteration is planned)."""
    return {name: np.flatnonzero(mask) for name, mask in masks.items()}
