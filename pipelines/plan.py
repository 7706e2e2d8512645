"""One epoch of work for an executor: the visiting order and every batch's parameters."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bcl_dali.pipelines.params import AugParams


def share(rank: int, size: int, count: int) -> slice:
    """The contiguous share of `count` items that rank `rank` of `size` takes; sizes differ by one at most."""
    return slice(rank * count // size, (rank + 1) * count // size)


@dataclass(frozen=True)
class EpochPlan:
    """Samples `order[b * batch_size:(b + 1) * batch_size]` form batch b; `params` row r belongs
    to sample `order[r]`. The last batch may be smaller (the reference drops no samples)."""

    order: np.ndarray
    batch_size: int
    params: AugParams

    def __post_init__(self) -> None:
        if self.params.batch_size != len(self.order):
            raise ValueError(f"plan has {len(self.order)} samples but parameters for {self.params.batch_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be positive, got {self.batch_size}")

    @property
    def num_batches(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def batch_length(self, b: int) -> int:
        return min(self.batch_size, len(self.order) - b * self.batch_size)

    def shard(self, rank: int, size: int) -> EpochPlan:
        """The rows one of `size` processes augments: its contiguous share of every batch (each rank
        draws the whole plan from the same seed and weights). Batch b of the shard is that rank's
        part of batch b; shares of a short last batch differ by at most one row."""
        if size == 1:
            return self
        if self.batch_size % size:
            raise ValueError(f"a batch of {self.batch_size} does not split over {size} processes")
        rows = []
        for b in range(self.num_batches):
            part = share(rank, size, self.batch_length(b))
            rows.append(b * self.batch_size + np.arange(part.start, part.stop))
        rows = np.concatenate(rows)
        return EpochPlan(self.order[rows], self.batch_size // size, self.params.select(rows))

    def batch(self, b: int) -> tuple[np.ndarray, AugParams]:
        """Sample indices and parameters of batch b."""
        if not 0 <= b < self.num_batches:
            raise IndexError(f"batch {b} outside 0..{self.num_batches - 1}")
        rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
        return self.order[rows], self.params.select(rows)
