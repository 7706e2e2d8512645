"""PIL's GaussianBlur (MoCo's and SDCLR's `GaussianBlur([.1, 2.])` for ImageNet) on batches of views.

PIL approximates a Gaussian of radius sigma by three passes of an extended box blur along the rows,
then three along the columns (Gwosdek et al., 2011), each pass in 8.24 fixed point and rounded to
uint8: out[x] = (ww * sum(in[x - r .. x + r]) + fw * (in[x - r - 1] + in[x + r + 1]) + 2^23) >> 24,
with edge pixels repeated. The box's integer radius r and the weights ww, fw follow from sigma in
PIL's float32 arithmetic (`box_weights`, on the host). Over the recipe's sigma range r is 0 or 1,
so a pass is a symmetric filter of a few taps with each view's own weights (ww inside its box, fw
just outside), summed in int64 on all views at once, its input and output uint8 as PIL's.
"""
from __future__ import annotations

import numpy as np
import torch

PASSES = 3
FRACTION_BITS = 24
SIGMA_RANGE = (0.1, 2.0)
"""MoCo's and SDCLR's sigma range; its top bounds the box radius the passes are built for."""


def box_weights(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, ww, fw) per view, as PIL's `_gaussian_blur_radius` and `ImagingHorizontalBoxBlur` compute them
    from a radius given as a Python float (held as a C float)."""
    sigma = np.asarray(sigma, np.float32)
    sigma2 = sigma * sigma / np.float32(PASSES)
    length = np.sqrt(12.0 * sigma2.astype(np.float64) + 1.0).astype(np.float32)
    whole = np.floor((length.astype(np.float64) - 1.0) / 2.0).astype(np.float32)
    part = (np.float32(2) * whole + np.float32(1)) * (whole * (whole + np.float32(1)) - np.float32(3) * sigma2)
    part = part / (np.float32(6) * (sigma2 - (whole + np.float32(1)) * (whole + np.float32(1))))
    radius = (whole + part).astype(np.float32)
    whole_radius = radius.astype(np.int64)
    ww = np.trunc(np.float32(1 << FRACTION_BITS) / (radius * np.float32(2) + np.float32(1))).astype(np.int64)
    fw = ((1 << FRACTION_BITS) - (whole_radius * 2 + 1) * ww) // 2
    return whole_radius, ww, fw


MAX_RADIUS = int(box_weights(np.array([SIGMA_RANGE[1]]))[0][0])


def gaussian_blur(x: torch.Tensor, radius: torch.Tensor, ww: torch.Tensor, fw: torch.Tensor) -> torch.Tensor:
    """uint8 (n, H, W, 3) views -> the same blurred; `radius`, `ww`, `fw` (n,) from `box_weights`."""
    weights = tap_weights(radius.long(), ww.long(), fw.long())
    for axis in (2, 1):
        for _ in range(PASSES):
            x = _box_pass(x, axis, weights)
    return x


def tap_weights(radius: torch.Tensor, ww: torch.Tensor, fw: torch.Tensor) -> torch.Tensor:
    """(MAX_RADIUS + 2, n, 1, 1, 1) int64: each view's weight of the pixels at distance 0, 1, ... from
    the centre: ww inside its box, fw just outside, 0 beyond."""
    distance = torch.arange(MAX_RADIUS + 2, device=radius.device)[:, None]
    weights = torch.where(distance <= radius, ww, torch.where(distance == radius + 1, fw, torch.zeros_like(ww)))
    return weights.view(MAX_RADIUS + 2, -1, 1, 1, 1)


def _box_pass(x: torch.Tensor, axis: int, weights: torch.Tensor) -> torch.Tensor:
    """One extended box pass along `axis` (2: rows, 1: columns) of uint8 views, edge pixels repeated:
    a symmetric filter of MAX_RADIUS + 2 distances, each view with its own weights, summed in int64."""
    length = x.shape[axis]
    pad = MAX_RADIUS + 1
    padded = x.index_select(axis, torch.arange(-pad, length + pad, device=x.device).clamp(0, length - 1)).int()
    total = weights[0] * padded.narrow(axis, pad, length) + (1 << (FRACTION_BITS - 1))
    for distance in range(1, pad + 1):
        pair = padded.narrow(axis, pad - distance, length) + padded.narrow(axis, pad + distance, length)
        total += weights[distance] * pair
    return (total >> FRACTION_BITS).to(torch.uint8)
