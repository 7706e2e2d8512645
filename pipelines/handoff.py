"""How long an iteration's DALI output lives: until the consumer's stream has finished reading it.

The views handed to the training step are DALI's own output buffer, seen by torch without a copy.
Under DALI's dynamic executor that buffer lives as long as a reference to it, and when the last one
goes DALI frees it on its own stream and hands the memory to its next allocation at once. DALI's
stream does not wait for the consumer's: `Pipeline.run(stream)` makes the consumer wait for DALI, not
the reverse. A consumer that drops its views right after queuing the step would let DALI, running
ahead, write later views over memory that the queued step has not read yet. torch's own allocator
guards the same hazard with `record_stream`.

So the executor holds every iteration's output (`HeldOutputs`) until an event, recorded on the
consumer's current stream when it asks for the next iteration, has completed: everything it queued
on its stream up to then, the steps that read those views, has run. The check is `query()`, which
never blocks; only a consumer more than `MAX_HELD` iterations ahead of its GPU waits for the oldest.
The rule for consumers: views are valid while held by the executor, that is until the work queued
on the current stream before the next request has run; keep them longer only as a clone (or while
holding them and reading them on that stream). Copying every output instead would cost a pass over
the views per iteration and still need the same wait before DALI's buffer could be released.

On the CPU the consumer reads synchronously, so an output is released as soon as the next one is asked for.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Protocol

import torch

MAX_HELD = 4
"""Outputs held at most: with DALI's prefetching (2 iterations) this lets the consumer's stream run
two iterations behind the host before the host waits."""


class Marker(Protocol):
    """A point in the consumer's stream (torch.cuda.Event)."""

    def query(self) -> bool: ...

    def synchronize(self) -> None: ...


class HeldOutputs:
    """Outputs the consumer may still be reading, oldest first, each with the marker that releases it."""

    def __init__(self, marker: Callable[[], Marker | None]) -> None:
        """`marker()` records a marker on the consumer's current stream; None where reads are synchronous."""
        self._marker = marker
        self._held: deque[list[Any]] = deque()

    @classmethod
    def on(cls, device: torch.device) -> HeldOutputs:
        if device.type != "cuda":
            return cls(lambda: None)

        def recorded() -> torch.cuda.Event:
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(device))
            return event

        return cls(recorded)

    def hold(self, *objects: Any) -> None:
        """Keep an iteration's output (and every view of it) until the consumer is done with it."""
        self._held.append([objects, None])

    def consumed(self) -> None:
        """The consumer asks for the next iteration: what it queued so far reads every held output.
        Marks them, then lets go of those whose marks it has passed."""
        for entry in self._held:
            if entry[1] is None:
                entry[1] = self._marker() or _Passed()
        while self._held and self._held[0][1] is not None and self._held[0][1].query():
            self._held.popleft()
        while len(self._held) > MAX_HELD:
            self._held[0][1].synchronize()
            self._held.popleft()

    def __len__(self) -> int:
        return len(self._held)


class _Passed:
    """The marker of a synchronous consumer: already passed."""

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass
