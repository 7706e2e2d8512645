"""RandomResizedCrop and the flip as two batched matrix products, bit for bit PIL's bicubic resize.

torchvision crops the PIL image first and resizes the crop, so PIL's resampling sees only the crop:
its coefficients depend on the crop's length along each axis, not on where the crop sits. They are
computed once per length, as PIL computes them (`pil_taps`, which pipelines.resize shares: float64
filter weights, normalised, then 22-bit fixed point), and kept as dense (output x input) matrices. A view's horizontal matrix is the one of
its crop width shifted to the crop's left edge (and reversed for the flip); its vertical matrix
likewise. PIL's two passes (each rounded to uint8) then become two batched float64 products, exact
because every weight is a multiple of 2^-22 and every sum below 2^10: 32 significant bits.

PIL runs the horizontal pass first unless a crop is taller than wide and taller than the output;
a RandomResizedCrop of an image of the output's size is never taller than the output, and that is
the only use (pipelines.dali_executor refuses other sizes), so the horizontal pass always comes first.
"""
from __future__ import annotations

import math

import torch

PRECISION_BITS = 22
"""PIL's fixed-point precision for 8-bit resampling (32 - 8 - 2)."""
BICUBIC_SUPPORT = 2.0
BICUBIC_A = -0.5


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
    (zero past a view's own taps), (n, out_size, taps) int32. `in_size` bounds the lengths."""
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
    """An upper bound on any view's taps, known without reading `lengths` (no device synchronisation)."""
    position = low[..., None] + torch.arange(taps, device=device, dtype=torch.float64)
    weights = torch.where(position < high[..., None], _bicubic((position - centre[..., None] + 0.5) * inverse[..., None]),
                          torch.zeros_like(position))
    total = torch.zeros_like(centre)
    for tap in range(taps):  # PIL sums the taps in order
        total = total + weights[..., tap]
    scaled = weights / torch.where(total != 0.0, total, torch.ones_like(total))[..., None] * (1 << PRECISION_BITS)
    fixed = torch.where(scaled < 0, torch.trunc(scaled - 0.5), torch.trunc(scaled + 0.5))
    return low.long(), fixed.int()


class CropTables:
    """Every crop length's resampling matrix, placed so that a gather shifts it to any crop offset.

    `table[flip, length, out, source + in - offset]` holds the weight (scaled by 2^-22, still exact)
    of input pixel `in` for a crop of `length` pixels starting at `offset`; pixels outside the crop
    weigh zero. The flip reverses the output order (PIL flips after resizing; the passes are
    separable, so flipping the horizontal pass's output is the same).
    """

    def __init__(self, source: int, size: int, device: torch.device) -> None:
        low, weights = pil_taps(torch.arange(1, source + 1), size, source)
        position = (low[..., None] + torch.arange(weights.shape[2])).clamp(max=source - 1)
        matrices = torch.zeros(source, size, source, dtype=torch.float64).scatter_add_(2, position, weights.double())
        table = torch.zeros(2, source + 1, size, 2 * source, dtype=torch.float64)
        table[0, 1:, :, source:] = matrices * 2.0 ** -PRECISION_BITS
        table[1, 1:, :, source:] = table[0, 1:, :, source:].flip(1)
        self.source = source
        self.size = size
        self.table = table.to(device)
        self._columns = torch.arange(source, device=device)

    def matrices(self, offset: torch.Tensor, length: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """(n, size, source) float64: each view's resampling matrix over the whole source axis."""
        shift = self.source + self._columns - offset[:, None]
        return self.table[flip, length].gather(2, shift[:, None, :].expand(-1, self.size, -1))


def _pass(matrices: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """One of PIL's passes: the weighted sums plus one half, floored and clipped to uint8 values.
    Every weight is a multiple of 2^-22 and every sum below 2^10, so float64 holds them exactly."""
    half = torch.full((), 0.5, dtype=torch.float64, device=pixels.device)
    return torch.floor(torch.baddbmm(half, matrices, pixels)).clamp_(0.0, 255.0)


def resized_crop(images: torch.Tensor, tables: CropTables, crop: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """uint8 (n, S, S, 3) sources -> uint8 (n, S, S, 3) views, S = `tables.size`.

    `crop` is (n, 4) int64 top, left, height, width; `flip` (n,) int64 in {0, 1}. The horizontal
    pass works on rows of channel planes (n, H * 3, W), the vertical one on columns of them.
    """
    n, height, width, channels = images.shape
    size = tables.size
    top, left, crop_h, crop_w = crop.unbind(1)
    planes = images.permute(0, 1, 3, 2).contiguous().view(n, height * channels, width).double()
    across = _pass(planes, tables.matrices(left, crop_w, flip).transpose(1, 2))
    down = _pass(tables.matrices(top, crop_h, torch.zeros_like(flip)), across.view(n, height, channels * size))
    return down.to(torch.uint8).view(n, size, channels, size).permute(0, 1, 3, 2).contiguous()
