"""Per-sample parameters of one RandAugment slot of the DALI graph.

The graph runs every stage of a slot over the whole batch (principle 2 of DESIGN.md). Each
field below drives one stage and starts at that stage's identity, so a sample is changed only by
the op its slot chose; each op of `pipelines.ops.RAND_OPS` writes the fields of its own stage.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

LUMA = np.array([19595, 38470, 7471], np.float64) / 65536
"""PIL's ITU-R 601-2 weights for converting RGB to L, in its 16-bit fixed point."""

IDENTITY_AFFINE = np.array([[1, 0, 0], [0, 1, 0]], np.float32)

SOLARIZE_TABLES = 111
"""Solarize inverts pixels >= its threshold in [0, 110]: only the threshold's ceiling matters."""
POSTERIZE_BITS = (1, 2, 3, 4, 5, 6, 7, 8)


@dataclass
class SlotParams:
    affine: np.ndarray
    """(n, 2, 3) float32: destination -> source pixel mapping of warp_affine (PIL's convention)."""
    factor: np.ndarray
    """(n,) float32: PIL ImageEnhance blend factor f, out = D + f (x - D); 1 is the identity."""
    grey: np.ndarray
    """(n,) float32: D includes the grey image L (PIL Color)."""
    mean: np.ndarray
    """(n,) float32: D includes the rounded mean of L (PIL Contrast)."""
    smooth: np.ndarray
    """(n,) float32: D includes the SMOOTH-filtered image, border kept (PIL Sharpness)."""
    autocontrast: np.ndarray
    """(n,) float32 in {0, 1}: stretch each channel to [0, 255]."""
    lut: np.ndarray
    """(n,) uint16: offset of the sample's point table in `lut_tables()` (0: identity)."""
    equalize: np.ndarray
    """(n,) float32 in {0, 1}: histogram equalisation."""
    cutout_top: np.ndarray
    """(n,) float32: first row of the filled square (Cutout)."""
    cutout_left: np.ndarray
    """(n,) float32: first column of the filled square."""
    cutout_bottom: np.ndarray
    """(n,) float32: row after the square's last; equal to `cutout_top` (0) fills nothing."""
    cutout_right: np.ndarray
    """(n,) float32: column after the square's last."""

    @classmethod
    def identity(cls, n: int) -> SlotParams:
        return cls(
            affine=np.repeat(IDENTITY_AFFINE[None], n, axis=0),
            factor=np.ones(n, np.float32),
            grey=np.zeros(n, np.float32),
            mean=np.zeros(n, np.float32),
            smooth=np.zeros(n, np.float32),
            autocontrast=np.zeros(n, np.float32),
            lut=np.zeros(n, np.uint16),
            equalize=np.zeros(n, np.float32),
            cutout_top=np.zeros(n, np.float32),
            cutout_left=np.zeros(n, np.float32),
            cutout_bottom=np.zeros(n, np.float32),
            cutout_right=np.zeros(n, np.float32),
        )

    def arrays(self) -> list[np.ndarray]:
        return [getattr(self, f.name) for f in fields(self)]


INVERT_OFFSET = 256


def solarize_offset(threshold: np.ndarray) -> np.ndarray:
    """LUT offset of PIL's solarize at `threshold` (pixels >= threshold are inverted)."""
    return _offset(2 + np.ceil(threshold))


def posterize_offset(bits: np.ndarray) -> np.ndarray:
    """LUT offset of PIL's posterize keeping `bits` high bits."""
    return _offset(2 + SOLARIZE_TABLES + np.asarray(bits) - POSTERIZE_BITS[0])


def lut_tables() -> np.ndarray:
    """All point tables of the LUT stage, concatenated: identity, invert, solarize at 0..110,
    posterize to 1..8 bits. A pixel p of a sample with offset o reads entry o + p."""
    pixels = np.arange(256)
    tables = [pixels, 255 - pixels]
    tables += [np.where(pixels < t, pixels, 255 - pixels) for t in range(SOLARIZE_TABLES)]
    tables += [pixels & ~(2 ** (8 - b) - 1) for b in POSTERIZE_BITS]
    return np.concatenate(tables).astype(np.uint8)


def _offset(table: np.ndarray) -> np.ndarray:
    return (np.asarray(table, np.int64) * 256).astype(np.uint16)
