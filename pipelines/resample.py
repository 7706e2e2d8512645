"""RandomResizedCrop and the flip as two batched matrix products, bit for bit PIL's bicubic resize.

torchvision crops the PIL image first and resizes the crop, so PIL's resampling sees only the crop:
its coefficients depend on the crop's length along each axis, not on where the crop sits. They are
computed once per length, as PIL computes them (float64 filter weights, normalised, then 22-bit
fixed point), and kept as dense (output x input) matrices. A view's horizontal matrix is the one of
its crop width shifted to the crop's left edge (and reversed for the flip); its vertical matrix
likewise. PIL's two passes (each rounded to uint8) then become two batched float64 products, exact
because every weight is a multiple of 2^-22 and every sum below 2^10: 32 significant bits.

PIL runs the horizontal pass first unless a crop is taller than wide and taller than the output;
a RandomResizedCrop of an image of the output's size is never taller than the output, and that is
the only use (pipelines.dali_executor refuses other sizes), so the horizontal pass always comes first.
"""
from __future__ import annotations

import numpy as np
import torch

PRECISION_BITS = 22
"""PIL's fixed-point precision for 8-bit resampling (32 - 8 - 2)."""
BICUBIC_SUPPORT = 2.0
BICUBIC_A = -0.5


def bicubic(x: np.ndarray) -> np.ndarray:
    """PIL's bicubic filter (Keys, a = -1/2)."""
    x = np.abs(x)
    a = BICUBIC_A
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def fixed_point_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) int64: PIL's fixed-point weights resampling `in_size` pixels to `out_size`.

    PIL's precompute_coeffs: the support widens by the scale when downsampling, each output pixel's
    taps span [centre - support, centre + support] rounded and clipped to the input, the weights are
    normalised to sum 1, then rounded half away from zero to 22 bits.
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = BICUBIC_SUPPORT * filter_scale
    matrix = np.zeros((out_size, in_size), np.int64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), in_size)
        taps = np.arange(low, high)
        weights = bicubic((taps - centre + 0.5) / filter_scale)
        total = weights.sum()
        if total != 0.0:
            weights = weights / total
        scaled = weights * (1 << PRECISION_BITS)
        matrix[out, taps] = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)
    return matrix


class CropTables:
    """Every crop length's resampling matrix, placed so that a gather shifts it to any crop offset.

    `table[flip, length, out, source + in - offset]` holds the weight (scaled by 2^-22, still exact)
    of input pixel `in` for a crop of `length` pixels starting at `offset`; pixels outside the crop
    weigh zero. The flip reverses the output order (PIL flips after resizing; the passes are
    separable, so flipping the horizontal pass's output is the same).
    """

    def __init__(self, source: int, size: int, device: torch.device) -> None:
        table = np.zeros((2, source + 1, size, 2 * source), np.float64)
        for length in range(1, source + 1):
            matrix = fixed_point_matrix(length, size) * 2.0 ** -PRECISION_BITS
            table[0, length, :, source:source + length] = matrix
            table[1, length, :, source:source + length] = matrix[::-1]
        self.source = source
        self.size = size
        self.table = torch.as_tensor(table, device=device)
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
