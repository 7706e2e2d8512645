"""PIL's bicubic resize of decoded crops of any size to S x S views, and the flip, batched in torch.

Image folders decode each view's crop box only (pipelines.dali_folder), so the crops reach the
resize with their own heights and widths. PIL's coefficients are computed for every view at once,
as PIL computes them (`precompute_coeffs`: float64 filter weights over each output pixel's taps,
summed tap by tap, normalised, then 22-bit fixed point), and applied in PIL's int32 arithmetic tap
by tap (a gather and a multiply-add over all views per tap: about ten taps, not a dense product
over the whole crop) to the crops zero-padded to the batch's largest, each pass rounded to uint8 as
PIL rounds it.

Pillow (13) runs the horizontal pass first for most crops and the vertical pass first for some
crops taller than wide and than the output; its rule for which is not reproduced here. This module
starts vertically for every crop taller than wide and than the output: where that order is not
Pillow's, views differ from PIL by a few levels on some pixels (within the executors' parity
tolerance, tests/test_folder.py); every other view is PIL's, bit for bit.
"""
from __future__ import annotations

import torch

from pipelines.resample import PRECISION_BITS, pil_taps

CHUNK_BYTES = {True: 1 << 30, False: 1 << 25}
"""One chunk's padded crops, counted as int32, on the GPU (dense) and on the CPU: chunks bound the
working set that a batch padded to its largest crop would otherwise claim. The GPU's bound is large,
since each chunk costs a few dozen kernel launches; the CPU's keeps a chunk near its caches (128
crops resized to 224 pixels took 1.3 s in 32 MB chunks, 3.3 s in 256 MB ones, on 2 shared cores)."""


def _pass(pixels: torch.Tensor, low: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One of PIL's passes along the middle axis of uint8 (n, L, R) pixels, in PIL's own integer
    arithmetic: each output line's taps (whole lines of R values, gathered as rows) times their
    22-bit weights, plus one half, shifted down and clipped to uint8; (n, out, R). The sums stay
    below 2^31, as PIL's int32 sums do."""
    n, length, rows = pixels.shape
    lines = pixels.reshape(n * length, rows)
    first = low + (torch.arange(n, device=low.device) * length)[:, None]
    total = torch.full((n, low.shape[1], rows), 1 << (PRECISION_BITS - 1), dtype=torch.int32, device=pixels.device)
    for tap in range(weights.shape[2]):
        index = torch.minimum(low + tap, torch.full_like(low, length - 1)) - low + first
        total += weights[:, :, tap, None] * lines.index_select(0, index.flatten()).view(total.shape)
    return (total >> PRECISION_BITS).clamp_(0, 255).to(torch.uint8)


def _horizontal(planes: torch.Tensor, low: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 3) -> (n, H, S, 3): resample along the width."""
    n, height, width, _ = planes.shape
    columns = planes.permute(0, 2, 1, 3).reshape(n, width, height * 3)
    return _pass(columns, low, weights).view(n, -1, height, 3).permute(0, 2, 1, 3)


def _vertical(planes: torch.Tensor, low: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 3) -> (n, S, W, 3): resample along the height."""
    n, height, width, _ = planes.shape
    return _pass(planes.reshape(n, height, width * 3), low, weights).view(n, -1, width, 3)


def vertical_first(heights: torch.Tensor, widths: torch.Tensor, size: int) -> torch.Tensor:
    """Which views start with the vertical pass (see the module docstring)."""
    return (heights > size) & (heights > widths)


def resize_crops(crops: torch.Tensor, heights: torch.Tensor, widths: torch.Tensor, flip: torch.Tensor,
                 size: int, dense: bool = False) -> torch.Tensor:
    """uint8 (n, H, W, 3) crops, view i in its top-left `heights[i]` x `widths[i]` (the rest padding)
    -> uint8 (n, size, size, 3) views: PIL's bicubic resize, then flipped where `flip`. `dense` runs
    both pass orders on every view and keeps each view's own (the GPU's schedule: no synchronisation
    to find the rows of each order, pipelines.rows); otherwise each order runs on its views only."""
    n, height, width, _ = crops.shape
    out = torch.empty(n, size, size, 3, dtype=torch.uint8, device=crops.device)
    chunk = max(1, CHUNK_BYTES[dense] // (height * width * 3 * 4))
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        out[rows] = _resize_chunk(crops[rows], heights[rows], widths[rows], flip[rows], size, dense)
    return out


def _resize_chunk(crops: torch.Tensor, heights: torch.Tensor, widths: torch.Tensor, flip: torch.Tensor,
                  size: int, dense: bool) -> torch.Tensor:
    low, weights = pil_taps(widths, size, crops.shape[2])
    flipped = flip.bool()[:, None]
    across = (torch.where(flipped, low.flip(1), low), torch.where(flipped[..., None], weights.flip(1), weights))
    down = pil_taps(heights, size, crops.shape[1])
    later = vertical_first(heights, widths, size)

    def width_first(x: torch.Tensor, across: tuple, down: tuple) -> torch.Tensor:
        return _vertical(_horizontal(x, *across), *down)

    def height_first(x: torch.Tensor, across: tuple, down: tuple) -> torch.Tensor:
        return _horizontal(_vertical(x, *down), *across)

    if dense:
        return torch.where(later[:, None, None, None], height_first(crops, across, down),
                           width_first(crops, across, down))
    views = torch.empty(len(crops), size, size, 3, dtype=torch.uint8, device=crops.device)
    for kind, function in ((~later, width_first), (later, height_first)):
        picked = kind.nonzero().squeeze(1)
        if len(picked):
            views[picked] = function(crops[picked], tuple(t[picked] for t in across), tuple(t[picked] for t in down))
    return views
