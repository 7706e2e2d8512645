"""Is BCL finding the tail? Statistics of the momentum-loss weights against the (hidden) labels.

BCL's premise is that samples of small classes are memorised last, so their momentum loss, and with
it their weight, stays high. Labels are used here to diagnose a run, never to train it. Everything
is computed on the device from the weights and one host transfer at the end of an epoch.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bcl_dali.split import class_groups

HISTOGRAM_BINS = 20
"""Equal bins over [0, 1], the range of the weights."""


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a 1-D tensor, ties sharing their average rank (as Spearman's rho needs).
    Quadratic in the length, which is a class count: no sort, no data-dependent shapes."""
    below = (values[None, :] < values[:, None]).sum(dim=1)
    equal = (values[None, :] == values[:, None]).sum(dim=1)
    return below.to(values.dtype) + (equal.to(values.dtype) + 1) / 2


def spearman(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of two 1-D tensors; NaN where either is constant."""
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return (rx * ry).sum() / torch.sqrt((rx * rx).sum() * (ry * ry).sum())


class MemorizationStatistics:
    """Per-epoch summaries of the weights, grouped by the training split's classes."""

    def __init__(self, train_labels: np.ndarray, num_classes: int, device: torch.device,
                 grouping: str = "thirds") -> None:
        counts = np.bincount(train_labels, minlength=num_classes)
        self.present = torch.as_tensor(np.flatnonzero(counts), device=device)
        """Classes with training samples; an empty class has no weight to average."""
        self.labels = torch.as_tensor(train_labels, device=device)
        self.counts = torch.as_tensor(counts, dtype=torch.float64, device=device)
        groups = class_groups(counts, grouping)
        self.group_names = [name for name, _ in groups.items()]
        self.group_of_class = torch.empty(num_classes, dtype=torch.int64, device=device)
        for g, (_, ids) in enumerate(groups.items()):
            self.group_of_class[torch.as_tensor(ids, device=device)] = g

    def __call__(self, weights: torch.Tensor) -> dict[str, Any]:
        """The weight histogram, the mean weight of each group's samples, each class's mean weight,
        and Spearman's rho between class size and class mean weight (negative: the tail weighs more)."""
        weights = weights.to(torch.float64)
        histogram = torch.histc(weights, bins=HISTOGRAM_BINS, min=0.0, max=1.0)
        class_sums = torch.zeros_like(self.counts).index_add_(0, self.labels, weights)
        class_means = class_sums / self.counts
        groups = len(self.group_names)
        group_sums = torch.zeros(groups, dtype=torch.float64, device=weights.device).index_add_(
            0, self.group_of_class, class_sums)
        group_sizes = torch.zeros_like(group_sums).index_add_(0, self.group_of_class, self.counts)
        rho = spearman(self.counts[self.present], class_means[self.present])
        packed = torch.cat([histogram, group_sums / group_sizes, rho[None], class_means]).tolist()
        bins, groups_end = HISTOGRAM_BINS, HISTOGRAM_BINS + groups
        return {
            "weight_histogram": [int(round(c)) for c in packed[:bins]],
            "weight_by_group": {name: None if math.isnan(m) else m
                                for name, m in zip(self.group_names, packed[bins:groups_end])},
            "size_weight_spearman": None if math.isnan(packed[groups_end]) else packed[groups_end],
            "class_weight_mean": [None if math.isnan(m) else m for m in packed[groups_end + 1:]],
        }
