"""Shared builders for executor tests: test images, hand-made parameter rows, both executors' output."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.inputs import ResidentInput
from bcl_dali.pipelines.normalize import MEAN, STD
from bcl_dali.pipelines.params import AugParams, ViewParams
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import augment_view


MEAN_TOLERANCE, FAR_TOLERANCE = 1.0, 0.02
"""The executors' parity tolerance where a view is not PIL's bit for bit: mean difference at most 1
level, at most 2% of values more than 8 levels off."""


def natural_images(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """Smooth colour blobs on a tinted background plus noise: saturated colours, gradients and edges,
    so that every op (and every HSV sector) changes the image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        image = np.zeros((size, size, 3)) + rng.uniform(0, 255, 3)
        for _ in range(4):
            centre, radius, colour = rng.uniform(0, 1, 2), rng.uniform(0.1, 0.4), rng.uniform(-120, 120, 3)
            blob = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius ** 2))
            image += blob[..., None] * colour
        images[i] = np.clip(image + rng.normal(0, 8, image.shape), 0, 255)
    return images


def plain_view(n: int, slots: int, seed: int = 0, size: int = 32) -> dict[str, np.ndarray]:
    """Fields of a ViewParams whose base chain is the identity and whose slots do nothing."""
    rng = np.random.default_rng(seed)
    return dict(
        crop=np.tile([0, 0, size, size], (n, 1)).astype(np.int32), flip=np.zeros(n, bool),
        jitter=np.zeros(n, bool), jitter_factors=np.tile([1, 1, 1, 0], (n, 1)).astype(np.float32),
        jitter_order=np.tile(np.arange(4), (n, 1)).astype(np.int8), grayscale=np.zeros(n, bool),
        op_id=np.zeros((n, slots), np.int16), op_applied=np.zeros((n, slots), bool),
        op_sign=np.ones((n, slots), np.int8), op_magnitude=np.zeros((n, slots), np.float32),
        op_aux=rng.random((n, slots, 2)).astype(np.float32),
    )


def dali_views(images: np.ndarray, view: ViewParams) -> np.ndarray:
    """View 1 of the DALI CPU executor, de-normalised back to uint8 (float16 keeps it exact)."""
    n = len(images)
    executor = DaliExecutor(ResidentInput(images), size=images.shape[1], num_slots=view.num_slots, batch_size=n,
                            device=torch.device("cpu"), threads=2)
    ((_, views),) = list(executor.epoch(EpochPlan(np.arange(n), n, AugParams(view, view))))
    return to_uint8(views[:n])


def to_uint8(views: torch.Tensor) -> np.ndarray:
    pixels = views.float() * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    return (pixels * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def reference_views(images: np.ndarray, view: ViewParams) -> np.ndarray:
    return np.stack([np.asarray(augment_view(Image.fromarray(image), view, i, images.shape[1]))
                     for i, image in enumerate(images)])


def levels(views: torch.Tensor) -> np.ndarray:
    """Normalised float32 views back to 8-bit levels."""
    std, mean = torch.tensor(STD).view(1, 3, 1, 1), torch.tensor(MEAN).view(1, 3, 1, 1)
    return torch.round((views.float() * std + mean) * 255).numpy().astype(int)
