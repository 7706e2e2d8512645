"""The DALI executor: both views of every batch, on the CPU or the GPU, from any image source.

One pipeline; an iteration makes the views of one or more training batches. When an epoch starts,
its plan becomes one float64 parameter table (a row per view, both views of a batch side by side)
and, for every iteration, a plan of what its stage needs besides pixels (pipelines.iteration); the
table and the plans' index arrays move to the pipeline's device in one upload each. What reaches
DALI per iteration is the source input's (pipelines.inputs): for in-memory images a slice of that
table, which DALI takes without a copy, the crop gathering its pixels from the resident images, so
nothing crosses from the host; for image folders each sample's file and the box to decode. The output is the
(2B, H, W, 3) tensor the model consumes (float16 for bf16 training, whose autocast takes it as it
is; float32 otherwise), which torch sees as a channels_last NCHW tensor without a copy, and which the
executor keeps alive until the consumer's stream is done with it (pipelines.handoff).

Every per-iteration input is looked up by the iteration number DALI passes to its source, so
prefetching never mixes batches, and each epoch is a DALI epoch: the source ends it, the executor
resets the pipeline before the next, and the next plan (made from the weights refreshed after the
last step) is in place before DALI asks for its first batch.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import torch
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.tensors import TensorListCPU, TensorListGPU
from nvidia.dali.types import BatchInfo

from bcl_dali.pipelines.dali_graph import AugmentOperator, Timer, augmentation_pipeline
from bcl_dali.pipelines.graphs import side_stream
from bcl_dali.pipelines.handoff import HeldOutputs
from bcl_dali.pipelines.inputs import FileInput, ResidentInput, samples_of
from bcl_dali.pipelines.iteration import IterationPlan, PlanQueue, step_rows, upload_indices
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.table import view_table

TensorList = TensorListCPU | TensorListGPU
GPU_VIEWS_PER_ITERATION = 4096
"""The cost model (benchmarks/profile.py) puts a GPU iteration at a fixed ~530 kernel launches for
k = 2 (about 3 ms of dispatch at ~6 us each; one graph launch with `graph`) plus ~5.4 MB of memory
traffic per view (~1.8 us per view at 3 TB/s). At 1,024 views (one batch of 512) the fixed part is
~65% of the time, at 4,096 ~30%; past that little is left to gain, and `benchmarks/gpu_check.sh`
measures 1 to 8 batches per iteration to check it. On the CPU the pixels are the cost and one batch
per iteration is best."""


def batches_per_iteration(device: torch.device, batch_size: int) -> int:
    """Training batches that one DALI iteration augments together (see GPU_VIEWS_PER_ITERATION)."""
    return max(1, GPU_VIEWS_PER_ITERATION // (2 * batch_size)) if device.type == "cuda" else 1


SourceInput = ResidentInput | FileInput


class DaliExecutor:
    """Turns (an image source's input, EpochPlan) into batches of (indices, views), as the PIL executor does."""

    def __init__(self, source_input: SourceInput, *, size: int, num_slots: int, batch_size: int, device: torch.device,
                 threads: int, dtype: torch.dtype = torch.float16, timer: Timer | None = None,
                 batches_together: int | None = None, blur: bool = False, graph: bool = False) -> None:
        """`blur`: plans carry the recipe's Gaussian blur (ViewParams.blur). `graph`: replay the
        augmentation from a CUDA graph (in-memory images on the GPU; pipelines.graphs)."""
        self.device = device
        self.size = size
        self.num_slots = num_slots
        self.blur = blur
        self.batch_size = batch_size
        self.batches_together = batches_together or batches_per_iteration(device, batch_size)
        self._cuda = device.type == "cuda"
        self._plan: EpochPlan | None = None
        self._order: torch.Tensor | None = None
        self._iterations: list[IterationPlan] = []
        self._epochs = 0
        self._unfinished = False
        self._handed_out = 0
        """Iterations of the current epoch DALI has handed out."""
        self.plans = PlanQueue()
        self.held = HeldOutputs.on(device)
        self._upload_stream = side_stream(device, "upload") if self._cuda else None
        self.input = source_input
        self.augmentation = source_input.augmentation(num_slots, size, device, blur)
        self.operator = AugmentOperator(source_input, self.augmentation, self.plans, dtype, timer, graph)
        self.pipeline = self._pipeline(threads)
        if self._cuda:
            torch.cuda.synchronize(device)  # DALI's stream reads the images without waiting on torch's
        self.pipeline.build()

    def _pipeline(self, threads: int) -> Pipeline:
        stream = self._upload_stream.cuda_stream if self._cuda else None
        views = 2 * self.batches_together * self.batch_size
        return augmentation_pipeline(self.input, self._source, self.operator, self.device, threads,
                                     self.input.batch_size(views), stream)

    def _views(self, output: TensorList) -> torch.Tensor:
        """An iteration's (V, H, W, 3) views: the samples of the pipeline's output, as one tensor."""
        if output.is_dense_tensor():
            return torch.from_dlpack(output.as_tensor()).flatten(0, 1)
        return torch.cat([torch.from_dlpack(output[i]) for i in range(len(output))])

    @property
    def _stream(self) -> torch.cuda.Stream | None:
        return torch.cuda.current_stream(self.device) if self._cuda else None

    def epoch(self, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(indices, views) per batch of `plan`: views are view 1 of the B samples then view 2,
        normalised, a (2B, 3, H, W) channels_last tensor over DALI's output buffer. They stay valid
        until the work the consumer queues on its current stream before asking for the next batch has
        run (pipelines.handoff); keep them longer as a clone."""
        if plan.params.view1.num_slots != self.num_slots:
            raise ValueError(f"plan has {plan.params.view1.num_slots} op slots, the graph {self.num_slots}")
        if (plan.params.view1.blur is not None) != self.blur:
            raise ValueError(f"plan {'with' if not self.blur else 'without'} Gaussian blur, graph "
                             f"{'with' if self.blur else 'without'}")
        self.held.consumed()
        if self._unfinished:
            self._drain()
        self.plans.clear()
        self._plan = plan
        self._handed_out = 0
        self._start_epoch(plan)
        if self._epochs:
            self.pipeline.reset()
        self._epochs += 1
        self._unfinished = True
        for iteration in range(len(self._iterations)):
            (output,) = self._run()
            self.input.delivered(iteration)
            self._handed_out = iteration + 1
            together = self._views(output)
            self.held.hold(output, together)
            first = self._batches(iteration).start
            for b in self._batches(iteration):
                rows, offset = self._rows(b), 2 * self._rows(first).start
                yield self._order[rows], together[2 * rows.start - offset:2 * rows.stop - offset].permute(0, 3, 1, 2)
            self.held.consumed()
        try:
            self._run()
        except StopIteration:
            self._unfinished = False
            return
        raise RuntimeError("the DALI pipeline produced more batches than the epoch plan holds")

    def _run(self) -> tuple[TensorList, ...]:
        """The next iteration's output; a DALI failure the executor can explain is raised as that."""
        try:
            return self.pipeline.run(self._stream)
        except StopIteration:
            raise
        except Exception:
            explained = self.input.explain()
            if explained is None:
                raise
            raise explained from None

    def _drain(self) -> None:
        """Run out an epoch its consumer left early (DALI resets only at the end of its data), so the
        next epoch's first batch is not one the old plan prefetched."""
        iteration = self._handed_out
        while True:
            try:
                self._run()
            except StopIteration:
                self._unfinished = False
                return
            self.input.delivered(iteration)
            iteration += 1

    def _start_epoch(self, plan: EpochPlan) -> None:
        """The epoch's table and every iteration's plan, on the device in one upload each."""
        host = epoch_table(plan, self.size)
        spans = [self._table_rows(i) for i in range(self._iteration_count())]
        rows = view_rows(plan)
        layout = self.augmentation.layout
        extras = [{"rows": step_rows(host[span], layout, self.augmentation.dense)}
                  | self.input.host_plan(host, span, rows, layout) for span in spans]
        with self._uploading():
            table = torch.as_tensor(host).to(self.device)
            extras = upload_indices(extras, self.device)
            self._order = torch.as_tensor(plan.order).to(self.device)
        self._iterations = [IterationPlan(table[span], **extra) for span, extra in zip(spans, extras)]
        if self.operator.graph is not None:
            for plan in self._iterations:  # DALI is idle: the old epoch is run out, the new one not begun
                self.operator.graph.capture(plan.table)

    @contextlib.contextmanager
    def _uploading(self) -> Iterator[None]:
        """The epoch's uploads: on the executor's own stream, which first waits for the consumer's (the
        last epoch's views are read by then), and done before DALI may read them."""
        if not self._cuda:
            yield
            return
        self._upload_stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self._upload_stream):
            yield
        self._upload_stream.synchronize()

    def _source(self, info: BatchInfo) -> Any:
        """What the source input gives DALI for the iteration; its plan goes to the stage."""
        if info.iteration >= len(self._iterations):
            raise StopIteration
        plan = self._iterations[info.iteration]
        self.plans.push(plan)
        images = self._plan.order[samples_of(self._table_rows(info.iteration))]
        return self.input.feed(plan, images, info.iteration)

    def _rows(self, b: int) -> slice:
        size = self._plan.batch_size
        return slice(b * size, min((b + 1) * size, len(self._plan.order)))

    def _iteration_count(self) -> int:
        return -(-self._plan.num_batches // self.batches_together)

    def _batches(self, iteration: int) -> range:
        return range(iteration * self.batches_together,
                     min((iteration + 1) * self.batches_together, self._plan.num_batches))

    def _table_rows(self, iteration: int) -> slice:
        """The iteration's rows of the epoch table: batch after batch, view 1 then view 2 of each."""
        batches = self._batches(iteration)
        return slice(2 * self._rows(batches[0]).start, 2 * self._rows(batches[-1]).stop)


def epoch_table(plan: EpochPlan, size: int) -> np.ndarray:
    """(2N, P) float64: batch b's view-1 rows followed by its view-2 rows, batch after batch."""
    first, second = (view_table(view, plan.order, size) for view in plan.params.views)
    table = np.empty((2 * len(plan.order), first.shape[1]), np.float64)
    one, two = view_rows(plan)
    table[one], table[two] = first, second
    return table


def view_rows(plan: EpochPlan) -> tuple[np.ndarray, np.ndarray]:
    """Where each sample's two views sit in the epoch table: (N,) rows of view 1 and of view 2."""
    row = np.arange(len(plan.order))
    start = row - row % plan.batch_size
    return start + row, row + np.minimum(start + plan.batch_size, len(plan.order))
