"""Image folders for tests: copies to damage, and damage a header check lets through."""
from __future__ import annotations

import shutil
from pathlib import Path

from bcl_dali.data.folder import FolderLists

LONG_TAILED_TREE = [120, 60, 30, 15, 8, 4]
"""The shared tree's images per class (tests/conftest.py): already long-tailed."""


def copy_of(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "copy"))


def truncate_jpeg(path: Path) -> None:
    """Cut a JPEG half-way through its compressed data: its header reads, its decode fails."""
    data = path.read_bytes()
    scan = data.index(b"\xff\xda")
    path.write_bytes(data[: scan + (len(data) - scan) // 2])


TRAIN_COUNTS = [130, 60, 25, 12, 6]
"""The shared folder's training images per class (tests/conftest.py): Many (> 100), two Medium (20 to
100) and two Few (< 20) classes."""
TEST_PER_CLASS = 8
SIZE = 32
"""The views made of the shared folder's images."""


def lists(root: Path, **extra: str) -> FolderLists:
    return FolderLists(str(root / "train.txt"), str(root / "test.txt"), **extra)


def list_flags(root: Path) -> tuple:
    return ("--dataset", "folder", "--data-dir", root, "--train-list", root / "train.txt", "--test-list",
            root / "test.txt")
