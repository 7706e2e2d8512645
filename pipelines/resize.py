"""PIL's bicubic resize of boxes of any size to S x S views, and the flip, batched in torch: the one
implementation of torchvision's RandomResizedCrop (BICUBIC, antialias) in the project.

torchvision crops the PIL image first and resizes the crop, so PIL's resampling sees only the box:
its coefficients depend on the box's length along each axis, not on where the box sits. They are
computed for every view at once, as PIL computes them (`pil_taps`: float64 filter weights over each
output pixel's taps, summed tap by tap, normalised, then 22-bit fixed point), and applied in PIL's
integer arithmetic: on a long axis a gather of whole lines and a multiply-add over all views per tap
(a few to a hundred taps); on a short one (CIFAR's 32 pixels) the taps placed in a dense matrix per
view and one batched float64 product, exact for these integers. Each pass is rounded to uint8 as PIL
rounds it.

In-memory images are resized from where they lie on the device (`resize_resident`: every view's
box in its image, one group, static shapes, so the dense schedule can be a CUDA graph; the taps of
every box length made once, `TapTables`). Image
folders decode each sample once: the union of its two views' boxes (pipelines.inputs); each view
is resized from its own box inside that union (`resize_views`).

Memory and launches are planned on the host, where every crop's size is known before anything is
decoded (`plan_resize`): the samples of an iteration are sorted by size and cut into chunks whose
working set stays under a budget of the device (tens of MB on the CPU, where caches matter; GBs on a
GPU, where each chunk costs a few hundred launches), so one huge image neither pads the others nor
exhausts memory. Within a chunk the views are split by the order of their two passes, also known on
the host, so nothing is read back from the device.

Pillow (13) runs the horizontal pass first for most crops and the vertical pass first for some
crops taller than wide and than the output; its rule for which is not reproduced here. This module
starts vertically for every crop taller than wide and than the output: where that order is not
Pillow's, views differ from PIL by a few levels on some pixels (within the executors' parity
tolerance, tests/bcl_dali/data/test_folder.py); every other view is PIL's, bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

PRECISION_BITS = 22
"""PIL's fixed-point precision for 8-bit resampling (32 - 8 - 2)."""
BICUBIC_SUPPORT = 2.0
BICUBIC_A = -0.5

