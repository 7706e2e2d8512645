"""PIL's GaussianBlur (MoCo's and SDCLR's `GaussianBlur([.1, 2.])` for ImageNet) on batches of views.

PIL approximates a Gaussian of radius sigma by three passes of an extended box blur along the rows,
then three along the columns (Gwosdek et al., 2011), each pass in 8.24 fixed point and rounded to
uint8: out[x] = (ww * sum(in[x - r .. x + r]) + fw * (in[x - r - 1] + in[x + r + 1]) + 2^23) >> 24,
with edge pixels repeated. The box's integer radius r and the weights ww, fw follow from sigma in
PIL's float32 arithmetic (`box_weights`, on the host); the passes run here in int64 on all views
at once, a view's own r picked by a gather.
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
    x = x.long()
    radius, ww, fw = radius.long(), ww.long(), fw.long()
    for axis in (2, 1):
        for _ in range(PASSES):
            x = _box_pass(x, axis, radius, ww, fw)
    return x.to(torch.uint8)


def _box_pass(x: torch.Tensor, axis: int, radius: torch.Tensor, ww: torch.Tensor, fw: torch.Tensor) -> torch.Tensor:
    """One extended box pass along `axis` (2: rows, 1: columns), edge pixels repeated: window sums
    are differences of a running sum over the views padded by the largest radius."""
    length = x.shape[axis]
    pad = MAX_RADIUS + 1
    padded = x.index_select(axis, torch.arange(-pad, length + pad, device=x.device).clamp(0, length - 1))
    sums = padded.cumsum(axis)
    along = [1, 1, 1, 1]
    along[axis] = length
    centre = (torch.arange(length, device=x.device) + pad).view(along)

    def at(source: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """source[centre + offset], each view at its own offset."""
        return source.gather(axis, (centre + offset.view(-1, 1, 1, 1)).expand(x.shape))

    window = at(sums, radius) - at(sums, -radius - 1)
    far = at(padded, -radius - 1) + at(padded, radius + 1)
    total = ww.view(-1, 1, 1, 1) * window + fw.view(-1, 1, 1, 1) * far + (1 << (FRACTION_BITS - 1))
    return total >> FRACTION_BITS
