"""The RandAugment op table of BCL, declared once.

Each op is one `RandOp`: its name, the value range that a magnitude m in [0, 30] maps into
(value = m / 30 * (high - low) + low), whether the value's sign is random, and its reference
semantics as a PIL function. The sampler (bcl_dali.policy) reads names and ranges from here, the
reference executor runs `pil`, and the DALI executor maps each op onto its graph by name.
The table and the PIL semantics follow the reference code's `augment_list()` op for op.

`slot` is the op's DALI implementation: it writes, vectorised over the samples that chose the
op, the parameters of the graph stage that performs it (`pipelines.slot.SlotParams`, whose
defaults are the identity), reproducing the PIL semantics. Adding an op is adding one `RandOp`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from pipelines.slot import INVERT_OFFSET, SlotParams, posterize_offset, solarize_offset

MAX_MAGNITUDE = 30.0
CUTOUT_FILL = (125, 123, 114)

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


def cutout_box(size: float, centre: tuple[float, float], width: int, height: int) -> tuple[float, ...]:
    """The reference's CutoutAbs box (x0, y0, x1, y1) for a square of side `size` pixels.

    The reference draws the centre with `np.random.uniform(w)`; here the centre is the sampler's
    aux randomness scaled to the image, uniform in the image as REFERENCE.md states.
    """
    x0 = int(max(0.0, centre[0] * width - size / 2.0))
    y0 = int(max(0.0, centre[1] * height - size / 2.0))
    return x0, y0, min(width, x0 + size), min(height, y0 + size)


def _cutout(img: Image.Image, v: float, aux: tuple[float, float]) -> Image.Image:
    if v <= 0.0:
        return img
    img = img.copy()
    ImageDraw.Draw(img).rectangle(cutout_box(v * img.size[0], aux, *img.size), CUTOUT_FILL)
    return img


def _affine_rows(build: Callable[[np.ndarray, int, int], np.ndarray]) -> SlotWriter:
    def write(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
        p.affine[rows] = build(v, *size)
    return write


def _matrices(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.stack([np.stack([a, b, c], -1), np.stack([d, e, f], -1)], -2).astype(np.float32)


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
    """The matrix PIL's Image.rotate builds: about the image centre, output -> input."""
    angle = -np.radians(degrees)
    cos, sin = np.round(np.cos(angle), 15), np.round(np.sin(angle), 15)
    cx, cy = w / 2.0, h / 2.0
    return _matrices(cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy)


def _blend(degenerate: str | None) -> SlotWriter:
    """PIL's ImageEnhance: blend of the image with its degenerate image D (None: black)."""
    def write(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
        p.factor[rows] = v
        if degenerate is not None:
            getattr(p, degenerate)[rows] = 1
    return write


def _invert_slot(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
    p.lut[rows] = INVERT_OFFSET


def _flag(field: str) -> SlotWriter:
    def write(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
        getattr(p, field)[rows] = 1
    return write


def _solarize_slot(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
    p.lut[rows] = solarize_offset(v)


def _posterize_slot(p: SlotParams, rows: np.ndarray, v: np.ndarray, _: np.ndarray, size: tuple[int, int]) -> None:
    p.lut[rows] = posterize_offset(np.maximum(1, v.astype(np.int64)))


def _cutout_slot(p: SlotParams, rows: np.ndarray, v: np.ndarray, aux: np.ndarray, size: tuple[int, int]) -> None:
    """The box PIL's rectangle fills: corners truncated to pixels, both ends inclusive, clipped."""
    h, w = size
    keep = v > 0
    rows, v, aux = rows[keep], v[keep], aux[keep]
    side = v * w
    x0 = np.floor(np.maximum(0.0, aux[:, 0] * w - side / 2))
    y0 = np.floor(np.maximum(0.0, aux[:, 1] * h - side / 2))
    x1 = np.minimum(np.floor(np.minimum(w, x0 + side)), w - 1)
    y1 = np.minimum(np.floor(np.minimum(h, y0 + side)), h - 1)
    p.cutout_top[rows], p.cutout_left[rows] = y0, x0
    p.cutout_bottom[rows], p.cutout_right[rows] = y1 + 1, x1 + 1


RAND_OPS: tuple[RandOp, ...] = (
    RandOp("ShearX", 0.0, 0.6, True, _shear_x, _affine_rows(_shear_x_matrix)),
    RandOp("ShearY", 0.0, 0.6, True, _shear_y, _affine_rows(_shear_y_matrix)),
    RandOp("TranslateX", 0.0, 0.66, True, _translate_x, _affine_rows(_translate_x_matrix)),
    RandOp("TranslateY", 0.0, 0.66, True, _translate_y, _affine_rows(_translate_y_matrix)),
    RandOp("Rotate", 0.0, 60.0, True, _rotate, _affine_rows(_rotate_matrix)),
    RandOp("AutoContrast", 0.0, 1.0, False, _auto_contrast, _flag("autocontrast")),
    RandOp("Invert", 0.0, 1.0, False, _invert, _invert_slot),
    RandOp("Equalize", 0.0, 1.0, False, _equalize, _flag("equalize")),
    RandOp("Solarize", 0.0, 110.0, False, _solarize, _solarize_slot),
    RandOp("Posterize", 4.0, 8.0, False, _posterize, _posterize_slot),
    RandOp("Contrast", 0.1, 1.9, False, _enhance(ImageEnhance.Contrast), _blend("mean")),
    RandOp("Color", 0.1, 1.9, False, _enhance(ImageEnhance.Color), _blend("grey")),
    RandOp("Brightness", 0.1, 1.9, False, _enhance(ImageEnhance.Brightness), _blend(None)),
    RandOp("Sharpness", 0.1, 1.9, False, _enhance(ImageEnhance.Sharpness), _blend("smooth")),
    RandOp("Cutout", 0.0, 0.4, False, _cutout, _cutout_slot),
)
OP_INDEX: dict[str, int] = {op.name: i for i, op in enumerate(RAND_OPS)}
