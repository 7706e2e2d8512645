"""Reading a device-side running mean for display without stalling the GPU."""
from __future__ import annotations

import torch


class RunningMean:
    """The mean of values accumulated on the training device.

    `peek()` returns the newest mean that has already reached the host: on CUDA it queues a copy
    into pinned memory and reports the previous copy once its event has fired, so a progress bar
    never forces a host synchronisation inside the step loop. `read()` synchronises (epoch end).
    """

    def __init__(self, device: torch.device) -> None:
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0
        self._cuda = device.type == "cuda"
        self._device = device
        self._host = torch.zeros((), dtype=torch.float64, pin_memory=self._cuda)
        self._event = torch.cuda.Event() if self._cuda else None
        self._copied_count = 0
        self._pending = False
        self._landed: float | None = None

    def add(self, values: torch.Tensor) -> None:
        self.total += values.detach().sum()
        self.count += values.numel()

    def peek(self) -> float | None:
        if not self._cuda:
            return self.read()
        if self._pending and self._event.query():
            self._landed, self._pending = float(self._host) / max(self._copied_count, 1), False
        if not self._pending:
            self._host.copy_(self.total, non_blocking=True)
            self._event.record(torch.cuda.current_stream(self._device))
            self._copied_count, self._pending = self.count, True
        return self._landed

    def read(self) -> float:
        return float(self.total) / max(self.count, 1)
