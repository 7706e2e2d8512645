"""The PIL/torchvision reference executor: the reference code's augmentation, op for op.

It is the parity oracle for the DALI executor and the "reference" baseline of the benchmarks, so it
runs the same torchvision functional calls on PIL images that the reference's transforms make, in
DataLoader worker processes as the reference does, but takes every random decision from the
parameter arrays (pipelines.params) instead of drawing it, so that any executor given the same
parameters can be compared with it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode

from bcl_dali.pipelines.normalize import normalize_uint8
from bcl_dali.pipelines.ops import RAND_OPS
from bcl_dali.pipelines.params import JITTER_OPS, ViewParams
from bcl_dali.pipelines.plan import EpochPlan


class DecodedImages(Protocol):
    """What the reference executor needs of an image source (bcl_dali.data.source): its length, and
    image `index` as PIL decodes it."""

    def __len__(self) -> int: ...

    def open(self, index: int) -> Image.Image: ...


JITTER_ADJUSTMENTS = tuple(getattr(F, f"adjust_{name}") for name in JITTER_OPS)
"""ColorJitter's adjustments indexed as its `fn_idx` (0 brightness, 1 contrast, 2 saturation, 3 hue)."""


def augment_view(image: Image.Image, params: ViewParams, row: int, size: int) -> Image.Image:
    """One view of one sample: the reference's transform chain with `params` row `row` as its dice."""
    top, left, height, width = (int(v) for v in params.crop[row])
    image = F.resized_crop(image, top, left, height, width, [size, size], InterpolationMode.BICUBIC,
                           antialias=True)
    if params.flip[row]:
        image = F.hflip(image)
    if params.jitter[row]:
        factors = params.jitter_factors[row]
        for fn_id in params.jitter_order[row]:
            image = JITTER_ADJUSTMENTS[fn_id](image, float(factors[fn_id]))
    if params.grayscale[row]:
        image = F.rgb_to_grayscale(image, num_output_channels=3)
    if params.blur is not None and params.blur[row] > 0:
        image = image.filter(ImageFilter.GaussianBlur(radius=float(params.blur[row])))
    slots = zip(params.op_id[row], params.op_applied[row], params.op_sign[row], params.op_magnitude[row],
                params.op_aux[row])
    for op_id, applied, sign, magnitude, aux in slots:
        if applied:
            op = RAND_OPS[op_id]
            image = op.pil(image, float(op.value(magnitude, sign)), (float(aux[0]), float(aux[1])))
    return image


def to_model_input(views: list[Image.Image]) -> torch.Tensor:
    """PIL views -> normalised float32 NCHW (ToTensor then Normalize, as the reference feeds its model).

    The uint8 pixels are stacked channel-first, so the float arithmetic runs on contiguous memory and
    its result is NCHW-contiguous without another copy (about 6x faster than normalising NHWC).
    """
    channels_first = np.ascontiguousarray(np.stack([np.asarray(view) for view in views]).transpose(0, 3, 1, 2))
    return normalize_uint8(torch.from_numpy(channels_first).permute(0, 2, 3, 1))


class _PlanBatches(Dataset):
    """One item is one whole batch of the plan, so parameters are sliced once per batch.

    It holds only references to the image array and the plan: forked workers share them instead of
    receiving a copy with each batch.
    """

    def __init__(self, images: DecodedImages, plan: EpochPlan, size: int) -> None:
        self.images = images
        self.plan = plan
        self.size = size

    def __len__(self) -> int:
        return self.plan.num_batches

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        indices, params = self.plan.batch(b)
        views: tuple[list[Image.Image], list[Image.Image]] = ([], [])
        for row, index in enumerate(indices):
            image = self.images.open(index)
            for view, view_params in zip(views, params.views):
                view.append(augment_view(image, view_params, row, self.size))
        return torch.from_numpy(indices.astype(np.int64)), to_model_input(views[0] + views[1])


class ReferenceExecutor:
    """Turns (images, EpochPlan) into batches of (indices, views) the way the reference does.

    `workers` DataLoader processes do the per-sample PIL work (0 = in this process). Batches are
    pinned when CUDA is available, since they are then headed for the GPU.
    """

    def __init__(self, images: DecodedImages, size: int = 32, workers: int = 0) -> None:
        """`images`: in-memory arrays, or an image folder's files (read with PIL, as torchvision's
        ImageFolder reads them)."""
        self.images = images
        self.size = size
        self.workers = workers

    def epoch(self, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The plan's batches in plan order: int64 sample indices and the (2B, 3, size, size) views,
        view 1 of the B samples then view 2."""
        loader = DataLoader(_PlanBatches(self.images, plan, self.size), batch_size=None, shuffle=False,
                            num_workers=self.workers, pin_memory=torch.cuda.is_available())
        yield from loader
