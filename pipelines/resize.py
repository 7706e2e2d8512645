"""PIL's bicubic resize of decoded crops of any size to S x S views, and the flip, batched in torch.

Image folders decode each sample once: the union of its two views' crop boxes (pipelines.dali_folder).
Each view is then resized from its own box inside that union. PIL's coefficients are computed for
every view at once, as PIL computes them (`pil_taps`: float64 filter weights over each output pixel's
taps, summed tap by tap, normalised, then 22-bit fixed point), and applied in PIL's int32 arithmetic
tap by tap: a gather of whole lines and a multiply-add over all views per tap (about ten taps), each
pass rounded to uint8 as PIL rounds it.

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
tolerance, tests/test_folder.py); every other view is PIL's, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipelines.resample import PRECISION_BITS, pil_taps

CPU_CHUNK_BYTES = 1 << 25
"""The CPU's working set per chunk: near its caches (128 crops resized to 224 pixels took 1.3 s in
32 MB chunks, 3.3 s in 256 MB ones, on 2 shared cores)."""
GPU_CHUNK_BYTES = 1 << 32
"""A GPU's working set per chunk, at most (and at most 1/16 of its memory): a chunk costs about 330
launches, so an iteration of 2,048 ImageNet-sized samples is 2 to 3 chunks."""


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
    views: np.ndarray | torch.Tensor
    """(m,) the views' rows in the iteration."""
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


def resize_views(crops: list[torch.Tensor], plan: ResizePlan, flip: torch.Tensor, size: int,
                 views: int) -> torch.Tensor:
    """uint8 (h, w, 3) decoded crops -> uint8 (views, size, size, 3): each view's box resized with PIL's
    bicubic filter, then flipped where `flip` (views,) says."""
    out = torch.empty(views, size, size, 3, dtype=torch.uint8, device=flip.device)
    for chunk in plan.chunks:
        padded = _padded([crops[s] for s in chunk.samples], chunk)
        for group in chunk.groups:
            resized = (_height_first if group.vertical else _width_first)(padded, group, flip.index_select(0, group.views),
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
    line's taps (whole lines of R values, gathered as rows) times their 22-bit weights, plus one half,
    shifted down and clipped to uint8; (m, out, R). The sums stay below 2^31, as PIL's int32 sums do."""
    count, length, width = pixels.shape
    lines = pixels.reshape(count * length, width)
    taps = weights.shape[2]
    along = offset[None, :, None] + low[None] + torch.arange(taps, device=low.device)[:, None, None]
    index = (source * length)[None, :, None] + along.clamp_(max=length - 1)
    per_tap = weights.permute(2, 0, 1).unsqueeze(-1).contiguous()
    total = torch.full((low.shape[0], low.shape[1], width), 1 << (PRECISION_BITS - 1), dtype=torch.int32,
                       device=pixels.device)
    for tap in range(taps):
        total += per_tap[tap] * lines.index_select(0, index[tap].reshape(-1)).view(total.shape)
    return (total >> PRECISION_BITS).clamp_(0, 255).to(torch.uint8)


def _taps(lengths: torch.Tensor, longest: int, size: int, flip: torch.Tensor | None = None):
    low, weights = pil_taps(lengths, size, longest)
    if flip is None:
        return low, weights
    flipped = flip.bool()[:, None]
    return torch.where(flipped, low.flip(1), low), torch.where(flipped[..., None], weights.flip(1), weights)


def _width_first(padded: torch.Tensor, group: ResizeGroup, flip: torch.Tensor, size: int) -> torch.Tensor:
    count, height, width, _ = padded.shape
    columns = padded.permute(0, 2, 1, 3).reshape(count, width, height * 3)
    across = _pass(columns, *_taps(group.width, group.longest[1], size, flip), group.sources, group.left)
    rows = across.view(-1, size, height, 3).permute(0, 2, 1, 3).reshape(-1, height, size * 3)
    own = torch.arange(rows.shape[0], device=rows.device)
    return _pass(rows, *_taps(group.height, group.longest[0], size), own, group.top).view(-1, size, size, 3)


def _height_first(padded: torch.Tensor, group: ResizeGroup, flip: torch.Tensor, size: int) -> torch.Tensor:
    count, height, width, _ = padded.shape
    down = _pass(padded.reshape(count, height, width * 3), *_taps(group.height, group.longest[0], size),
                 group.sources, group.top)
    columns = down.view(-1, size, width, 3).permute(0, 2, 1, 3).reshape(-1, width, size * 3)
    own = torch.arange(columns.shape[0], device=columns.device)
    across = _pass(columns, *_taps(group.width, group.longest[1], size, flip), own, group.left)
    return across.view(-1, size, size, 3).permute(0, 2, 1, 3)
