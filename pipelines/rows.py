"""How a stage reaches the views it changes: all views at once, or only those views.

On the GPU a stage is a handful of kernel launches whatever the number of views, and for CIFAR's
32-pixel views the launches are the cost, so every stage runs on the whole batch and its result is
kept where the view uses it (dense). On the CPU, and for 224-pixel views on the GPU, the pixels are
the cost, so a stage runs only on the views that use it, as PIL runs only the op a view drew
(sparse); finding those rows reads the mask on the host, which on the GPU synchronises DALI's
stream (not the training's). Both give the same pixels, since every stage treats each view on its
own.
"""
from __future__ import annotations

from typing import Callable

import torch

StageFunction = Callable[..., torch.Tensor]
DENSE_MAX_SIZE = 64
"""The largest views the GPU runs dense. A full pass over an iteration's views grows with their
pixels: at 32 pixels (CIFAR) 4,096 views are 12 MB, well under the cost of the launches a stage
makes; at 224 pixels (ImageNet-LT) 1,024 views are 150 MB per uint8 pass and several times that in
float32, so a stage that most views skip costs far more run on all of them than the
synchronisation that finds its rows."""


class Rows:
    """The schedule of a device: dense (all views, then keep) or sparse (only the views that change)."""

    def __init__(self, dense: bool) -> None:
        self.dense = dense

    def apply(self, stage: StageFunction, x: torch.Tensor, active: torch.Tensor, *columns: torch.Tensor) -> torch.Tensor:
        """`stage(x, *columns)` on the views where `active` (n,) holds; the others unchanged."""
        if self.dense:
            return torch.where(active.view(-1, 1, 1, 1), stage(x, *columns), x)
        rows = active.nonzero().squeeze(1)
        if len(rows) == 0:
            return x
        if len(rows) == len(x):
            return stage(x, *columns)
        changed = stage(x.index_select(0, rows), *(column.index_select(0, rows) for column in columns))
        return x.clone().index_copy_(0, rows, changed)


def schedule(device: torch.device, size: int) -> Rows:
    """Dense for small views on the GPU, sparse on the CPU and for large views (see DENSE_MAX_SIZE)."""
    return Rows(dense=device.type == "cuda" and size <= DENSE_MAX_SIZE)
