"""An image folder's un-augmented images for evaluation, as SDCLR evaluates ImageNet-LT: the shorter
side resized (bilinear) to 256 for 224-pixel views (in proportion for other sizes), then the central
square of the view size; decoded by DataLoader workers on every core."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bcl_dali.data.files import BadImages
from bcl_dali.device import cpu_count

if TYPE_CHECKING:
    from bcl_dali.data.files import ImageFiles

RESIZE_RATIO = 256 / 224


def centre_crops(files: ImageFiles, batch_size: int, size: int) -> Iterator[torch.Tensor]:
    """uint8 (n, size, size, 3) batches in order; a file that does not decode is a BadImages error
    naming it as an evaluation image."""
    loader = DataLoader(_CentreCrops(files, size), batch_size=batch_size, num_workers=cpu_count(),
                        pin_memory=torch.cuda.is_available(), collate_fn=_crops_or_problems)
    return (_checked(files, batch) for batch in loader)


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
