"""The image source protocol: what training, evaluation and the executors need of a set of images,
wherever its pixels live. In-memory arrays (`ArrayImages`: synthetic-lt, CIFAR, .npz) and image
folders (`ImageFiles`) are sources; nothing outside this package asks which one it holds."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Protocol

import numpy as np
import torch
from PIL import Image

from bcl_dali.data.files import FileRecords
from bcl_dali.pipelines.params import ImageSizes

if TYPE_CHECKING:
    from bcl_dali.pipelines.inputs import FileInput, ResidentInput


class ImageSource(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, indices: np.ndarray) -> ImageSource:
        """The images at `indices`, as a source of the same kind."""

    def sizes(self, indices: np.ndarray) -> ImageSizes:
        """The sizes of images `indices`, in which their crop boxes are drawn."""

    def view_size(self, requested: int) -> int:
        """The side of the views made of these images, given the run's --image-size; refuses what
        the source cannot make."""

    def open(self, index: int) -> Image.Image:
        """Image `index` as PIL decodes it: what the reference executor augments."""

    def dali_input(self) -> ResidentInput | FileInput:
        """How the pixels reach DALI's augmentation (pipelines.inputs)."""

    def batches(self, batch_size: int, size: int | None) -> Iterator[torch.Tensor]:
        """uint8 (n, S, S, 3) un-augmented images, in order: what evaluation's features see; S is
        `size` where the source resizes (files), else the images' own."""

    def records(self, known: FileRecords | None) -> FileRecords | None:
        """What a checkpoint keeps to recognise the images later (files: each one's size, time and
        content hash; `known`: records of a checkpoint, whose hashes are kept where a file is
        unchanged); None where `identity` hashes the pixels themselves."""

    def identity(self) -> bytes | memoryview:
        """What the images are, to be hashed: the pixels, or files' paths, sizes and times."""

    def describe(self, index: int) -> str:
        """Image `index`, named for a message."""
