"""The RandAugment op table of BCL, declared once.

Each op is one `RandOp`: its name, the value range that a magnitude m in [0, 30] maps into
(value = m / 30 * (high - low) + low), whether the value's sign is random, and its reference
semantics as a PIL function. The sampler (bcl_dali.policy) reads names and ranges from here, the
reference executor runs `pil`, and the DALI executor maps each op onto its graph by name.
The table and the PIL semantics follow the reference code's `augment_list()` op for op.

`slot` is the op's implementation in the augmentation graph: it writes, vectorised over the
samples that chose the op, which slot stage runs it and that stage's parameters
(`pipelines.slot.SlotParams`), reproducing the PIL semantics. Adding an op is adding one `RandOp`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from bcl_dali.pipelines.slot import PointTables, SlotParams, Stage

MAX_MAGNITUDE = 30.0
CUTOUT_FILL = (125, 123, 114)
SOLARIZE_RANGE = (0.0, 110.0)
POINT_TABLES = PointTables(solarize_high=SOLARIZE_RANGE[1])

PilOp = Callable[[Image.Image, float, tuple[float, float]], Image.Image]
SlotWriter = Callable[[SlotParams, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]], None]
"""(slot parameters, rows that run the op, their signed values, their aux randomness, image (h, w))."""


@dataclass(frozen=True)
class RandOp:
    name: str
    low: float
    high: float
    signed: bool
    pil: PilOp
    """Reference semantics: (image, signed value, aux randomness in [0, 1)^2) -> image."""
    slot: SlotWriter
    """DALI implementation: the stage parameters that reproduce `pil` on the chosen rows."""

    def value(self, magnitude: np.ndarray, sign: np.ndarray) -> np.ndarray:
        """The op's parameter for magnitudes m (and signs, for signed ops), vectorised."""
        value = np.asarray(magnitude, np.float64) / MAX_MAGNITUDE * (self.high - self.low) + self.low
        return value * np.asarray(sign) if self.signed else value


def _affine(img: Image.Image, coeffs: tuple[float, ...]) -> Image.Image:
    return img.transform(img.size, Image.Transform.AFFINE, coeffs)


