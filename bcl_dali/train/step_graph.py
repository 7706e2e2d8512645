"""The training step replayed from a CUDA graph: forward, loss, backward, momentum update and the
fused optimiser step in one launch.

At CIFAR's size a step is a few milliseconds of GPU work spread over a thousand small kernels; their
launches, not the GPU, bound it. Captured once, a step is three copies in (views, indices, the
learning rate) and one replay, with the same kernels, so the same numbers. What a graph needs:

- static shapes: the full batch is graphed, the short last batch of an epoch runs eagerly;
- no value read back and no allocation outside the graph's pool: the step has none (DESIGN.md
  principle 5), the learning rate is a device tensor the fused SGD reads, the SDCLR masks are
  rewritten in place at each epoch start;
- the momentum loss's first-epoch branch (s = l) differs from the later one (the EMA), so a graph
  belongs to one phase, and the first phase's is dropped when the second begins;
- warm-up: a graph is captured on the second full batch of its phase, after an eager step on a side
  stream has made the optimiser's buffers and chosen the convolution algorithms;
- DALI keeps working in its own threads during a capture, so only this thread's calls are checked;
  the capture uses the process's capture stream (pipelines.graphs.side_stream), as the
  augmentation's captures do, which happen in this thread too, when an epoch is planned.

One process only (a DDP step's collectives would be captured too), with SGD (LARS keeps its rate as
a Python number) and without torch.compile.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

from bcl_dali.pipelines.graphs import side_stream

if TYPE_CHECKING:
    from bcl_dali.methods import BatchShare

StepWork = Callable[[torch.Tensor, torch.Tensor, "BatchShare"], torch.Tensor]


class GraphedStep:
    def __init__(self, work: StepWork, optimizer: torch.optim.Optimizer, device: torch.device,
                 phase: Callable[[], bool]) -> None:
        """`work(indices, views, share)`: the step after the learning rate is set (zero_grad,
        forward and backward, momentum update, optimiser step), returning the per-sample losses;
        `phase()`: which branch of the momentum update the step takes."""
        self.work = work
        self.optimizer = optimizer
        self.device = device
        self.phase = phase
        self.lr = torch.zeros((), dtype=torch.float32, device=device)
        self._side = side_stream(device, "warm-up")
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._seen: set[tuple] = set()
        self.full_batch: int | None = None

    def __call__(self, lr: float, indices: torch.Tensor, views: torch.Tensor, share: BatchShare) -> torch.Tensor:
        self.lr.fill_(lr)
        for group in self.optimizer.param_groups:  # a resumed optimiser state brings its rate as a number
            group["lr"] = self.lr
        key = (tuple(views.shape), views.dtype, share, self.phase())
        if self.full_batch is None:
            self.full_batch = len(indices)
        if len(indices) != self.full_batch:
            return self.work(indices, views, share)
        if key not in self._graphs:
            if key not in self._seen:
                self._seen.add(key)
                return self._on_side_stream(indices, views, share)
            self._graphs = {k: v for k, v in self._graphs.items() if k[-1] == key[-1]}
            self._graphs[key] = self._capture(views, indices, share)
        graph, static_views, static_indices, static_loss = self._graphs[key]
        static_views.copy_(views)
        static_indices.copy_(indices)
        graph.replay()
        return static_loss.clone()

    @property
    def captured(self) -> int:
        return len(self._graphs)

    def _on_side_stream(self, indices: torch.Tensor, views: torch.Tensor, share: BatchShare) -> torch.Tensor:
        current = torch.cuda.current_stream(self.device)
        self._side.wait_stream(current)
        with torch.cuda.stream(self._side):
            loss = self.work(indices, views, share)
        current.wait_stream(self._side)
        return loss

    def _capture(self, views: torch.Tensor, indices: torch.Tensor, share: BatchShare) -> tuple:
        static_views = views.clone(memory_format=torch.preserve_format)
        static_indices = indices.clone()
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=side_stream(self.device, "capture"), capture_error_mode="thread_local"):
            static_loss = self.work(static_indices, static_views, share)
        return graph, static_views, static_indices, static_loss
