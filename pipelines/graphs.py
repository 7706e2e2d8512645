"""A function of CUDA tensors replayed from a CUDA graph: its hundreds of kernels in one launch.

The augmentation's dense schedule (pipelines.steps) is static-shape torch code that never reads a
value back to the host, so it can be captured once per input shape and replayed: a k = 2 iteration
is then a copy in, one graph launch and a copy out instead of about 530 launches, each holding the
GIL in DALI's thread. The kernels are the same, so the numbers are too.

Inputs are copied into the graph's own buffers (DALI's move every iteration) and the output is
cloned out of it, because DALI copies the output after the function returns, possibly after the
next replay has begun on another stream. Each replay waits for the previous one (an event on the
stream, no host wait), so two replays never share the graph's memory at once.

Captures happen in the main thread, when the executor plans an epoch and DALI is idle (`capture`);
DALI's thread only replays. Two captures at once, or a capture while another thread synchronises
the device, would fail. The streams the project uses beside DALI's and torch's default are
`side_stream`s, one per purpose and device: torch hands out streams from a pool of 32, and a capture
stream that is also the stream DALI's source waits on would capture foreign work.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch

WARMUP_RUNS = 2
"""Eager runs before the capture: lazily made tables and library handles exist by then (torch's
recipe for capturing whole networks)."""


@functools.lru_cache(maxsize=None)
def side_stream(device: torch.device, purpose: str) -> torch.cuda.Stream:
    """The process's one stream for `purpose` ("upload", "warm-up", "capture") on `device`."""
    return torch.cuda.Stream(device)


def capture(function: Callable[[], torch.Tensor], device: torch.device) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """`function` captured after WARMUP_RUNS eager runs on the warm-up stream; returns the graph and
    the output it writes. Only this thread's calls are checked during the capture: DALI's go on."""
    current = torch.cuda.current_stream(device)
    warm_up = side_stream(device, "warm-up")
    warm_up.wait_stream(current)
    with torch.cuda.stream(warm_up):
        for _ in range(WARMUP_RUNS):
            function()
    current.wait_stream(warm_up)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side_stream(device, "capture"), capture_error_mode="thread_local"):
        output = function()
    return graph, output


class CapturedFunction:
    def __init__(self, function: Callable[..., torch.Tensor], device: torch.device) -> None:
        self.function = function
        self.device = device
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], torch.Tensor]] = {}
        self._last: torch.cuda.Event | None = None

    def capture(self, *inputs: torch.Tensor) -> None:
        """A graph for inputs of these shapes, unless one exists (main thread, DALI idle)."""
        key = _key(inputs)
        if key not in self._graphs:
            static_inputs = [t.clone() for t in inputs]
            graph, output = capture(lambda: self.function(*static_inputs), self.device)
            self._graphs[key] = graph, static_inputs, output

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        key = _key(inputs)
        if key not in self._graphs:
            raise RuntimeError(f"no CUDA graph was captured for inputs {key}; the executor captures one for every "
                               "shape of an epoch when it plans the epoch")
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


def _key(inputs: tuple[torch.Tensor, ...]) -> tuple:
    return tuple((tuple(t.shape), t.dtype) for t in inputs)