CPU_CHUNK_BYTES = 1 << 25
"""The CPU's working set per chunk: near its caches (128 crops resized to 224 pixels took 1.3 s in
32 MB chunks, 3.3 s in 256 MB ones, on 2 shared cores)."""
DENSE_AXIS = 64
"""Axes this long or shorter (in-memory CIFAR-sized images) are resampled by dense matrix products:
fewer launches and less time than gathering tap by tap (pipelines.resize._dense_pass)."""
GPU_TAP_GROUP_BYTES = 1 << 28
"""The int32 products of a pass's taps the GPU gathers and sums at once: for CIFAR's views, every tap
of a pass in one group, 11 launches instead of 25 (the CPU goes tap by tap, which keeps its working
set in cache: 23 ms for the crop of 512 views against 56 ms in one group)."""
GPU_CHUNK_BYTES = 1 << 32
"""A GPU's working set per chunk, at most (and at most 1/16 of its memory): a chunk costs about 330
launches, so an iteration of 2,048 ImageNet-sized samples is 2 to 3 chunks."""


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """PIL's bicubic filter (Keys, a = -1/2)."""
    x = x.abs()
    a = BICUBIC_A
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def pil_taps(lengths: torch.Tensor, out_size: int, in_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's coefficients resampling each view's `lengths[i]` input pixels to `out_size`: the first input
    pixel of every output pixel, (n, out_size) int64, and the 22-bit fixed-point weights of its taps
    (zero past a view's own taps), (n, out_size, taps) int32. `in_size` bounds the lengths, so the
    number of taps is known without reading them (no device synchronisation)."""
    device = lengths.device
    length = lengths.double()[:, None]
    scale = length / out_size
    filter_scale = torch.clamp(scale, min=1.0)
    support = BICUBIC_SUPPORT * filter_scale
    inverse = 1.0 / filter_scale
    centre = (torch.arange(out_size, device=device, dtype=torch.float64) + 0.5) * scale
    low = torch.trunc(centre - support + 0.5).clamp(min=0.0)
    high = torch.minimum(torch.trunc(centre + support + 0.5), length)
    taps = math.ceil(2 * BICUBIC_SUPPORT * max(in_size / out_size, 1.0)) + 2
    position = low[..., None] + torch.arange(taps, device=device, dtype=torch.float64)
    weights = torch.where(position < high[..., None], _bicubic((position - centre[..., None] + 0.5) * inverse[..., None]),
                          torch.zeros_like(position))
    total = torch.zeros_like(centre)
    for tap in range(taps):  # PIL sums the taps in order
        total = total + weights[..., tap]
    scaled = weights / torch.where(total != 0.0, total, torch.ones_like(total))[..., None] * (1 << PRECISION_BITS)
    fixed = torch.where(scaled < 0, torch.trunc(scaled - 0.5), torch.trunc(scaled + 0.5))
    return low.long(), fixed.int()


def chunk_bytes(device: torch.device) -> int:
    if device.type != "cuda":
        return CPU_CHUNK_BYTES
    return min(GPU_CHUNK_BYTES, torch.cuda.get_device_properties(device).total_memory // 16)


def working_set(samples: np.ndarray, heights: np.ndarray, widths: np.ndarray, size: int) -> np.ndarray:
    """Bytes a chunk of `samples` crops padded to `heights` x `widths` claims: the padded crops and
    their transpose (uint8), and the first pass's int32 sums and products for the samples' two views."""
    return samples * (6 * heights * widths + 48 * size * np.maximum(heights, widths))


@dataclass(frozen=True)
class ResizeGroup:
    """Views of one chunk whose resize starts with the same pass. Index arrays are int64, on the host
    while an epoch is planned and on the device afterwards (pipelines.iteration.upload_indices)."""

    vertical: bool
    views: np.ndarray | torch.Tensor | None
    """(m,) the views' rows in the iteration; None: all of them, in order."""
    sources: np.ndarray | torch.Tensor
    """(m,) each view's crop: its position in the chunk."""
    top: np.ndarray | torch.Tensor
    """(m,) the view's box inside its crop: first row, first column, height, width."""
    left: np.ndarray | torch.Tensor
    height: np.ndarray | torch.Tensor
    width: np.ndarray | torch.Tensor
    longest: tuple[int, int]
    """The group's tallest and widest box (they bound the taps)."""


@dataclass(frozen=True)
class ResizeChunk:
    samples: list[int]
    """Positions of the chunk's crops among the iteration's decoded crops."""
    height: int
    width: int
    """The chunk's padded crop size."""
    starts: np.ndarray | torch.Tensor
    """(samples,) where each crop begins in the chunk's concatenated bytes."""
    heights: np.ndarray | torch.Tensor
    widths: np.ndarray | torch.Tensor
    groups: list[ResizeGroup]


@dataclass(frozen=True)
class ResizePlan:
    chunks: list[ResizeChunk]
    crops: np.ndarray
    """(n, 4) int32 top, left, height, width of each crop to decode, in its image (host only)."""

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Each decoded crop's (height, width), as the decoder must deliver it."""
        return [tuple(shape) for shape in self.crops[:, 2:].tolist()]


def vertical_first(heights: np.ndarray, widths: np.ndarray, size: int) -> np.ndarray:
    """Which views start with the vertical pass (see the module docstring)."""
    return (heights > size) & (heights > widths)


def plan_resize(boxes: np.ndarray, sample_of_view: np.ndarray, crops: np.ndarray, size: int,
                budget: int) -> ResizePlan:
    """The chunks of one iteration, on the host.

    `boxes` (V, 4): each view's top, left, height, width in its image; `sample_of_view` (V,): which
    decoded crop holds it; `crops` (n, 4): each crop's box in its image, holding its views' boxes."""
    heights, widths = crops[:, 2].astype(np.int64), crops[:, 3].astype(np.int64)
    chunks = []
    for members in _chunks(heights, widths, size, budget):
        position = np.full(len(crops), -1, np.int64)
        position[members] = np.arange(len(members))
        views = np.flatnonzero(position[sample_of_view] >= 0)
        box = boxes[views].astype(np.int64)
        source = position[sample_of_view[views]]
        top, left = box[:, 0] - crops[sample_of_view[views], 0], box[:, 1] - crops[sample_of_view[views], 1]
        later = vertical_first(box[:, 2], box[:, 3], size)
        groups = [ResizeGroup(bool(vertical), views[picked], source[picked], top[picked], left[picked],
                              box[picked, 2], box[picked, 3], (int(box[picked, 2].max()), int(box[picked, 3].max())))
                  for vertical in (False, True) for picked in [later == vertical] if picked.any()]
        sizes = heights[members] * widths[members] * 3
        chunks.append(ResizeChunk([int(m) for m in members], int(heights[members].max()), int(widths[members].max()),
                                  np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
                                  heights[members], widths[members], groups))
    return ResizePlan(chunks, crops.astype(np.int32))


def _chunks(heights: np.ndarray, widths: np.ndarray, size: int, budget: int) -> list[np.ndarray]:
    """Crops by decreasing area, cut where a chunk's padded working set would pass `budget` (a crop
    over it alone is a chunk of its own)."""
    order = np.argsort(-(heights * widths), kind="stable")
    chunks, start = [], 0
    while start < len(order):
        rest = order[start:]
        cost = working_set(np.arange(1, len(rest) + 1), np.maximum.accumulate(heights[rest]),
                           np.maximum.accumulate(widths[rest]), size)
        count = max(1, int(np.searchsorted(cost, budget, side="right")))
        chunks.append(rest[:count])
        start += count
    return chunks


def columns_of(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, H, W, 3) images laid out as lines of columns, (n, W, H * 3): the horizontal pass reads
    whole columns as rows."""
    count, height, width, _ = images.shape
    return images.permute(0, 2, 1, 3).reshape(count, width, height * 3)


class TapTables:
    """PIL's taps for every box length from 1 to `longest` resized to `size`, flipped and not, made
    once: a view's taps are then a gather by its box's length, not a computation of their own
    (in-memory images, whose boxes are never longer than the images)."""

    def __init__(self, longest: int, size: int, device: torch.device) -> None:
        low, weights = pil_taps(torch.arange(longest + 1, device=device).clamp(min=1), size, longest)
        self.lengths = longest + 1
        self.low = torch.cat([low, low.flip(1)])
        """(2 (longest + 1), size): row `length`, then row `longest + 1 + length` flipped."""
        self.weights = torch.cat([weights, weights.flip(1)])

    def __call__(self, lengths: torch.Tensor, longest: int, size: int,
                 flip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        rows = lengths if flip is None else lengths + flip.long() * self.lengths
        return self.low.index_select(0, rows), self.weights.index_select(0, rows)


def resize_resident(columns: torch.Tensor, tables: TapTables, boxes: torch.Tensor, image: torch.Tensor,
                    flip: torch.Tensor, size: int) -> torch.Tensor:
    """Views of in-memory S x S images, their `columns_of` kept on the device: view i is image
    `image[i]`'s box `boxes[i]` (top, left, height, width), resized to `size` and flipped where `flip`.
    A box is never taller than the view, so every view starts horizontally, as PIL does."""
    height = columns.shape[2] // 3
    group = ResizeGroup(False, None, image, boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], (height, height))
    return _width_first(columns, group, flip, size, tables)


def resize_views(crops: list[torch.Tensor], plan: ResizePlan, flip: torch.Tensor, size: int,
                 views: int) -> torch.Tensor:
    """uint8 (h, w, 3) decoded crops -> uint8 (views, size, size, 3): each view's box resized with PIL's
    bicubic filter, then flipped where `flip` (views,) says."""
    out = torch.empty(views, size, size, 3, dtype=torch.uint8, device=flip.device)
    for chunk in plan.chunks:
        padded = _padded([crops[s] for s in chunk.samples], chunk)
        for group in chunk.groups:
            first = padded if group.vertical else columns_of(padded)
            resized = (_height_first if group.vertical else _width_first)(first, group, flip.index_select(0, group.views),
                                                                          size)
            out.index_copy_(0, group.views, resized)
    return out


def _padded(crops: list[torch.Tensor], chunk: ResizeChunk) -> torch.Tensor:
    """The chunk's crops as one (n, H, W, 3) tensor. Rows and columns past a crop's own hold other
    bytes, which the passes read only with weight zero."""
    if len(crops) == 1:
        return crops[0][None]
    line = chunk.width * 3
    flat = torch.cat([crop.reshape(-1) for crop in crops] + [crops[0].new_zeros(line)])
    lines = flat.as_strided((flat.numel() - line, line), (1, 1))
    rows = torch.arange(chunk.height, device=flat.device)[None, :]
    starts = chunk.starts[:, None] + torch.minimum(rows, chunk.heights[:, None] - 1) * (chunk.widths[:, None] * 3)
    return lines.index_select(0, starts.reshape(-1)).view(len(crops), chunk.height, chunk.width, 3)


def _pass(pixels: torch.Tensor, low: torch.Tensor, weights: torch.Tensor, source: torch.Tensor,
          offset: torch.Tensor) -> torch.Tensor:
    """One of PIL's passes along the middle axis of uint8 (n, L, R) pixels for m views: view i reads
    lines `offset[i]` onwards of `pixels[source[i]]`. In PIL's own integer arithmetic: each output
    line's taps (whole lines of R values, gathered as rows) times their 22-bit weights, summed, plus
    one half, shifted down and clipped to uint8; (m, out, R). Integer sums do not depend on their
    order, and every partial sum stays below 2^31, as PIL's int32 sums do; so the taps are gathered
    and summed in as few groups as GPU_TAP_GROUP_BYTES allows on the GPU, one by one on the CPU."""
    count, length, width = pixels.shape
    views, out, taps = weights.shape
    if length <= DENSE_AXIS:
        return _dense_pass(pixels, low, weights, source, offset)
    lines = pixels.reshape(count * length, width)
    along = offset[None, :, None] + low[None] + torch.arange(taps, device=low.device)[:, None, None]
    index = (source * length)[None, :, None] + along.clamp_(max=length - 1)
    per_tap = weights.permute(2, 0, 1).unsqueeze(-1)
    group = max(1, GPU_TAP_GROUP_BYTES // max(1, views * out * width * 4)) if pixels.device.type != "cpu" else 1
    total = None
    for start in range(0, taps, group):
        picked = lines.index_select(0, index[start:start + group].reshape(-1)).view(-1, views, out, width)
        weighted = picked * per_tap[start:start + group]
        part = weighted[0] if group == 1 else weighted.sum(0, dtype=torch.int32)  # one tap: no reduction pass
        total = part if total is None else total.add_(part)
    return ((total + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS).clamp_(0, 255).to(torch.uint8)


def _dense_pass(pixels: torch.Tensor, low: torch.Tensor, weights: torch.Tensor, source: torch.Tensor,
                offset: torch.Tensor) -> torch.Tensor:
    """`_pass` for a short axis: each view's taps placed in a dense (out, L) matrix and applied as one
    batched float64 product. The weights are the same integers and every sum stays below 2^31, so
    float64 holds the products and sums exactly, and flooring after the shift by 2^22 is PIL's."""
    length = pixels.shape[1]
    position = (offset[:, None, None] + low[..., None] + torch.arange(weights.shape[2], device=low.device))
    matrices = torch.zeros(*low.shape, length, dtype=torch.float64, device=low.device)
    matrices.scatter_add_(2, position.clamp_(max=length - 1), weights.double())
    total = torch.bmm(matrices, pixels.index_select(0, source).double())
    return torch.floor((total + (1 << (PRECISION_BITS - 1))) * 2.0 ** -PRECISION_BITS).clamp_(0, 255).to(torch.uint8)


def _taps(lengths: torch.Tensor, longest: int, size: int, flip: torch.Tensor | None = None):
    low, weights = pil_taps(lengths, size, longest)
    if flip is None:
        return low, weights
    flipped = flip.bool()[:, None]
    return torch.where(flipped, low.flip(1), low), torch.where(flipped[..., None], weights.flip(1), weights)


def _width_first(columns: torch.Tensor, group: ResizeGroup, flip: torch.Tensor, size: int,
                 taps: Callable[..., tuple[torch.Tensor, torch.Tensor]] = _taps) -> torch.Tensor:
    """Horizontal pass on `columns_of` the sources, then the vertical pass; `taps` makes each view's
    taps (computed, or gathered from TapTables)."""
    height = columns.shape[2] // 3
    across = _pass(columns, *taps(group.width, group.longest[1], size, flip), group.sources, group.left)
    rows = across.view(-1, size, height, 3).permute(0, 2, 1, 3).reshape(-1, height, size * 3)
    own = torch.arange(rows.shape[0], device=rows.device)
    return _pass(rows, *taps(group.height, group.longest[0], size), own, group.top).view(-1, size, size, 3)


def _height_first(padded: torch.Tensor, group: ResizeGroup, flip: torch.Tensor, size: int) -> torch.Tensor:
    count, height, width, _ = padded.shape
    down = _pass(padded.reshape(count, height, width * 3), *_taps(group.height, group.longest[0], size),
                 group.sources, group.top)
    columns = down.view(-1, size, width, 3).permute(0, 2, 1, 3).reshape(-1, width, size * 3)
    own = torch.arange(columns.shape[0], device=columns.device)
    across = _pass(columns, *_taps(group.width, group.longest[1], size, flip), own, group.left)
    return across.view(-1, size, size, 3).permute(0, 2, 1, 3)
