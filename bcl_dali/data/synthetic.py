"""`synthetic-lt`: a built-in, procedurally drawn 32x32 dataset shaped like CIFAR-100.

Each class is a combination of a fill texture and a shape (10 x 10; class k has texture k mod 10,
so a 10-class set differs in texture alone); colour is drawn per image, muted (low saturation), and
says nothing about the class, as SimCLR's colour jitter and grayscale assume of natural images. Every
image also varies the object's scale, rotation (no two shapes or textures are rotations of each
other), position, texture frequency and phase, shade, the background gradient and the noise, so raw
pixels and mean colour separate the classes poorly. The object fills most of the frame, so
RandomResizedCrop's views mostly see it: a CPU can show contrastive learning at work in minutes.

An image's pixels depend only on the seed and its index: every random choice of an index space is
drawn up front (a row of uniforms per image), and only the requested images are rendered,
vectorised over images (channel-first float32 inside, so numpy's inner loops run over whole
planes). The training pool mirrors CIFAR-100's (500 per class, 50,000 indices at 100 classes), so
the reference's split files are valid index files for it.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from bcl_dali.data.arrays import ArrayImages
from bcl_dali.data.sets import ImageSet, TrainPool
from bcl_dali.device import cpu_count
from bcl_dali.errors import UserError

SIZE = 32
POOL_PER_CLASS = 500
PROBE_PER_CLASS = 200
TEST_PER_CLASS = 100


def _radius(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v)


def _wave(t: np.ndarray) -> np.ndarray:
    """A triangle wave of period 1 in [-1, 1]: sine-like, but exact arithmetic on every CPU."""
    return 4.0 * np.abs(t - np.floor(t) - 0.5) - 1.0


SHAPES = {
    "disc": lambda u, v: _radius(u, v) - 1.0,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) - 0.8,
    "triangle": lambda u, v: 1.6 * np.maximum(-v - 0.5, 0.866 * np.abs(u) + 0.5 * v - 0.5),
    "ring": lambda u, v: np.abs(_radius(u, v) - 0.75) - 0.25,
    "plus": lambda u, v: np.minimum(np.maximum(np.abs(u) - 1.0, np.abs(v) - 0.3),
                                    np.maximum(np.abs(u) - 0.3, np.abs(v) - 1.0)),
    "bar": lambda u, v: np.maximum(np.abs(u) - 1.0, np.abs(v) - 0.35),
    "frame": lambda u, v: np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.65) - 0.2,
    "half-disc": lambda u, v: np.maximum(_radius(u, v + 0.4) - 1.0, -(v + 0.4)),
    "crescent": lambda u, v: np.maximum(_radius(u, v) - 1.0, 0.8 - _radius(u - 0.55, v)),
    "dumbbell": lambda u, v: np.minimum(_radius(u - 0.6, v), _radius(u + 0.6, v)) - 0.4,
}
"""Signed distance to the outline in units of the object's radius (negative inside)."""

TEXTURES = {
    "solid": lambda u, v, phase: np.zeros_like(u),
    "stripes": lambda u, v, phase: 0.5 + 0.5 * _wave(u + phase),
    "checker": lambda u, v, phase: np.clip(0.5 + 2.0 * _wave(u + phase) * _wave(v), 0.0, 1.0),
    "rings": lambda u, v, phase: 0.5 + 0.5 * _wave(_radius(u, v) + phase),
    "dots": lambda u, v, phase: np.clip(2.0 * _wave(u + phase) * _wave(v) - 0.5, 0.0, 1.0),
    "fine-stripes": lambda u, v, phase: 0.5 + 0.5 * _wave(2.5 * u + phase),
    "fine-dots": lambda u, v, phase: np.clip(2.0 * _wave(2.5 * u + phase) * _wave(2.5 * v) - 0.5, 0.0, 1.0),
    "grid": lambda u, v, phase: np.clip(3.0 * (np.maximum(_wave(u + phase), _wave(v)) - 0.4), 0.0, 1.0),
    "halves": lambda u, v, phase: np.clip(4.0 * u + 0.5, 0.0, 1.0),
    "spot": lambda u, v, phase: np.clip(4.0 * (0.6 - _radius(u, v)), 0.0, 1.0),
}
"""Fill pattern in [0, 1] (how much the fill is darkened), in the object's own rotated, scaled frame;
`phase` is in cycles."""

MAX_CLASSES = len(SHAPES) * len(TEXTURES)
DEFAULT_CLASSES = 100
"""CIFAR-100-LT's class count."""
NOISE_FIELDS = 64
NOISE_MARGIN = 16
CHUNK = 256
"""Images rendered at once: keeps the float32 temporaries near the size of the CPU caches."""

_POOL_STREAM, _TEST_STREAM, _NOISE_STREAM = 0, 1, 2
_PARAMS = ("x", "y", "radius", "angle", "hue", "saturation", "value", "shade", "frequency", "phase",
           "bg_grey1", "bg_grey2", "bg_red", "bg_green", "bg_blue", "bg_angle", "noise",
           "noise_field", "noise_top", "noise_left")


