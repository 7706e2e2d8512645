"""Frozen-backbone features of un-augmented images, the input of every evaluation."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bcl_dali.data.files import BadImages, ImageFiles
from bcl_dali.device import cpu_count
from pipelines.normalize import normalize_uint8

FEATURE_BATCH = 1000
RESIZE_RATIO = 256 / 224
"""Image folders are evaluated as SDCLR evaluates ImageNet-LT: the shorter side resized (bilinear) to
256 for 224-pixel views (in proportion for other sizes), then the central square of the view size."""


@torch.no_grad()
def extract_features(model: nn.Module, images: np.ndarray | torch.Tensor | ImageFiles, device: torch.device,
                     batch_size: int = FEATURE_BATCH, size: int | None = None) -> torch.Tensor:
    """Backbone features (projector removed; SDCLR's dense branch) of un-augmented images, on `device`:
    uint8 NHWC arrays as they are, an image folder's files resized and centre-cropped to `size`.

    Always computed in fp32, whatever precision trained the model, as the official evaluation does:
    bf16 features move few-shot probe accuracies by up to 0.1 points, and the pass is cheap.
    The model is put in eval mode for the pass and restored afterwards.
    """
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for batch in _batches(images, batch_size, size):
            chunks.append(model.features(normalize_uint8(batch.to(device, non_blocking=True))).float())
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, device=device)


def _batches(images: np.ndarray | torch.Tensor | ImageFiles, batch_size: int, size: int | None) -> Iterator[torch.Tensor]:
    if not isinstance(images, ImageFiles):
        images = torch.as_tensor(images)
        return (images[start:start + batch_size] for start in range(0, len(images), batch_size))
    if size is None:
        raise ValueError("features of an image folder need the view size")
    loader = DataLoader(_CentreCrops(images, size), batch_size=batch_size, num_workers=cpu_count(),
                        pin_memory=torch.cuda.is_available(), collate_fn=_crops_or_problems)
    return (_checked(images, batch) for batch in loader)


class _CentreCrops(Dataset):
    def __init__(self, files: ImageFiles, size: int) -> None:
        import torchvision.transforms as T  # seconds to import: only when a folder is evaluated

        self.files = files
        self.size = size
        self.transform = T.Compose([T.Resize(round(size * RESIZE_RATIO)), T.CenterCrop(size)])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[int, str] | None]:
        """The crop, or a blank one and why the file did not decode (a worker's exception would reach
        the user as a traceback of the worker)."""
        try:
            return torch.from_numpy(np.array(self.transform(self.files.open(index)))), None
        except BadImages as error:
            return torch.zeros(self.size, self.size, 3, dtype=torch.uint8), (index, error.reasons[0])


def _crops_or_problems(items: list) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    return torch.stack([crop for crop, _ in items]), [problem for _, problem in items if problem is not None]


def _checked(files: ImageFiles, batch: tuple[torch.Tensor, list[tuple[int, str]]]) -> torch.Tensor:
    crops, problems = batch
    if problems:
        raise BadImages([f"{files.describe(i)} (an evaluation image)" for i, _ in problems],
                        [reason for _, reason in problems], np.array([i for i, _ in problems]))
    return crops
