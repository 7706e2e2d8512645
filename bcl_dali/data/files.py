"""Images kept as files on disk (image folders): what the executors, evaluation and resume need of them.

Nothing here holds pixels: a set is its root, the relative paths and, read once from the files'
headers and the file system, every image's size and every file's byte size and modification time.
The sizes let the sampler draw each view's crop box before any file is decoded; the byte sizes and
times fingerprint the set for resume without reading a million JPEGs again.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class ImageFiles:
    root: Path
    paths: np.ndarray
    """(N,) str: each image's path relative to `root`."""
    heights: np.ndarray
    """(N,) int64 image heights in pixels."""
    widths: np.ndarray
    """(N,) int64 image widths in pixels."""
    bytes: np.ndarray
    """(N,) int64 file sizes."""
    mtimes: np.ndarray
    """(N,) int64 modification times in nanoseconds."""

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, indices: np.ndarray) -> ImageFiles:
        return ImageFiles(self.root, self.paths[indices], self.heights[indices], self.widths[indices],
                          self.bytes[indices], self.mtimes[indices])

    def path(self, index: int) -> Path:
        return self.root / str(self.paths[index])

    def read(self, index: int) -> np.ndarray:
        """The encoded file, as the uint8 array DALI's decoders take."""
        return np.fromfile(self.path(index), np.uint8)

    def open(self, index: int) -> Image.Image:
        """The decoded RGB image, as torchvision's ImageFolder loads it (no EXIF rotation)."""
        with Image.open(self.path(index)) as image:
            return image.convert("RGB")

    def fingerprint(self) -> str:
        """The set's identity: paths, sizes and modification times, hashed without reading a pixel."""
        digest = hashlib.sha256("\n".join(map(str, self.paths)).encode())
        for column in (self.heights, self.widths, self.bytes, self.mtimes):
            digest.update(np.ascontiguousarray(column, np.int64).tobytes())
        return digest.hexdigest()[:16]
