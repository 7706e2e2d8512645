"""A terminal-readable description of a split: its class histogram, imbalance and class groups."""
from __future__ import annotations

import numpy as np

from bcl_dali.split.groups import class_groups

BAR_WIDTH = 50
LISTED_EMPTY = 10


def describe_split(class_counts: np.ndarray) -> str:
    """One bar per class, then the total, the imbalance ratio and the Many / Medium / Few ranges."""
    counts = np.asarray(class_counts)
    largest = int(counts.max())
    id_width, count_width = len(str(len(counts) - 1)), len(str(largest))
    lines = [f"{c:>{id_width}} {n:>{count_width}} {_bar(n, largest)}" for c, n in enumerate(counts)]

    present = counts[counts > 0]
    lines.append(f"total: {counts.sum()} images in {len(present)} of {len(counts)} classes")
    lines.append(f"imbalance ratio: {present.max() / present.min():.1f} "
                 f"(largest class {present.max()} / smallest non-empty class {present.min()})")
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        listed = ", ".join(map(str, empty[:LISTED_EMPTY])) + (", ..." if len(empty) > LISTED_EMPTY else "")
        lines.append(f"classes with no images: {len(empty)} ({listed})")
    if len(counts) >= 3:
        lines.append("groups (classes sorted by count, rarest third Few, next third Medium, rest Many):")
        for name, ids in class_groups(counts).items():
            low, high = counts[ids].min(), counts[ids].max()
            lines.append(f"  {name.capitalize():<6} {len(ids):>{id_width}} classes, {low}..{high} images per class")
    return "\n".join(lines)


def _bar(count: int, largest: int) -> str:
    """A bar of up to BAR_WIDTH blocks; any non-empty class gets at least one."""
    return "█" * max(int(count > 0), round(count / largest * BAR_WIDTH))
