"""Per-view parameters of one RandAugment slot, as the augmentation's slot kernels read them.

A slot applies at most one op to a view. Each op of `pipelines.ops.RAND_OPS` runs on one of six
stages (a resampling warp, an ImageEnhance blend, autocontrast, a point table, equalisation, a
filled box) and writes that stage's parameters for the views that drew it; `stage` says which stage
a view runs, and NO_STAGE leaves the view as it is. Which columns exist, and the values that leave a
view as it is, are the kernels' declarations (pipelines.slot_kernels).
"""
from __future__ import annotations

from enum import IntEnum
from typing import Iterable

import numpy as np


class Stage(IntEnum):
    WARP = 0
    ENHANCE = 1
    AUTOCONTRAST = 2
    POINT = 3
    EQUALIZE = 4
    CUTOUT = 5


NO_STAGE = -1
IDENTITY_AFFINE = np.array([1, 0, 0, 0, 1, 0], np.float64)
POSTERIZE_BITS = (1, 2, 3, 4, 5, 6, 7, 8)


class SlotParams:
    """A slot's columns for n views, by name (`params.affine`: (n, 6) float64), each starting at the
    value that leaves a view as it is; the ops write the rows of the views that drew them."""

    def __init__(self, n: int, identities: Iterable[tuple[str, int, tuple[float, ...]]]) -> None:
        """`identities`: each column's name, width and identity value(s)."""
        self.columns = {name: np.array(np.broadcast_to(np.asarray(identity, np.float64), (n, width)).squeeze(1)
                                       if width == 1 else np.broadcast_to(np.asarray(identity, np.float64), (n, width)))
                        for name, width, identity in identities}

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["columns"][name]
        except KeyError:
            raise AttributeError(name) from None


def running_coordinates(affine: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """PIL's pixel coordinates for affine data without shear (b = d = 0: translations, the identity),
    per view: (n, size) source columns and rows, -1 where negative.

    PIL tabulates them (ImagingScaleAffine) by a float64 running sum, c + a/2 then + a per column
    (f + e/2, + e per row), and truncates. numpy's cumulative sum adds in the same order; on the GPU
    a parallel scan would not, so the tables are made here, when the epoch is planned.
    """
    a, c, e, f = affine[:, 0], affine[:, 2], affine[:, 4], affine[:, 5]

    def running(start: np.ndarray, step: np.ndarray) -> np.ndarray:
        steps = np.concatenate([start[:, None], np.repeat(step[:, None], size - 1, axis=1)], axis=1)
        return np.maximum(np.floor(np.cumsum(steps, axis=1)), -1.0)

    return running(c + a * 0.5, a), running(f + e * 0.5, e)


def solarize_thresholds(high: float) -> int:
    """Tables that Solarize with thresholds in [0, high] needs: only the threshold's ceiling matters."""
    return int(np.ceil(high)) + 1


class PointTables:
    """Every point map of the POINT stage, concatenated: identity, invert, solarize at each integer
    threshold, posterize to 1..8 bits. A pixel p of a view whose table starts at offset o reads
    entry o + p."""

    def __init__(self, solarize_high: float) -> None:
        self.solarize_tables = solarize_thresholds(solarize_high)
        pixels = np.arange(256)
        tables = [pixels, 255 - pixels]
        tables += [np.where(pixels < t, pixels, 255 - pixels) for t in range(self.solarize_tables)]
        tables += [pixels & ~(2 ** (8 - b) - 1) for b in POSTERIZE_BITS]
        self.values = np.concatenate(tables).astype(np.uint8)

    @staticmethod
    def invert() -> float:
        return 256.0

    @staticmethod
    def solarize(threshold: np.ndarray) -> np.ndarray:
        """PIL's solarize at `threshold`: pixels >= threshold are inverted."""
        return (2 + np.ceil(threshold)) * 256.0

    def posterize(self, bits: np.ndarray) -> np.ndarray:
        """PIL's posterize keeping `bits` high bits."""
        return (2 + self.solarize_tables + np.asarray(bits) - POSTERIZE_BITS[0]) * 256.0
