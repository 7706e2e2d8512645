"""Images held in memory as one uint8 array (synthetic-lt, CIFAR, .npz): moved to the device once,
and cropped there (pipelines.inputs.ResidentInput)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from PIL import Image

from bcl_dali.errors import UserError

if TYPE_CHECKING:
    from bcl_dali.pipelines.inputs import ResidentInput


class ArrayImages:
    """An image source (bcl_dali.data.source) over C-contiguous uint8 (N, H, W, 3) pixels."""

    def __init__(self, pixels: np.ndarray) -> None:
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {pixels.dtype} {pixels.shape}")
        self.pixels = np.ascontiguousarray(pixels)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, indices: np.ndarray) -> ArrayImages:
        return ArrayImages(self.pixels[indices])

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        return self.pixels if dtype is None else self.pixels.astype(dtype)

    def sizes(self, indices: np.ndarray) -> tuple[int, int]:
        height, width = self.pixels.shape[1:3]
        return height, width

    def view_size(self, requested: int) -> int:
        """The images' own side: views of in-memory images are not resized to another size."""
        height, width = self.pixels.shape[1:3]
        if height != width:
            raise UserError(f"training images are {height}x{width}; RandomResizedCrop here makes square views, "
                            "so give square images (e.g. resize the .npz to 32x32)")
        return height

    def open(self, index: int) -> Image.Image:
        return Image.fromarray(self.pixels[index])

    def dali_input(self) -> ResidentInput:
        from bcl_dali.pipelines.inputs import ResidentInput  # DALI takes seconds to import: only when an executor is built

        return ResidentInput(self.pixels)

    def batches(self, batch_size: int, size: int | None) -> Iterator[torch.Tensor]:
        """The arrays as they are: in-memory images are evaluated at their own size."""
        pixels = torch.from_numpy(self.pixels)
        return (pixels[start:start + batch_size] for start in range(0, len(pixels), batch_size))

    def records(self, known: object) -> None:
        return None

    def identity(self) -> memoryview:
        return memoryview(self.pixels).cast("B")

    def describe(self, index: int) -> str:
        return f"image {index}"
