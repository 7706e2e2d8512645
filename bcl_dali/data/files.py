"""Images kept as files on disk (image folders): an image source (bcl_dali.data.source).

Nothing here holds pixels: a set is its root, the relative paths and, read once from the files'
headers and the file system, every image's size and every file's byte size and modification time.
The sizes let the sampler draw each view's crop box before any file is decoded.

What a run trained on is the files' contents: a run records each file's byte size, time and a hash
of its bytes (`FileRecords`), made once when it starts. A resume reads again only the files whose
size or time differ from the record (a `touch`, a copy with `cp -r`), so the data may move or be
copied without being read in full, and a file whose bytes changed is named.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from PIL import Image

from bcl_dali.errors import UserError

if TYPE_CHECKING:
    from bcl_dali.pipelines.inputs import FileInput


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
    origins: np.ndarray | None = None
    """(N,) str: where each file was named ("train.txt line 12", or its tree), for messages."""

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, indices: np.ndarray) -> ImageFiles:
        return ImageFiles(self.root, self.paths[indices], self.heights[indices], self.widths[indices],
                          self.bytes[indices], self.mtimes[indices],
                          None if self.origins is None else self.origins[indices])

    def sizes(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.heights[indices], self.widths[indices]

    def view_size(self, requested: int) -> int:
        """Any size: each view is resized from its crop."""
        return requested

    def dali_input(self) -> FileInput:
        from bcl_dali.pipelines.inputs import FileInput  # DALI takes seconds to import: only when an executor is built

        return FileInput(self)

    def batches(self, batch_size: int, size: int | None) -> Iterator[torch.Tensor]:
        from bcl_dali.data.centre_crops import centre_crops

        if size is None:
            raise ValueError("an image folder's evaluation images need the view size")
        return centre_crops(self, batch_size, size)

    def describe(self, index: int) -> str:
        """The file and where it was named, for a message."""
        where = "" if self.origins is None else f" ({self.origins[index]})"
        return f"{self.path(index)}{where}"

    def path(self, index: int) -> Path:
        return self.root / str(self.paths[index])

    def read(self, index: int) -> np.ndarray:
        """The encoded file, as the uint8 array DALI's decoders take."""
        return np.fromfile(self.path(index), np.uint8)

    def open(self, index: int) -> Image.Image:
        """The decoded RGB image, as torchvision's ImageFolder loads it (no EXIF rotation); a file that
        does not decode is a BadImages error naming it."""
        try:
            with Image.open(self.path(index)) as image:
                return image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as error:
            raise BadImages([self.describe(index)], [str(error)], np.array([index])) from None

    def identity(self) -> bytes:
        """Paths, sizes and modification times, hashed without reading a pixel: what identified a run's
        files before runs kept FileRecords."""
        return _digest(self.paths, (self.heights, self.widths, self.bytes, self.mtimes)).encode()

    def records(self, known: FileRecords | None = None) -> FileRecords:
        """Every file's size, time and content hash; a file is read only where `known` has no record
        of it with the same path, size and time."""
        hashes = np.empty(len(self), dtype=HASH_DTYPE)
        reuse = np.zeros(len(self), bool)
        if known is not None:
            at = {path: i for i, path in enumerate(known.paths.tolist())}
            where = np.array([at.get(path, -1) for path in self.paths.tolist()], np.int64)
            found = where >= 0
            same = np.zeros(len(self), bool)
            same[found] = ((known.bytes[where[found]] == self.bytes[found])
                           & (known.mtimes[where[found]] == self.mtimes[found]))
            hashes[same] = known.hashes[where[same]]
            reuse = same
        to_read = np.flatnonzero(~reuse)
        with ThreadPoolExecutor(READ_THREADS) as pool:
            hashes[to_read] = list(pool.map(lambda i: _content_hash(self.path(i)), to_read.tolist()))
        return FileRecords(self.paths.copy(), self.heights.copy(), self.widths.copy(), self.bytes.copy(),
                           self.mtimes.copy(), hashes)


class BadImages(UserError):
    """Files that do not decode; `indices` are their positions in the set they were read from."""

    def __init__(self, names: list[str], reasons: list[str], indices: np.ndarray) -> None:
        self.names, self.reasons, self.indices = names, reasons, indices
        more = f" ({len(names)} files in all)" if len(names) > 1 else ""
        super().__init__(f"{names[0]} cannot be decoded ({reasons[0]}){more}")

    @classmethod
    def of(cls, files: ImageFiles, indices: np.ndarray, reasons: list[str]) -> BadImages:
        return cls([files.describe(i) for i in indices], reasons, np.asarray(indices))


HASH_DTYPE = np.dtype("S16")
READ_THREADS = 16
"""Files hashed at once (reads release the GIL)."""


def _content_hash(path: Path) -> bytes:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()


@dataclass(frozen=True)
class FileRecords:
    """What a run knows of its training files: for each, its path, image size, byte size, time and
    content hash. The identity of the data is everything but the times."""

    paths: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    bytes: np.ndarray
    mtimes: np.ndarray
    hashes: np.ndarray

    def identity(self) -> str:
        return _digest(self.paths, (self.heights, self.widths, self.bytes), self.hashes.tobytes())

    def first_change(self, now: FileRecords) -> str | None:
        """How `now` differs from these records, naming the first file that does; None if it does not."""
        if len(now.paths) != len(self.paths) or (now.paths != self.paths).any():
            gone = sorted(set(self.paths.tolist()) - set(now.paths.tolist()))
            new = sorted(set(now.paths.tolist()) - set(self.paths.tolist()))
            if gone:
                return f"{gone[0]} is gone ({len(gone)} file(s) of the run are not in the data now)"
            if new:
                return f"{new[0]} is new ({len(new)} file(s) the run did not train on)"
            return "the files are listed in another order"
        changed = np.flatnonzero((now.bytes != self.bytes) | (now.hashes != self.hashes)
                                 | (now.heights != self.heights) | (now.widths != self.widths))
        if not len(changed):
            return None
        i = changed[0]
        how = (f"{self.bytes[i]:,} bytes then, {now.bytes[i]:,} now" if now.bytes[i] != self.bytes[i]
               else "same size, other bytes")
        return f"{now.paths[i]} changed since the run started ({how}; {len(changed)} file(s) changed)"

    def as_state(self) -> dict[str, object]:
        """For a checkpoint (tensors and text, as `torch.load(weights_only=True)` reads them): the paths
        as one string, since numpy's fixed-width text takes 4 bytes a letter."""
        return {"paths": "\n".join(self.paths.tolist()),
                "hashes": torch.from_numpy(np.frombuffer(self.hashes.tobytes(), np.uint8).copy()),
                **{name: torch.from_numpy(np.asarray(getattr(self, name), np.int64))
                   for name in ("heights", "widths", "bytes", "mtimes")}}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> FileRecords:
        columns = {name: state[name].numpy() for name in ("heights", "widths", "bytes", "mtimes")}
        hashes = np.frombuffer(state["hashes"].numpy().tobytes(), HASH_DTYPE).copy()
        return cls(np.asarray(state["paths"].split("\n")), hashes=hashes, **columns)


def _digest(paths: np.ndarray, columns: tuple[np.ndarray, ...], extra: bytes = b"") -> str:
    """16 hex digits of the paths, the int64 columns and `extra`: a set of files' identity."""
    digest = hashlib.sha256("\n".join(map(str, paths)).encode())
    for column in columns:
        digest.update(np.ascontiguousarray(column, np.int64).tobytes())
    digest.update(extra)
    return digest.hexdigest()[:16]
