"""The augmentation's parameters as one float64 table: a row per view, named column groups.

The sampler's decisions (`pipelines.params.ViewParams`) become, vectorised over views, the values
each stage of the augmentation reads: the crop box, the six ColorJitter blend slots around the hue
stage, the grayscale flag, and each RandAugment slot's stage and parameters. An epoch's table is
built on the host when the epoch is planned and moved to the device once; a batch is then a slice
of its rows. float64 holds every value exactly (indices, 8-bit offsets, PIL's float64 affine data,
the float32 jitter factors).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bcl_dali.pipelines.blur import box_weights
from bcl_dali.pipelines.ops import RAND_OPS
from bcl_dali.pipelines.params import ViewParams
from bcl_dali.pipelines.slot import SlotParams
from bcl_dali.pipelines import slot_kernels

PRE_HUE_SLOTS = 3
"""ColorJitter runs brightness, contrast, saturation and hue in a per-sample order. Three blend
slots before the single hue stage and three after fit every order (hue at position p leaves p
adjustments before it and 3 - p after)."""
JITTER_SLOTS = 2 * PRE_HUE_SLOTS
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)
Table = np.ndarray | torch.Tensor

BASE_COLUMNS = (("image", 1), ("crop", 4), ("flip", 1), ("jitter_factor", JITTER_SLOTS),
                ("jitter_grey", JITTER_SLOTS), ("jitter_mean", JITTER_SLOTS), ("hue_shift", 1),
                ("hue_active", 1), ("grayscale", 1))
BLUR_COLUMNS = (("blur_active", 1), ("blur_radius", 1), ("blur_ww", 1), ("blur_fw", 1))
"""PIL's box radius and fixed-point weights of a view's Gaussian blur (pipelines.blur), for recipes with blur."""


@dataclass(frozen=True)
class Layout:
    """Where each named group of values sits in a table row, for a graph with `num_slots` slots
    making views of `size` pixels square, with or without the Gaussian blur."""

    num_slots: int
    size: int
    blur: bool = False

    @property
    def groups(self) -> tuple[tuple[str, int], ...]:
        per_slot = tuple((column.name, column.width or self.size) for column in slot_kernels.slot_columns())
        slots = tuple((f"slot{s}_{name}", width) for s in range(self.num_slots) for name, width in per_slot)
        return BASE_COLUMNS + (BLUR_COLUMNS if self.blur else ()) + slots

    @property
    def width(self) -> int:
        return sum(width for _, width in self.groups)

    def columns(self, name: str) -> slice:
        start = 0
        for group, width in self.groups:
            if group == name:
                return slice(start, start + width)
            start += width
        raise KeyError(name)

    def take(self, table: Table, name: str) -> Table:
        """The group's columns of `table` (numpy or torch), squeezed to (n,) for one-column groups."""
        columns = self.columns(name)
        return table[:, columns.start] if columns.stop - columns.start == 1 else table[:, columns]


def view_table(view: ViewParams, image_index: np.ndarray, size: int) -> np.ndarray:
    """(n, Layout.width) float64: the table rows of the views `view` describes of `image_index`."""
    layout = Layout(view.num_slots, size, view.blur is not None)
    table = np.empty((view.batch_size, layout.width), np.float64)

    def put(name: str, values: np.ndarray) -> None:
        columns = layout.columns(name)
        table[:, columns] = np.asarray(values, np.float64).reshape(view.batch_size, -1)

    put("image", image_index)
    put("crop", view.crop)
    put("flip", view.flip)
    factor, grey, mean = _jitter_slots(view)
    put("jitter_factor", factor)
    put("jitter_grey", grey)
    put("jitter_mean", mean)
    hue = view.jitter_factors[:, HUE].astype(np.float64)
    put("hue_shift", np.mod(np.trunc(hue * 255), 256))
    put("hue_active", view.jitter)
    put("grayscale", view.grayscale)
    if view.blur is not None:
        radius, ww, fw = box_weights(view.blur)
        put("blur_active", view.blur > 0)
        put("blur_radius", radius)
        put("blur_ww", ww)
        put("blur_fw", fw)
    for s in range(view.num_slots):
        columns = slot_kernels.derived_columns(_slot(view, s, (size, size)).columns, size)
        for column in slot_kernels.slot_columns():
            put(f"slot{s}_{column.name}", columns[column.name])
    return table


def _jitter_slots(view: ViewParams) -> tuple[np.ndarray, ...]:
    """Place each sample's brightness, contrast and saturation in the blend slots around its hue."""
    n = view.batch_size
    factor = np.ones((n, JITTER_SLOTS))
    grey = np.zeros((n, JITTER_SLOTS))
    mean = np.zeros((n, JITTER_SLOTS))
    order = view.jitter_order.astype(np.int64)
    hue_position = np.argmax(order == HUE, axis=1)
    for position in range(4):
        adjustment = order[:, position]
        slot = np.where(position < hue_position, position, PRE_HUE_SLOTS + position - hue_position - 1)
        for kind, degenerate in ((BRIGHTNESS, None), (CONTRAST, mean), (SATURATION, grey)):
            rows = np.nonzero(view.jitter & (adjustment == kind))[0]
            factor[rows, slot[rows]] = view.jitter_factors[rows, kind]
            if degenerate is not None:
                degenerate[rows, slot[rows]] = 1
    return factor, grey, mean


def _slot(view: ViewParams, s: int, size: tuple[int, int]) -> SlotParams:
    params = SlotParams(view.batch_size, slot_kernels.sampled_identities())
    for op_id, op in enumerate(RAND_OPS):
        rows = np.nonzero(view.op_applied[:, s] & (view.op_id[:, s] == op_id))[0]
        if len(rows):
            values = op.value(view.op_magnitude[rows, s], view.op_sign[rows, s])
            op.slot(params, rows, values, view.op_aux[rows, s], size)
    return params
