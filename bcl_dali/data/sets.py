"""The data every later part of the project consumes: image sets, the long-tailed bundle, a source's pool."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bcl_dali.data.source import ImageSource
from bcl_dali.errors import UserError
from bcl_dali.split import ClassGroups, class_groups


def count_classes(labels: np.ndarray, where: str, whole: str) -> int:
    """C, for non-negative `labels` that must be 0..C-1 with every class present; else a one-line
    refusal naming the first missing class (`where` the labels came from, `whole` what must hold them all)."""
    classes = np.unique(labels)  # sorted; not np.bincount, which a label of 2**40 turns into 8 TiB
    num_classes = int(classes[-1]) + 1
    if len(classes) < num_classes:
        missing = int(np.flatnonzero(classes != np.arange(len(classes)))[0])
        raise UserError(f"{where}: class {missing} has no images{whole}; labels must be 0..C-1 with every class "
                        "present")
    return num_classes


@dataclass(frozen=True)
class ImageSet:
    images: ImageSource
    labels: np.ndarray
    """(N,) int64 class ids."""

    def __post_init__(self) -> None:
        if self.labels.dtype != np.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must be ({len(self.images)},) int64, got {self.labels.dtype} {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class LongTailedData:
    """A long-tailed training set with everything needed to evaluate what was learnt from it."""

    name: str
    num_classes: int
    train: ImageSet
    """The long-tailed training subset, in the order of `train_indices`."""
    train_indices: np.ndarray
    """The split: indices into the source's training pool."""
    probe: ImageSet
    """The balanced pool the full-shot linear probe trains on."""
    probe_indices: np.ndarray
    """Indices of `probe` into the source's training pool (it may overlap the training subset)."""
    test: ImageSet
    shots: dict[int, list[np.ndarray]]
    """Shots per class -> few-shot subsets, each as sorted positions into `probe`."""
    grouping: str = "thirds"
    """How classes form Many / Medium / Few (split.groups): thirds for CIFAR, counts for image folders."""
    undecodable: dict[int, str] = field(default_factory=dict)
    """Training positions whose files did not decode when checked (--verify-images), and why."""

    @property
    def train_class_counts(self) -> np.ndarray:
        """Training images per class: what Many / Medium / Few groups are formed from."""
        return np.bincount(self.train.labels, minlength=self.num_classes)

    def class_groups(self) -> ClassGroups:
        return class_groups(self.train_class_counts, self.grouping)


@dataclass(frozen=True)
class TrainPool:
    """A source before any subset is drawn: labels up front, pixels only for the indices asked for."""

    name: str
    num_classes: int
    labels: np.ndarray
    """(N,) int64 labels of the whole training pool; split files index into it."""
    probe_indices: np.ndarray
    """The source's balanced probe pool, used unless a reference layout supplies one."""
    images: Callable[[np.ndarray], ImageSource]
    """Pool indices -> their images."""
    test: Callable[[], ImageSet]
    train_indices: np.ndarray | None = None
    """The source's own training set (an image folder's train list or tree subset), used unless
    --split gives one; None where the split is drawn from the pool with --imbalance."""
    grouping: str = "thirds"
    """How the source's classes form Many / Medium / Few (split.groups)."""
    undecodable: dict[int, str] = field(default_factory=dict)
    """Pool indices whose files did not decode when checked (--verify-images), and why."""
