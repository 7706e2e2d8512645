"""The DALI executor: both views of every batch, on the CPU or the GPU.

One pipeline; an iteration makes the views of one or more training batches. When an epoch starts,
its plan becomes one float64 parameter table (a row per view, both views of a batch side by side)
and moves to the pipeline's device once; the training images are there already. An iteration's only input is then a slice of
that table: no parameter crosses from the host per iteration, and the crop gathers its pixels from
the resident images. The output is the (2B, H, W, 3) tensor the model consumes (float16 for bf16
training, whose autocast takes it as it is; float32 otherwise), which torch sees as a
channels_last NCHW tensor without a copy.

Every per-iteration input is looked up by the iteration number DALI passes to its source, so
prefetching never mixes batches, and each epoch is a DALI epoch: the source ends it, the executor
resets the pipeline before the next, and the next plan (made from the weights refreshed after the
last step) is in place before DALI asks for its first batch.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.tensors import TensorListCPU, TensorListGPU
from nvidia.dali.types import BatchInfo

from pipelines.augment import Augmentation
from pipelines.dali_graph import Timer, augmentation_pipeline
from pipelines.plan import EpochPlan
from pipelines.table import view_table

TensorList = TensorListCPU | TensorListGPU
GPU_VIEWS_PER_ITERATION = 4096
"""The cost model (benchmarks/profile.py) puts a GPU iteration at a fixed ~530 kernel launches for
k = 2 (about 3 ms of dispatch at ~6 us each) plus ~5.4 MB of memory traffic per view (~1.8 us per
view at 3 TB/s). At 1,024 views (one batch of 512) the fixed part is ~65% of the time, at 4,096
~30%; past that little is left to gain, and `benchmarks/gpu_check.sh` measures 1 to 8 batches per
iteration to check it (the sweep of benchmarks/gpu_check.py). On the CPU the pixels are the cost
and one batch per iteration is best."""


def batches_per_iteration(device: torch.device, batch_size: int) -> int:
    """Training batches that one DALI iteration augments together (see GPU_VIEWS_PER_ITERATION)."""
    return max(1, GPU_VIEWS_PER_ITERATION // (2 * batch_size)) if device.type == "cuda" else 1


class DaliExecutor:
    """Turns (resident images, EpochPlan) into batches of (indices, views), as the PIL executor does."""

    def __init__(self, images: np.ndarray, *, size: int, num_slots: int, batch_size: int,
                 device: torch.device, threads: int, dtype: torch.dtype = torch.float16,
                 timer: Timer | None = None, batches_together: int | None = None, blur: bool = False) -> None:
        """`blur`: plans carry the recipe's Gaussian blur (ViewParams.blur)."""
        self.device = device
        self.size = size
        self.num_slots = num_slots
        self.blur = blur
        self.batch_size = batch_size
        self.batches_together = batches_together or batches_per_iteration(device, batch_size)
        self._cuda = device.type == "cuda"
        self._plan: EpochPlan | None = None
        self._order: torch.Tensor | None = None
        self._host_table: np.ndarray | None = None
        self._table: torch.Tensor | np.ndarray | None = None
        self._epochs = 0
        self._unfinished = False
        self.pipeline = self._pipeline(images, threads, dtype, timer)
        if self._cuda:
            torch.cuda.synchronize(device)  # DALI's stream reads the images and tables without waiting on torch's
        self.pipeline.build()

    def _pipeline(self, images: np.ndarray, threads: int, dtype: torch.dtype, timer: Timer | None) -> Pipeline:
        """The pipeline over resident images (subclasses read their images otherwise)."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
        if not images.shape[1] == images.shape[2] == self.size:
            raise ValueError(f"the DALI executor makes views of the images' own square size; got {images.shape[1]}x"
                             f"{images.shape[2]} images and size {self.size}")
        self.augmentation = Augmentation(torch.as_tensor(images).to(self.device), self.num_slots, blur=self.blur)
        return augmentation_pipeline(self._batch_table, self.augmentation, self.device, threads, dtype, timer)

    def _views(self, output: TensorList) -> torch.Tensor:
        """An iteration's (2B, H, W, 3) views: the one sample of the pipeline's output."""
        return torch.from_dlpack(output.as_tensor())[0]

    @property
    def _stream(self) -> torch.cuda.Stream | None:
        return torch.cuda.current_stream(self.device) if self._cuda else None

    def epoch(self, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(indices, views) per batch of `plan`: views are view 1 of the B samples then view 2,
        normalised, a (2B, 3, H, W) channels_last tensor over DALI's output buffer."""
        if plan.params.view1.num_slots != self.num_slots:
            raise ValueError(f"plan has {plan.params.view1.num_slots} op slots, the graph {self.num_slots}")
        if (plan.params.view1.blur is not None) != self.blur:
            raise ValueError(f"plan {'with' if not self.blur else 'without'} Gaussian blur, graph "
                             f"{'with' if self.blur else 'without'}")
        if self._unfinished:
            self._drain()
        self._plan = plan
        self._order = torch.as_tensor(plan.order).to(self.device)
        self._host_table = epoch_table(plan, self.size)
        self._table = self._upload(self._host_table)
        if self._epochs:
            self.pipeline.reset()
        self._epochs += 1
        self._unfinished = True
        for iteration in range(self._iterations()):
            (views,) = self.pipeline.run(self._stream)
            together = self._views(views)
            first = self._batches(iteration).start
            for b in self._batches(iteration):
                rows, offset = self._rows(b), 2 * self._rows(first).start
                yield self._order[rows], together[2 * rows.start - offset:2 * rows.stop - offset].permute(0, 3, 1, 2)
        try:
            self.pipeline.run(self._stream)
        except StopIteration:
            self._unfinished = False
            return
        raise RuntimeError("the DALI pipeline produced more batches than the epoch plan holds")

    def _drain(self) -> None:
        """Run out an epoch its consumer left early (DALI resets only at the end of its data), so the
        next epoch's first batch is not one the old plan prefetched."""
        while True:
            try:
                self.pipeline.run(self._stream)
            except StopIteration:
                self._unfinished = False
                return

    def _upload(self, table: np.ndarray) -> torch.Tensor | np.ndarray:
        """The epoch's table on the pipeline's device: one host-to-device copy per epoch."""
        return torch.as_tensor(table).to(self.device, non_blocking=False) if self._cuda else table

    def _rows(self, b: int) -> slice:
        size = self._plan.batch_size
        return slice(b * size, min((b + 1) * size, len(self._plan.order)))

    def _iterations(self) -> int:
        return -(-self._plan.num_batches // self.batches_together)

    def _batches(self, iteration: int) -> range:
        return range(iteration * self.batches_together,
                     min((iteration + 1) * self.batches_together, self._plan.num_batches))

    def _table_rows(self, iteration: int) -> slice:
        """The iteration's rows of the epoch table: batch after batch, view 1 then view 2 of each."""
        if iteration >= self._iterations():
            raise StopIteration
        batches = self._batches(iteration)
        return slice(2 * self._rows(batches[0]).start, 2 * self._rows(batches[-1]).stop)

    def _batch_table(self, info: BatchInfo) -> list[torch.Tensor | np.ndarray]:
        """The iteration's table rows, as the one sample of the graph's input."""
        return [self._table[self._table_rows(info.iteration)]]


def epoch_table(plan: EpochPlan, size: int) -> np.ndarray:
    """(2N, P) float64: batch b's view-1 rows followed by its view-2 rows, batch after batch."""
    n, batch = len(plan.order), plan.batch_size
    first, second = (view_table(view, plan.order, size) for view in plan.params.views)
    row = np.arange(n)
    start = row - row % batch
    table = np.empty((2 * n, first.shape[1]), np.float64)
    table[start + row] = first
    table[row + np.minimum(start + batch, n)] = second
    return table
