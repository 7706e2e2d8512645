"""Generated image folders of JPEGs: synthetic-lt's classes at varied sizes and aspect ratios.

For the tests, the benchmarks and the GPU check on machines without a real data set: every class of
a long-tailed train list and a balanced test list, written both as a class-subfolder tree and as
ImageNet-LT-style list files (train.txt, test.txt).
"""
from __future__ import annotations

import contextlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from bcl_dali.data.files import ImageFiles
from bcl_dali.data.folder import list_files
from bcl_dali.data.synthetic import synthetic_pool
from bcl_dali.device import cpu_count

JPEG_QUALITY = 90
GENERATED_FILES = 512
GENERATED_CLASSES = 8
IMAGENET_SIDES = (256, 500)
"""ImageNet's typical image sides, for a folder that decodes like ImageNet-LT."""


def write_jpeg_folder(root: Path, train_counts: list[int], test_per_class: int, *, sides: tuple[int, int] = (24, 64),
                      seed: int = 0) -> Path:
    """ROOT/{train,test}/classNN/NNNNN.jpg and ROOT/{train,test}.txt; each image's height and width
    drawn independently from `sides` (inclusive). Returns `root`."""
    num_classes = len(train_counts)
    pool = synthetic_pool(max(num_classes, 2), seed)
    rng = np.random.default_rng(seed)
    for part, counts in (("train", list(train_counts)), ("test", [test_per_class] * num_classes)):
        lines = []
        for label, count in enumerate(counts):
            folder = root / part / f"class{label:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            indices = np.flatnonzero(pool.labels == label)[:count] if part == "train" else \
                np.flatnonzero(pool.labels == label)[-count:]
            heights, widths = (rng.integers(sides[0], sides[1] + 1, len(indices)) for _ in range(2))
            names = [f"{part}/{folder.name}/{i:05d}.jpg" for i in range(len(indices))]
            with ThreadPoolExecutor(cpu_count()) as pool_of_threads:  # PIL releases the GIL while it resizes and encodes
                list(pool_of_threads.map(_write, [root / name for name in names], pool.images(indices).pixels, heights, widths))
            lines += [f"{name} {label}" for name in names]
        (root / f"{part}.txt").write_text("\n".join(lines) + "\n")
    return root


def _write(path: Path, pixels: np.ndarray, height: int, width: int) -> None:
    Image.fromarray(pixels).resize((int(width), int(height)), Image.BICUBIC).save(path, quality=JPEG_QUALITY)


def imagenet_like_folder(root: Path, files: int = GENERATED_FILES) -> ImageFiles:
    """`files` ImageNet-sized JPEGs in GENERATED_CLASSES balanced classes, as one training list's files."""
    per_class = -(-files // GENERATED_CLASSES)
    write_jpeg_folder(root, [per_class] * GENERATED_CLASSES, 1, sides=IMAGENET_SIDES)
    return list_files(root, root / "train.txt")


@contextlib.contextmanager
def given_or_generated(data_dir: Path | None, files: int = GENERATED_FILES,
                       echo: Callable[[str], None] = lambda _: None) -> Iterator[Path]:
    """`data_dir`, or a temporary folder of `files` generated ImageNet-sized JPEGs, removed afterwards
    (for benchmarks on machines without a real data set)."""
    if data_dir is not None:
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="bcl-dali-jpegs-") as temporary:
        echo(f"writing {files} ImageNet-sized JPEGs to {temporary} ...")
        imagenet_like_folder(Path(temporary), files)
        yield Path(temporary)
