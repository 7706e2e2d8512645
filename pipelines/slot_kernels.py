"""The kernels of a RandAugment slot, each declared once: the stages it runs, its table columns and
their identity values, and its function. The table's layout (pipelines.table), the step masks
(pipelines.steps) and the slot's dispatch (pipelines.augment) are all built from SLOT_KERNELS, so a
new kernel is one declaration here (and its stage in pipelines.slot.Stage); a new op on an existing
kernel is one `RandOp` in pipelines.ops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from bcl_dali.pipelines.rand_stages import channel_tables, cutout, enhance_stage, warp
from bcl_dali.pipelines.slot import IDENTITY_AFFINE, NO_STAGE, Stage, running_coordinates


@dataclass(frozen=True)
class Column:
    name: str
    width: int | None
    """Values per view; None: one per pixel of the view's side (made by the kernel's `derive`)."""
    identity: tuple[float, ...] = (0.0,)
    """The value of a view the kernel leaves as it is (written by the sampler, not derived)."""


@dataclass(frozen=True)
class SlotKernel:
    name: str
    stages: tuple[Stage, ...]
    """The views it runs on: those whose slot stage is one of these."""
    columns: tuple[Column, ...]
    """Its own columns of the slot's table rows."""
    inputs: tuple[str, ...]
    """The columns its function reads, in argument order: fn(views, *columns) -> views."""
    function: Callable[..., torch.Tensor]
    derive: Callable[[dict[str, np.ndarray], int], dict[str, np.ndarray]] | None = None
    """Its per-pixel columns from the sampler's, when the epoch is planned (on the host)."""


def _warp_tables(values: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    columns, rows = running_coordinates(values["affine"], size)
    return {"columns": columns, "rows": rows}


STAGE = Column("stage", 1, (float(NO_STAGE),))
"""Which stage a view runs in the slot (pipelines.slot.Stage), or none."""
SLOT_KERNELS: tuple[SlotKernel, ...] = (
    SlotKernel("warp", (Stage.WARP,),
               (Column("affine", 6, tuple(IDENTITY_AFFINE)), Column("columns", None), Column("rows", None)),
               ("affine", "columns", "rows"), warp, derive=_warp_tables),
    SlotKernel("enhance", (Stage.ENHANCE,), (Column("enhance", 4, (1.0, 0.0, 0.0, 0.0)),), ("enhance",), enhance_stage),
    SlotKernel("tabled", (Stage.AUTOCONTRAST, Stage.POINT, Stage.EQUALIZE), (Column("point", 1),), ("stage", "point"),
               channel_tables),
    SlotKernel("cutout", (Stage.CUTOUT,), (Column("cutout", 4),), ("cutout",), cutout),
)


def slot_columns() -> tuple[Column, ...]:
    """A slot's columns in table order."""
    return STAGE, *(column for kernel in SLOT_KERNELS for column in kernel.columns)


def sampled_identities() -> list[tuple[str, int, tuple[float, ...]]]:
    """The columns the sampler writes: name, width, and the value(s) that leave a view as it is."""
    return [(column.name, column.width, column.identity) for column in slot_columns() if column.width is not None]


def derived_columns(values: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Every column of the slot: the sampler's and those the kernels derive from them."""
    everything = dict(values)
    for kernel in SLOT_KERNELS:
        if kernel.derive is not None:
            everything |= kernel.derive(values, size)
    return everything