def synthetic_pool(num_classes: int = 100, seed: int = 0) -> TrainPool:
    """The training pool (labels known without rendering), its probe pool and its test set."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise UserError(f"synthetic-lt has between 2 and {MAX_CLASSES} classes, got {num_classes}")
    labels = np.arange(POOL_PER_CLASS * num_classes, dtype=np.int64) % num_classes
    params = _draw_params(len(labels), seed, _POOL_STREAM)
    noise = np.random.default_rng([seed, _NOISE_STREAM]).standard_normal(
        (NOISE_FIELDS, 3, SIZE + NOISE_MARGIN, SIZE + NOISE_MARGIN), dtype=np.float32)

    def test() -> ImageSet:
        test_labels = np.arange(TEST_PER_CLASS * num_classes, dtype=np.int64) % num_classes
        return ImageSet(ArrayImages(_render(test_labels, _draw_params(len(test_labels), seed, _TEST_STREAM), noise)),
                        test_labels)

    return TrainPool(name="synthetic-lt", num_classes=num_classes, labels=labels,
                     probe_indices=np.arange(PROBE_PER_CLASS * num_classes, dtype=np.int64),
                     images=lambda indices: ArrayImages(_render(labels[indices], params[indices], noise)), test=test)


def _draw_params(count: int, seed: int, stream: int) -> np.ndarray:
    """(count, len(_PARAMS)) uniforms in [0, 1): row i holds every random choice of image i."""
    return np.random.default_rng([seed, stream]).random((count, len(_PARAMS)), dtype=np.float32)


def _render(labels: np.ndarray, params: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) uint8 images of classes `labels` from their parameter rows, chunks on all cores."""
    out = np.empty((len(labels), SIZE, SIZE, 3), np.uint8)

    def fill(start: int) -> None:
        rows = slice(start, start + CHUNK)
        out[rows] = _render_chunk(labels[rows], params[rows], noise).transpose(0, 2, 3, 1)

    with ThreadPoolExecutor(cpu_count()) as pool:
        list(pool.map(fill, range(0, len(labels), CHUNK)))
    return out


def _render_chunk(labels: np.ndarray, params: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(n, 3, 32, 32) uint8.

    Three grey planes (background low end, background ramp, object) are mixed into RGB by a
    per-image 3x3 colour matrix. Per-pixel work is plain IEEE arithmetic (no transcendental
    functions, no fused or BLAS kernels), so the bytes are the same on every CPU.
    """
    column = dict(zip(_PARAMS, params.T))
    p = {name: values[:, None, None] for name, values in column.items()}
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5

    radius = 11.0 + 4.0 * p["radius"]
    cos, sin = _direction(p["angle"])
    dx, dy = x - (14.0 + 4.0 * p["x"]), y - (14.0 + 4.0 * p["y"])
    u, v = (cos * dx + sin * dy) / radius, (cos * dy - sin * dx) / radius
    coverage = np.clip(0.5 - _per_group(SHAPES, labels // len(TEXTURES) % len(SHAPES), u, v) * radius, 0.0, 1.0)
    frequency = 1.2 + 0.6 * p["frequency"]
    texture = labels % len(TEXTURES)
    pattern = _per_group(TEXTURES, texture, u * frequency, v * frequency, p["phase"])
    bg_cos, bg_sin = _direction(p["bg_angle"])
    ramp = (bg_cos * (x - SIZE / 2) + bg_sin * (y - SIZE / 2)) / SIZE + 0.5
    planes = (1.0 - coverage, ramp * (1.0 - coverage), coverage * (1.0 - (0.5 + 0.3 * p["shade"]) * pattern))

    fill = _hsv_to_rgb(column["hue"], 0.1 + 0.25 * column["saturation"], 0.55 + 0.45 * column["value"])
    tint = 0.15 * (np.stack([column["bg_red"], column["bg_green"], column["bg_blue"]], 1) - 0.5)
    low, high = (0.3 + 0.4 * column[name][:, None] + tint for name in ("bg_grey1", "bg_grey2"))
    colours = [255.0 * c[:, :, None, None] for c in (low, high - low, fill)]

    image = (2.0 + 8.0 * p["noise"][..., None]) * _noise_windows(column, noise)
    for colour, plane in zip(colours, planes):
        image += colour * plane[:, None]
    return np.clip(image, 0.0, 255.0, out=image).astype(np.uint8)


def _direction(turns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of an angle given in turns; float64 then rounded, so libm differences vanish."""
    radians = 2 * np.pi * turns.astype(np.float64)
    return np.cos(radians).astype(np.float32), np.sin(radians).astype(np.float32)


def _per_group(functions: dict[str, Callable[..., np.ndarray]], group: np.ndarray, *planes: np.ndarray) -> np.ndarray:
    """Apply functions[k] to the images whose group is k; one vectorised call per group."""
    out = np.empty(np.broadcast_shapes(*(plane.shape for plane in planes)), np.float32)
    for k, function in enumerate(functions.values()):
        rows = group == k
        out[rows] = function(*(np.broadcast_to(plane, out.shape)[rows] for plane in planes))
    return out


def _hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """(n,) HSV in [0, 1] -> (n, 3) RGB in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0], np.float32) + 6.0 * hue[:, None]) % 6.0
    return value[:, None] * (1.0 - saturation[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def _noise_windows(column: dict[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
    """(n, 3, 32, 32): each image's window into one field of the seed's noise bank."""
    windows = np.lib.stride_tricks.sliding_window_view(noise, (SIZE, SIZE), axis=(2, 3))
    field = (column["noise_field"] * NOISE_FIELDS).astype(np.intp)
    top, left = ((column[name] * (NOISE_MARGIN + 1)).astype(np.intp) for name in ("noise_top", "noise_left"))
    return windows[field, :, top, left]
