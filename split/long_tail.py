"""Drawing long-tailed and few-shot subsets from a labelled pool.

The long-tailed profile is the one behind the reference's CIFAR-100-LT files: class i keeps
int(max_per_class * (1 / ratio) ** (i / (C - 1))) images, so class 0 is the head and class C - 1
the tail (450 down to 4, 9,754 images for CIFAR-100 at ratio 100).
"""
from __future__ import annotations

import numpy as np

from bcl_dali.split.errors import SplitError

Seed = int | np.random.Generator


def long_tail_counts(num_classes: int, max_per_class: int, imbalance: float) -> np.ndarray:
    """Images per class, head first. Python floats, so the counts match the reference's formula bit for bit."""
    if num_classes < 2:
        raise SplitError(f"a long-tailed profile needs at least 2 classes, got {num_classes}")
    if imbalance < 1:
        raise SplitError(f"imbalance ratio must be >= 1 (head / tail), got {imbalance:g}")
    if max_per_class < 1:
        raise SplitError(f"max images per class must be >= 1, got {max_per_class}")
    counts = np.array([int(max_per_class * (1 / imbalance) ** (i / (num_classes - 1)))
                       for i in range(num_classes)], np.int64)
    if counts[-1] == 0:
        raise SplitError(f"imbalance {imbalance:g} with {max_per_class} images for the head class leaves the tail "
                        f"class with no images; lower the imbalance or raise the max per class")
    return counts


def long_tailed_subset(labels: np.ndarray, imbalance: float, seed: Seed | None, *,
                       max_per_class: int | None = None, num_classes: int | None = None) -> np.ndarray:
    """Sorted positions into `labels` that follow the long-tailed profile (class 0 the head).

    `max_per_class` defaults to 90% of the smallest class, which gives CIFAR-100's 450 of 500.
    With a seed, each class's images are drawn at random; with None, each class keeps its first
    images in pool order (an image folder's files, sorted by name).
    """
    sizes, counts = _profile(labels, imbalance, max_per_class, num_classes)
    if seed is None:
        return _first_per_class(labels, sizes, counts)
    return _draw_per_class(labels, sizes, counts, np.random.default_rng(seed))


def _profile(labels: np.ndarray, imbalance: float, max_per_class: int | None,
             num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Each class's size in the pool and its count in the profile, checked to fit."""
    sizes = _class_sizes(labels, num_classes)
    if max_per_class is None:
        max_per_class = int(sizes.min()) * 9 // 10
    counts = long_tail_counts(len(sizes), max_per_class, imbalance)
    short = np.flatnonzero(sizes < counts)
    if len(short):
        c = short[0]
        raise SplitError(f"class {c} has {sizes[c]} images but the long-tailed profile asks for {counts[c]} "
                        f"(max per class {max_per_class}, imbalance {imbalance:g}); lower the max per class")
    return sizes, counts


def few_shot_subset(labels: np.ndarray, shots: int, seed: Seed, *, num_classes: int | None = None) -> np.ndarray:
    """Sorted positions into `labels`: `shots` images of every class, drawn without replacement."""
    sizes = _class_sizes(labels, num_classes)
    if shots < 1:
        raise SplitError(f"shots per class must be >= 1, got {shots}")
    if sizes.min() < shots:
        c = int(sizes.argmin())
        raise SplitError(f"class {c} has only {sizes[c]} images in the pool, fewer than {shots} shots; "
                        f"ask for at most {sizes[c]} shots")
    return _draw_per_class(labels, sizes, np.full(len(sizes), shots), np.random.default_rng(seed))


def _class_sizes(labels: np.ndarray, num_classes: int | None) -> np.ndarray:
    sizes = np.bincount(labels, minlength=num_classes or 1)
    if sizes.min() == 0:
        raise SplitError(f"class {sizes.argmin()} has no images in the pool; every class needs at least one")
    return sizes


def _first_per_class(labels: np.ndarray, sizes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The first counts[c] positions of class c, in pool order."""
    by_class = np.argsort(labels, kind="stable")
    rank_in_class = np.arange(len(labels)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.sort(by_class[rank_in_class < np.repeat(counts, sizes)])


def _draw_per_class(labels: np.ndarray, sizes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """counts[c] positions of class c, chosen uniformly without replacement, vectorised over classes."""
    shuffled = rng.permutation(len(labels))
    by_class = shuffled[np.argsort(labels[shuffled], kind="stable")]
    rank_in_class = np.arange(len(labels)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.sort(by_class[rank_in_class < np.repeat(counts, sizes)])
