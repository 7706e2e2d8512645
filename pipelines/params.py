"""The parameter contract between the augmentation sampler and the executors.

Every random choice of an augmentation is drawn up front into these arrays (one row per sample),
so the DALI graph and the PIL reference executor consume exactly the same decisions and can be
compared op by op.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

ImageSizes = tuple[int, int] | tuple[np.ndarray, np.ndarray]
"""The sizes crop boxes are drawn in: one (height, width) for a whole set, or one per image."""
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
"""ColorJitter's four adjustments, in the order of the columns of `ViewParams.jitter_factors`."""


@dataclass(frozen=True)
class ViewParams:
    """All decisions for one view of a batch of B samples, k RandAugment slots each."""

    crop: np.ndarray
    """(B, 4) int32: top, left, height, width of the RandomResizedCrop box in source pixels."""
    flip: np.ndarray
    """(B,) bool: horizontal flip."""
    jitter: np.ndarray
    """(B,) bool: ColorJitter applied (p = 0.8)."""
    jitter_factors: np.ndarray
    """(B, 4) float32: brightness, contrast, saturation factors and hue shift (see JITTER_OPS)."""
    jitter_order: np.ndarray
    """(B, 4) int8: a permutation of 0..3; the order in which the four adjustments run."""
    grayscale: np.ndarray
    """(B,) bool: RandomGrayscale (p = 0.2)."""
    op_id: np.ndarray
    """(B, k) int16: index into pipelines.ops.RAND_OPS for each RandAugment slot."""
    op_applied: np.ndarray
    """(B, k) bool: the slot's op runs (probability w_i)."""
    op_sign: np.ndarray
    """(B, k) int8: +1 or -1; negates the value of signed (geometric) ops."""
    op_magnitude: np.ndarray
    """(B, k) float32: RandAugment magnitude m in [0, 30]."""
    op_aux: np.ndarray
    """(B, k, 2) float32 in [0, 1): the op's own randomness (Cutout's centre, x then y)."""
    blur: np.ndarray | None = None
    """(B,) float32: sigma of the Gaussian blur after grayscale, 0 where none; None where the recipe
    has no blur (CIFAR's)."""

    def __post_init__(self) -> None:
        batch = len(self.crop)
        slots = self.op_id.shape[1] if self.op_id.ndim == 2 else -1
        expected = {
            "crop": (batch, 4), "flip": (batch,), "jitter": (batch,), "jitter_factors": (batch, 4),
            "jitter_order": (batch, 4), "grayscale": (batch,), "op_id": (batch, slots),
            "op_applied": (batch, slots), "op_sign": (batch, slots),
            "op_magnitude": (batch, slots), "op_aux": (batch, slots, 2),
        }
        if self.blur is not None:
            expected["blur"] = (batch,)
        for name, shape in expected.items():
            actual = getattr(self, name).shape
            if actual != shape:
                raise ValueError(f"ViewParams.{name} has shape {actual}, expected {shape}")

    @property
    def batch_size(self) -> int:
        return len(self.crop)

    @property
    def num_slots(self) -> int:
        return self.op_id.shape[1]

    def select(self, rows: np.ndarray | slice) -> ViewParams:
        """The parameters of a subset of the samples (a batch of an epoch's plan)."""
        return ViewParams(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[rows]
                             for f in fields(self)})


@dataclass(frozen=True)
class AugParams:
    """The two views of one batch. Both are drawn independently from the same recipe."""

    view1: ViewParams
    view2: ViewParams

    def __post_init__(self) -> None:
        if self.view1.batch_size != self.view2.batch_size:
            raise ValueError("both views must describe the same batch")

    @property
    def batch_size(self) -> int:
        return self.view1.batch_size

    @property
    def views(self) -> tuple[ViewParams, ViewParams]:
        return self.view1, self.view2

    def select(self, rows: np.ndarray | slice) -> AugParams:
        return AugParams(self.view1.select(rows), self.view2.select(rows))
