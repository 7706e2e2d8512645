"""BCL's augmentation policy: per-sample weights in, an explicit parameter batch out.

One seeded numpy sampler, vectorised over the batch, draws every random decision of both views
(the SimCLR base chain and the boosted RandAugment slots) into `pipelines.params.AugParams`, so
any executor given the same parameters produces the same augmentation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bcl_dali.pipelines.blur import SIGMA_RANGE
from bcl_dali.pipelines.ops import MAX_MAGNITUDE, RAND_OPS
from bcl_dali.pipelines.params import AugParams, ImageSizes, ViewParams

CROP_SCALE = (0.1, 1.0)
"""The reference's CIFAR crop scale; the ImageNet-LT and Places-LT recipes crop from 0.08 up."""
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
CROP_ATTEMPTS = 10
FLIP_P = 0.5
JITTER_P = 0.8
JITTER_STRENGTH = (0.4, 0.4, 0.4, 0.1)
GRAYSCALE_P = 0.2
BLUR_P = 0.5
"""The ImageNet recipe's Gaussian blur (SDCLR's, after MoCo): p = 0.5, sigma ~ U(0.1, 2)."""
SINGLE_OP_FLOOR = 10.0
"""k = 1 (BCL-I): m = 10 + 20 w at strength 30."""
MULTI_OP_FLOOR = 5.0
"""k >= 2 (BCL-D): m = 5 + 25 w u at strength 30, u ~ U(0, 1) once per sample."""
WEIGHT_NORMS = ("paper", "rank")
"""How the momentum loss becomes weights in [0, 1]: the paper's z / max|z| / 2 + 1/2, where the one
sample furthest from the mean sets the scale (so most weights sit near 1/2), or each sample's rank
among the training set's, which spreads the weights evenly over [0, 1]."""


@dataclass(frozen=True)
class BoostPolicy:
    """k RandAugment slots per view; `strength` is the magnitude a sample of weight 1 reaches.

    k = 0 gives the plain SimCLR augmentation (the baselines SimCLR and SDCLR).
    """

    k: int
    strength: float = MAX_MAGNITUDE
    crop_scale: tuple[float, float] = CROP_SCALE
    blur: bool = False

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ValueError(f"k must be >= 0, got {self.k}")
        floor = SINGLE_OP_FLOOR if self.k == 1 else MULTI_OP_FLOOR
        if self.k > 0 and not floor <= self.strength <= MAX_MAGNITUDE:
            raise ValueError(f"rand strength must lie in [{floor:g}, {MAX_MAGNITUDE:g}] for k = {self.k}, "
                             f"got {self.strength:g}")

    def magnitudes(self, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per-sample magnitude m, shared by both views of a sample."""
        if self.k == 1:
            return SINGLE_OP_FLOOR + (self.strength - SINGLE_OP_FLOOR) * weights
        u = rng.random(len(weights))
        return MULTI_OP_FLOOR + (self.strength - MULTI_OP_FLOOR) * weights * u

    def sample(self, weights: np.ndarray, rng: np.random.Generator, image_hw: ImageSizes) -> AugParams:
        """Draw both views' parameters for samples with BCL weights `weights` (each in [0, 1]) of
        images of `image_hw` pixels: one size for all, or (heights, widths) arrays, one per sample."""
        weights = np.asarray(weights, np.float64)
        magnitude = self.magnitudes(weights, rng) if self.k else np.zeros(len(weights))
        return AugParams(*(self._view(weights, magnitude, rng, image_hw) for _ in range(2)))

    def _view(self, weights: np.ndarray, magnitude: np.ndarray, rng: np.random.Generator,
              image_hw: ImageSizes) -> ViewParams:
        n, k = len(weights), self.k
        b, c, s, h = JITTER_STRENGTH
        factors = np.stack([
            rng.uniform(1 - b, 1 + b, n), rng.uniform(1 - c, 1 + c, n),
            rng.uniform(1 - s, 1 + s, n), rng.uniform(-h, h, n),
        ], axis=1)
        return ViewParams(
            crop=crop_boxes(rng, n, *image_hw, scale=self.crop_scale),
            flip=rng.random(n) < FLIP_P,
            jitter=rng.random(n) < JITTER_P,
            jitter_factors=factors.astype(np.float32),
            jitter_order=np.argsort(rng.random((n, 4)), axis=1).astype(np.int8),
            grayscale=rng.random(n) < GRAYSCALE_P,
            op_id=rng.integers(0, len(RAND_OPS), (n, k)).astype(np.int16),
            op_applied=rng.random((n, k)) < weights[:, None],
            op_sign=np.where(rng.random((n, k)) < 0.5, 1, -1).astype(np.int8),
            op_magnitude=np.repeat(magnitude[:, None], k, axis=1).astype(np.float32),
            op_aux=rng.random((n, k, 2)).astype(np.float32),
            blur=self._blur(rng, n) if self.blur else None,
        )

    @staticmethod
    def _blur(rng: np.random.Generator, n: int) -> np.ndarray:
        applied = rng.random(n) < BLUR_P
        return np.where(applied, rng.uniform(*SIGMA_RANGE, n), 0.0).astype(np.float32)


def crop_boxes(rng: np.random.Generator, n: int, height: int | np.ndarray, width: int | np.ndarray,
               scale: tuple[float, float] = CROP_SCALE) -> np.ndarray:
    """RandomResizedCrop boxes (top, left, h, w) drawn as torchvision's `get_params` draws them.

    Ten attempts of (area, log-aspect) per sample, the first that fits wins, else the central
    fallback crop; vectorised over samples instead of looping. `height` and `width` are one
    image size or one per sample (image folders).
    """
    height = np.broadcast_to(np.asarray(height, np.int64), (n,))
    width = np.broadcast_to(np.asarray(width, np.int64), (n,))
    area = (height * width)[:, None]
    log_ratio = np.log(CROP_RATIO)
    target = area * rng.uniform(*scale, (n, CROP_ATTEMPTS))
    aspect = np.exp(rng.uniform(*log_ratio, (n, CROP_ATTEMPTS)))
    w = np.round(np.sqrt(target * aspect)).astype(np.int64)
    h = np.round(np.sqrt(target / aspect)).astype(np.int64)
    fits = (w > 0) & (w <= width[:, None]) & (h > 0) & (h <= height[:, None])
    first = fits.argmax(axis=1)
    rows = np.arange(n)
    h, w = h[rows, first], w[rows, first]

    fallback = ~fits.any(axis=1)
    if fallback.any():
        h[fallback], w[fallback] = _central_fallback(height[fallback], width[fallback])
    top = np.floor(rng.random(n) * (height - h + 1)).astype(np.int64)
    left = np.floor(rng.random(n) * (width - w + 1)).astype(np.int64)
    top[fallback] = (height[fallback] - h[fallback]) // 2
    left[fallback] = (width[fallback] - w[fallback]) // 2
    return np.stack([top, left, h, w], axis=1).astype(np.int32)


def _central_fallback(height: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's whole-image fallback, clipped to the aspect range (Python's round: half to even, as numpy's)."""
    in_ratio = width / height
    narrow, wide = in_ratio < CROP_RATIO[0], in_ratio > CROP_RATIO[1]
    h = np.where(narrow, np.round(width / CROP_RATIO[0]).astype(np.int64), height)
    w = np.where(wide, np.round(height * CROP_RATIO[1]).astype(np.int64), width)
    return h, w