def _shear_x(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
    return _affine(img, (1, v, 0, 0, 1, 0))


def _shear_y(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
    return _affine(img, (1, 0, 0, v, 1, 0))


def _translate_x(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
    return _affine(img, (1, 0, v * img.size[0], 0, 1, 0))


def _translate_y(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
    return _affine(img, (1, 0, 0, 0, 1, v * img.size[1]))


def _rotate(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
    return img.rotate(v)


def _auto_contrast(img: Image.Image, _v: float, _a: tuple[float, float]) -> Image.Image:
    return ImageOps.autocontrast(img)


def _invert(img: Image.Image, _v: float, _a: tuple[float, float]) -> Image.Image:
    return ImageOps.invert(img)


def _equalize(img: Image.Image, _v: float, _a: tuple[float, float]) -> Image.Image:
    return ImageOps.equalize(img)


def _solarize(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
    return ImageOps.solarize(img, v)


def _posterize(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
    return ImageOps.posterize(img, max(1, int(v)))


def _enhance(enhancer: type) -> PilOp:
    def op(img: Image.Image, v: float, _: tuple[float, float]) -> Image.Image:
        return enhancer(img).enhance(v)
    return op


def cutout_centre(aux: np.ndarray | float, length: int) -> np.ndarray | float:
    """The reference's CutoutAbs centre along an axis of `length` pixels, from uniform aux in [0, 1).

    The reference draws it with `np.random.uniform(length)`, which numpy reads as
    uniform(low=length, high=1.0): the centre lies in (1, length], not in [0, length). That is the
    augmentation behind the paper's numbers, so it is kept.
    """
    return length - (length - 1) * aux


def cutout_box(size: float, aux: tuple[float, float], width: int, height: int) -> tuple[float, ...]:
    """The reference's CutoutAbs box (x0, y0, x1, y1) for a square of side `size` pixels."""
    x0 = int(max(0.0, cutout_centre(aux[0], width) - size / 2.0))
    y0 = int(max(0.0, cutout_centre(aux[1], height) - size / 2.0))
    return x0, y0, min(width, x0 + size), min(height, y0 + size)


def _cutout(img: Image.Image, v: float, aux: tuple[float, float]) -> Image.Image:
    if v <= 0.0:
        return img
    img = img.copy()
    ImageDraw.Draw(img).rectangle(cutout_box(v * img.size[0], aux, *img.size), CUTOUT_FILL)
    return img


def _affine_rows(build: Callable[[np.ndarray, int, int], np.ndarray]) -> SlotWriter:
    def write(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
        p.stage[rows] = Stage.WARP
        p.affine[rows] = build(v, *size)
    return write


def _matrices(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.stack([a, b, c, d, e, f], -1).astype(np.float64)


def _shear_x_matrix(v: np.ndarray, h: int, w: int) -> np.ndarray:
    one, zero = np.ones_like(v), np.zeros_like(v)
    return _matrices(one, v, zero, zero, one, zero)


def _shear_y_matrix(v: np.ndarray, h: int, w: int) -> np.ndarray:
    one, zero = np.ones_like(v), np.zeros_like(v)
    return _matrices(one, zero, zero, v, one, zero)


def _translate_x_matrix(v: np.ndarray, h: int, w: int) -> np.ndarray:
    one, zero = np.ones_like(v), np.zeros_like(v)
    return _matrices(one, zero, v * w, zero, one, zero)


def _translate_y_matrix(v: np.ndarray, h: int, w: int) -> np.ndarray:
    one, zero = np.ones_like(v), np.zeros_like(v)
    return _matrices(one, zero, zero, zero, one, v * h)


def _rotate_matrix(degrees: np.ndarray, h: int, w: int) -> np.ndarray:
    """The matrix PIL's Image.rotate builds: angle taken modulo 360, about the image centre, cos and
    sin from Python's math and rounded by round(x, 15) (numpy's cos and rounding can differ from
    them in the last bit, which moves pixels whose source coordinate is near an integer)."""
    angle = -np.radians(np.mod(np.asarray(degrees, np.float64), 360.0))
    cos, sin = (_python_round(np.frompyfunc(f, 1, 1)(angle), 15) for f in (math.cos, math.sin))
    cx, cy = w / 2.0, h / 2.0
    return _matrices(cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy)


def _python_round(values: np.ndarray, digits: int) -> np.ndarray:
    return np.frompyfunc(round, 2, 1)(values, digits).astype(np.float64)


def _enhance_rows(degenerate: int | None) -> SlotWriter:
    """PIL's ImageEnhance: blend of the image with its degenerate image D (None: black), whose part
    `degenerate` (1 grey, 2 rounded mean grey, 3 smoothed image) is switched on."""
    def write(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
        p.stage[rows] = Stage.ENHANCE
        p.enhance[rows, 0] = v
        if degenerate is not None:
            p.enhance[rows, degenerate] = 1
    return write


def _stage_only(stage: Stage) -> SlotWriter:
    def write(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
        p.stage[rows] = stage
    return write


def _point_rows(offset: Callable[[np.ndarray], np.ndarray | float]) -> SlotWriter:
    def write(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
        p.stage[rows] = Stage.POINT
        p.point[rows] = offset(v)
    return write


def _cutout_slot(p: SlotParams, rows: np.ndarray, v: np.ndarray, aux: np.ndarray, size: tuple[int, int]) -> None:
    """The box PIL's rectangle fills: corners truncated to pixels, both ends inclusive, clipped."""
    h, w = size
    keep = v > 0
    rows, v, aux = rows[keep], v[keep], aux[keep]
    side = v * w
    x0 = np.floor(np.maximum(0.0, cutout_centre(aux[:, 0], w) - side / 2))
    y0 = np.floor(np.maximum(0.0, cutout_centre(aux[:, 1], h) - side / 2))
    x1 = np.minimum(np.floor(np.minimum(w, x0 + side)), w - 1)
    y1 = np.minimum(np.floor(np.minimum(h, y0 + side)), h - 1)
    p.stage[rows] = Stage.CUTOUT
    p.cutout[rows] = np.stack([y0, x0, y1 + 1, x1 + 1], 1)


RAND_OPS: tuple[RandOp, ...] = (
    RandOp("ShearX", 0.0, 0.6, True, _shear_x, _affine_rows(_shear_x_matrix)),
    RandOp("ShearY", 0.0, 0.6, True, _shear_y, _affine_rows(_shear_y_matrix)),
    RandOp("TranslateX", 0.0, 0.66, True, _translate_x, _affine_rows(_translate_x_matrix)),
    RandOp("TranslateY", 0.0, 0.66, True, _translate_y, _affine_rows(_translate_y_matrix)),
    RandOp("Rotate", 0.0, 60.0, True, _rotate, _affine_rows(_rotate_matrix)),
    RandOp("AutoContrast", 0.0, 1.0, False, _auto_contrast, _stage_only(Stage.AUTOCONTRAST)),
    RandOp("Invert", 0.0, 1.0, False, _invert, _point_rows(lambda v: POINT_TABLES.invert())),
    RandOp("Equalize", 0.0, 1.0, False, _equalize, _stage_only(Stage.EQUALIZE)),
    RandOp("Solarize", *SOLARIZE_RANGE, False, _solarize, _point_rows(POINT_TABLES.solarize)),
    RandOp("Posterize", 4.0, 8.0, False, _posterize,
           _point_rows(lambda v: POINT_TABLES.posterize(np.maximum(1, v.astype(np.int64))))),
    RandOp("Contrast", 0.1, 1.9, False, _enhance(ImageEnhance.Contrast), _enhance_rows(2)),
    RandOp("Color", 0.1, 1.9, False, _enhance(ImageEnhance.Color), _enhance_rows(1)),
    RandOp("Brightness", 0.1, 1.9, False, _enhance(ImageEnhance.Brightness), _enhance_rows(None)),
    RandOp("Sharpness", 0.1, 1.9, False, _enhance(ImageEnhance.Sharpness), _enhance_rows(3)),
    # Cutout's centre follows the reference's np.random.uniform(w): in (1, w], see cutout_centre.
    RandOp("Cutout", 0.0, 0.4, False, _cutout, _cutout_slot),
)
OP_INDEX: dict[str, int] = {op.name: i for i, op in enumerate(RAND_OPS)}
