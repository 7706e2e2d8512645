"""Many / Medium / Few class groups and the balance of accuracy across them.

Two rules. "thirds", the reference's for CIFAR-100-LT (`disjoint_summary`): sort classes by their
training count, ascending; the first C // 3 are Few, the next C // 3 Medium, the rest Many
(33 / 33 / 34 for 100 classes); ties are broken by class id (a stable sort), so the groups are the
same on every platform. "counts", ImageNet-LT's and Places-LT's (Liu et al., 2019): Many above 100
training images, Medium 20 to 100, Few below 20; a group may then be empty.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bcl_dali.split.errors import SplitError


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


GROUPINGS = ("thirds", "counts")
MANY_ABOVE = 100
FEW_BELOW = 20


def class_groups(class_counts: np.ndarray, grouping: str = "thirds") -> ClassGroups:
    if grouping == "counts":
        counts = np.asarray(class_counts)
        order = np.argsort(counts, kind="stable")
        ranked = counts[order]
        return ClassGroups(many=order[ranked > MANY_ABOVE], medium=order[(ranked >= FEW_BELOW) & (ranked <= MANY_ABOVE)],
                           few=order[ranked < FEW_BELOW])
    if grouping != "thirds":
        raise ValueError(f"unknown grouping {grouping!r}; choose one of {', '.join(GROUPINGS)}")
    if len(class_counts) < 3:
        raise SplitError(f"Many / Medium / Few groups need at least 3 classes, got {len(class_counts)}; "
                         "BCL's statistics and evaluation split the classes into thirds, use data with 3 or more")
    order = np.argsort(np.asarray(class_counts), kind="stable")
    third = len(order) // 3
    return ClassGroups(many=order[2 * third:], medium=order[third:2 * third], few=order[:third])


def group_accuracy(per_class_accuracy: np.ndarray, groups: ClassGroups) -> GroupAccuracy:
    """The reference's group summary; its std is the balance measure (lower is more balanced).
    An empty group, or one whose classes have no test images, is NaN and left out of the std."""
    accuracy = np.asarray(per_class_accuracy, np.float64)
    means = [_mean_of(accuracy[ids]) for _, ids in groups.items()]
    present = [m for m in means if not np.isnan(m)]
    return GroupAccuracy(*means, std=float(np.std(present)) if present else float("nan"))


def _mean_of(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")
