"""An image source from what a researcher already has: a source, a uint8 array or tensor, or a
torchvision-style dataset. The library's entry points take any of these."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from bcl_dali.data.arrays import ArrayImages
from bcl_dali.data.files import ImageFiles
from bcl_dali.data.folder import files_at, files_under
from bcl_dali.data.source import ImageSource


def image_source(images: object) -> ImageSource:
    """`images` as a source: an `ArrayImages` or `ImageFiles` as it is; a uint8 (N, H, W, 3) array or
    tensor held in memory; a folder's path, every image under it read from its file; a dataset with `samples` of (path, label) (torchvision's ImageFolder) read
    from its files; one with a uint8 `data` array (torchvision's CIFAR) held in memory; any other
    dataset of (image, label) items (PIL images or arrays of one size) stacked into memory once."""
    if isinstance(images, (ArrayImages, ImageFiles)):
        return images
    if isinstance(images, torch.Tensor):
        return ArrayImages(images.cpu().numpy())
    if isinstance(images, np.ndarray):
        return ArrayImages(images)
    if isinstance(images, (str, os.PathLike)):
        return files_under(Path(images))
    samples = getattr(images, "samples", None)
    if isinstance(samples, list) and samples and isinstance(samples[0], tuple):
        return files_at([path for path, *_ in samples])
    data = getattr(images, "data", None)
    if isinstance(data, np.ndarray) and data.ndim == 4:
        return ArrayImages(data)
    if hasattr(images, "__len__") and hasattr(images, "__getitem__"):
        return ArrayImages(_stacked(images))
    raise TypeError(f"cannot take images from a {type(images).__name__}; give a uint8 (N, H, W, 3) array, a "
                    "folder of images, a torchvision-style dataset, or a bcl_dali.data.ImageFiles")


def _stacked(dataset: object) -> np.ndarray:
    """Every item's image, once, as one (N, H, W, 3) uint8 array."""
    pixels = []
    for i in range(len(dataset)):
        item = dataset[i]
        image = np.asarray(item[0] if isinstance(item, tuple) else item)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"item {i} of the dataset is a {image.dtype} {image.shape} image; give RGB images "
                             "(PIL, or uint8 H x W x 3) without a transform")
        if pixels and image.shape != pixels[0].shape:
            raise ValueError(f"item {i} is {image.shape[1]}x{image.shape[0]}, item 0 {pixels[0].shape[1]}x"
                             f"{pixels[0].shape[0]}; images of several sizes are read from files: give a dataset "
                             "with `samples` (torchvision's ImageFolder) or bcl_dali.data.ImageFiles")
        pixels.append(image)
    return np.stack(pixels)
