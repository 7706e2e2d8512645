"""Many / Medium / Few class groups and the balance of accuracy across them.

The reference's rule (`disjoint_summary`): sort classes by their training count, ascending; the
first C // 3 are Few, the next C // 3 Medium, the rest Many (33 / 33 / 34 for 100 classes). Ties
are broken by class id (a stable sort), so the groups are the same on every platform.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from split.errors import SplitError


@dataclass(frozen=True)
class ClassGroups:
    """Class ids of each group, in ascending order of their training count."""

    many: np.ndarray
    medium: np.ndarray
    few: np.ndarray

    def items(self) -> tuple[tuple[str, np.ndarray], ...]:
        return ("many", self.many), ("medium", self.medium), ("few", self.few)


@dataclass(frozen=True)
class GroupAccuracy:
    """Mean per-class accuracy of each group (classes without test images, NaN, left out), and the
    std (ddof 0) of those three, in the input's unit."""

    many: float
    medium: float
    few: float
    std: float


def class_groups(class_counts: np.ndarray) -> ClassGroups:
    if len(class_counts) < 3:
        raise SplitError(f"Many / Medium / Few groups need at least 3 classes, got {len(class_counts)}; "
                         "BCL's statistics and evaluation split the classes into thirds, use data with 3 or more")
    order = np.argsort(np.asarray(class_counts), kind="stable")
    third = len(order) // 3
    return ClassGroups(many=order[2 * third:], medium=order[third:2 * third], few=order[:third])


def group_accuracy(per_class_accuracy: np.ndarray, groups: ClassGroups) -> GroupAccuracy:
    """The reference's group summary; its std is the balance measure (lower is more balanced)."""
    accuracy = np.asarray(per_class_accuracy, np.float64)
    means = [float(np.nanmean(accuracy[ids])) for _, ids in groups.items()]
    return GroupAccuracy(*means, std=float(np.std(means)))
