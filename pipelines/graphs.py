"""A function of CUDA tensors replayed from a CUDA graph: its hundreds of kernels in one launch.

The augmentation's dense schedule (pipelines.steps) is static-shape torch code that never reads a
value back to the host, so it can be captured once per input shape and replayed: a k = 2 iteration
is then a copy in, one graph launch and a copy out instead of about 530 launches, each holding the
GIL in DALI's thread. The kernels are the same, so the numbers are too.

Inputs are copied into the graph's own buffers (DALI's move every iteration) and the output is
cloned out of it, because DALI copies the output after the function returns, possibly after the
next replay has begun on another stream. Each replay waits for the previous one (an event on the
stream, no host wait), so two replays never share the graph's memory at once.
"""
from __future__ import annotations

from typing import Callable

import torch

WARMUP_RUNS = 2
"""Eager runs before the capture: lazily made tables and library handles exist by then (torch's
recipe for capturing whole networks)."""


class CapturedFunction:
    def __init__(self, function: Callable[..., torch.Tensor], device: torch.device) -> None:
        self.function = function
        self.device = device
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], torch.Tensor]] = {}
        self._last: torch.cuda.Event | None = None

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        if key not in self._graphs:
            self._graphs[key] = self._capture(inputs)
        graph, static_inputs, static_output = self._graphs[key]
        stream = torch.cuda.current_stream(self.device)
        if self._last is not None:
            stream.wait_event(self._last)
        for static, given in zip(static_inputs, inputs):
            static.copy_(given)
        graph.replay()
        out = static_output.clone()
        self._last = torch.cuda.Event()
        self._last.record(stream)
        return out

    @property
    def captured(self) -> int:
        """How many input shapes have a graph (a full iteration and a short last one, typically)."""
        return len(self._graphs)

    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.cuda.CUDAGraph, list[torch.Tensor], torch.Tensor]:
        current = torch.cuda.current_stream(self.device)
        static_inputs = [t.clone() for t in inputs]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                self.function(*static_inputs)
        current.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_output = self.function(*static_inputs)
        return graph, static_inputs, static_output
