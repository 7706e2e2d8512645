"""Correctly rounded division, device constants and table lookups for the PIL-exact stages.

PyTorch computes `number / tensor` as reciprocal(tensor) * number, and on CUDA divides by a
Python number as a multiplication by its reciprocal; both round differently from PIL's division
and move results that sit on an integer boundary (e.g. 510 / 255 in the hue sector). Dividing by a
tensor on the same device is an IEEE division everywhere. Constants are made once per device, so
the stages copy nothing from the host per iteration.
"""
from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=None)
def constant(values: float | tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


def divide(numerator: torch.Tensor | float, denominator: torch.Tensor | float) -> torch.Tensor:
    """numerator / denominator, correctly rounded, with either side a Python number."""
    if not isinstance(numerator, torch.Tensor):
        numerator = constant(float(numerator), denominator.dtype, denominator.device)
    if not isinstance(denominator, torch.Tensor):
        denominator = constant(float(denominator), numerator.dtype, numerator.device)
    return torch.div(numerator, denominator)


def lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[index] for a 1-d table: index_select, several times faster on the CPU than indexing."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)
