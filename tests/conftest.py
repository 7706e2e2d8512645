"""Fixtures several test modules share."""
from __future__ import annotations

from pathlib import Path

import pytest

from bcl_dali.data.generated_jpegs import write_jpeg_folder
from tests.folders import LONG_TAILED_TREE, TEST_PER_CLASS, TRAIN_COUNTS


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> Path:
    """A class-subfolder tree (with list files) that is already long-tailed: 120 down to 4 images per class."""
    return write_jpeg_folder(tmp_path_factory.mktemp("tree"), LONG_TAILED_TREE, 2, sides=(16, 24))


@pytest.fixture(scope="session")
def folder(tmp_path_factory) -> Path:
    """Long-tailed JPEGs of 20 to 72 pixels a side, every aspect ratio in between, with list files."""
    return write_jpeg_folder(tmp_path_factory.mktemp("jpegs"), TRAIN_COUNTS, TEST_PER_CLASS, sides=(20, 72))
