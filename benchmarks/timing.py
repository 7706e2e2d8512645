"""Timing helpers shared by the benchmarks."""
from __future__ import annotations

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device, so a wall-clock interval covers the work queued in it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_name(device: torch.device) -> str | None:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None
