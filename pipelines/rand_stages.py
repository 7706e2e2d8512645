"""The stages of a RandAugment slot on batches of uint8 NHWC views, each PIL's arithmetic.

WARP is PIL's nearest-neighbour affine transform (also Image.rotate's); ENHANCE is ImageEnhance
(pipelines.colour); AUTOCONTRAST, EQUALIZE and the POINT maps (invert, solarize, posterize) all
map each channel through a 256-entry table, so they share one stage that builds each view's
tables (from its histogram where the op needs one) and applies them with a single lookup; CUTOUT
fills a box. Every stage treats each view on its own, so it can run on any subset of the views.
"""
from __future__ import annotations

import functools

import torch

from bcl_dali.pipelines.colour import enhance
from bcl_dali.pipelines.pil_arithmetic import constant, divide, lookup
from bcl_dali.pipelines.ops import CUTOUT_FILL, POINT_TABLES
from bcl_dali.pipelines.slot import Stage

LEVELS = 256


def warp(x: torch.Tensor, affine: torch.Tensor, columns: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """PIL's affine transform with NEAREST and fill 0; `affine` (n, 6) float64 is PIL's data
    (a, b, c, d, e, f): output pixel (x, y) samples input (a x + b y + c, d x + e y + f) at pixel
    centres, black outside the image.

    PIL (Geometry.c) has two paths. Without shear (b = d = 0: translations, the identity) it
    tabulates float64 running coordinates per column and per row: `columns` and `rows` (n, S),
    made when the epoch is planned (pipelines.slot.running_coordinates). Otherwise it works in
    16.16 fixed point: the coefficients rounded to multiples of 2^-16, integer sums, an arithmetic
    shift, reproduced here in float64, which holds those integers exactly.
    """
    n, height, width, channels = x.shape
    a, b, c, d, e, f = affine.unbind(1)
    scaling = ((b == 0) & (d == 0)).view(-1, 1, 1)
    column = torch.where(scaling, columns.view(-1, 1, width), _fixed_point(c + a * 0.5 + b * 0.5, b, a, height, width))
    row = torch.where(scaling, rows.view(-1, height, 1), _fixed_point(f + d * 0.5 + e * 0.5, e, d, height, width))
    column, row = column.clamp(-1, width), row.clamp(-1, height)
    index = ((row + 1.0) * (width + 2) + (column + 1.0)).long().view(n, height * width, 1)
    bordered = torch.nn.functional.pad(x, (0, 0, 1, 1, 1, 1)).view(n, (height + 2) * (width + 2), channels)
    return bordered.gather(1, index.expand(-1, -1, channels)).view(n, height, width, channels)


def _fixed_point(start: torch.Tensor, per_row: torch.Tensor, per_column: torch.Tensor, height: int,
                 width: int) -> torch.Tensor:
    """(n, H, W) PIL's 16.16 fixed-point coordinate >> 16: FIX(start) + y FIX(per_row) + x FIX(per_column),
    FIX(v) = floor(v 65536 + 1/2); the integers stay below 2^53, so float64 holds them exactly."""
    def fix(v: torch.Tensor) -> torch.Tensor:
        return torch.floor(v * 65536.0 + 0.5).view(-1, 1, 1)

    rows = constant(tuple(range(height)), torch.float64, start.device).view(1, -1, 1)
    columns = constant(tuple(range(width)), torch.float64, start.device).view(1, 1, -1)
    return torch.floor((fix(start) + rows * fix(per_row) + columns * fix(per_column)) * (1.0 / 65536.0))


def enhance_stage(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """ImageEnhance with `params` (n, 4): factor, grey, mean and smooth parts of the degenerate image."""
    factor, grey, mean, smooth = params.unbind(1)
    return enhance(x.float(), factor, grey, mean, smooth).to(torch.uint8)


@functools.lru_cache(maxsize=None)
def _point_tables(device: torch.device) -> torch.Tensor:
    """Every point map (pipelines.slot.PointTables), made once per device."""
    return torch.as_tensor(POINT_TABLES.values, device=device)


def channel_tables(x: torch.Tensor, stage: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Each view's per-channel map (autocontrast, equalize, or its point map), applied."""
    points = _point_tables(x.device)
    n, height, width, channels = x.shape
    base = (torch.arange(n * channels, device=x.device) * LEVELS).view(n, 1, 1, channels)
    index = x.long() + base
    histogram = torch.zeros(n * channels * LEVELS, dtype=torch.int32, device=x.device)
    histogram.index_add_(0, index.view(-1), constant(1, torch.int32, x.device).expand(index.numel()))
    histogram = histogram.view(n, channels, LEVELS)
    table = torch.where(stage.view(-1, 1, 1) == Stage.AUTOCONTRAST, _autocontrast(histogram), _equalize(histogram))
    table = torch.where(stage.view(-1, 1, 1) == Stage.POINT, lookup(points, point.long().view(-1, 1, 1) + _levels(x.device)),
                        table)
    return lookup(table.view(-1), index)


def _levels(device: torch.device) -> torch.Tensor:
    return constant(tuple(range(LEVELS)), torch.long, device)


def _autocontrast(histogram: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.autocontrast (cutoff 0) tables: each channel's [lo, hi] stretched to [0, 255] by
    int(v * scale + offset) in float64, scale = 255 / (hi - lo), offset = -lo * scale."""
    levels = _levels(histogram.device).double()
    present = histogram > 0
    low = torch.where(present, levels, float(LEVELS)).amin(-1, keepdim=True)
    high = torch.where(present, levels, -1.0).amax(-1, keepdim=True)
    stretch = high > low
    scale = divide(255.0, torch.where(stretch, high - low, 1.0))
    offset = -low * scale
    stretched = torch.trunc(levels * scale + offset).clamp_(0.0, 255.0)
    return torch.where(stretch, stretched, levels).to(torch.uint8)


def _equalize(histogram: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.equalize tables: with step = (N - count of the top value) // 255, level v maps
    to (step // 2 + count below v) // step, clipped to 255; identity when step is 0 or one value."""
    levels = _levels(histogram.device)
    histogram = histogram.long()
    present = histogram > 0
    top = torch.where(present, levels, -1).amax(-1, keepdim=True)
    step = (histogram.sum(-1, keepdim=True) - histogram.gather(-1, top)) // 255
    below = torch.cumsum(histogram, -1) - histogram
    equalized = ((step // 2 + below) // torch.where(step > 0, step, 1)).clamp_(max=255)
    identity = (step == 0) | (present.sum(-1, keepdim=True) <= 1)
    return torch.where(identity, levels, equalized).to(torch.uint8)


def cutout(x: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Fill each view's box [top, bottom) x [left, right) (`box` (n, 4)) with the reference's grey."""
    n, height, width, _ = x.shape
    top, left, bottom, right = (side.view(-1, 1, 1) for side in box.unbind(1))
    rows = constant(tuple(range(height)), box.dtype, x.device).view(1, -1, 1)
    columns = constant(tuple(range(width)), box.dtype, x.device).view(1, 1, -1)
    inside = (rows >= top) & (rows < bottom) & (columns >= left) & (columns < right)
    return torch.where(inside.unsqueeze(-1), constant(CUTOUT_FILL, x.dtype, x.device), x)
