"""How a stage reaches the views it changes: all views at once, or only those views.

On the GPU a stage is a handful of kernel launches whatever the number of views, and the launches
are the cost, so every stage runs on the whole batch and its result is kept where the view uses it
(dense). On the CPU the pixels are the cost, so a stage runs only on the views that use it, as
PIL runs only the op a view drew (sparse); finding those rows reads the mask on the host, which on
the GPU would be a synchronisation. Both give the same pixels, since every stage treats each view
on its own.
"""
from __future__ import annotations

from typing import Callable

import torch

StageFunction = Callable[..., torch.Tensor]


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
