"""Choosing the compute device and the matching precision."""
from __future__ import annotations

import contextlib
import os

import torch

from bcl_dali.errors import UserError


def resolve_device(name: str) -> torch.device:
    """"auto" picks the GPU when there is one; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda asked for, but no CUDA GPU is visible to torch; "
                            "use --device cpu, or run on a machine with a GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) visible; "
                            f"use cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif device.type != "cpu":
        raise UserError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def cpu_count() -> int:
    """The cores this process may use (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast on CUDA by default; fp32 on the CPU unless asked."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, bf16: bool, cache: bool = True) -> contextlib.AbstractContextManager:
    """`cache`: keep each weight's bf16 copy for the region (off inside a CUDA graph capture, as torch
    requires there)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=cache)
