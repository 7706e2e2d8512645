"""PIL's colour arithmetic on batches of float32 NHWC views holding 8-bit values, step for step.

Grey is PIL's fixed-point L; ImageEnhance (brightness, contrast, saturation, and the RandAugment
Contrast, Color, Brightness, Sharpness) blends in float32 and truncates; the hue adjustment is
torchvision's 8-bit HSV round trip through PIL's rgb2hsv and hsv2rgb. The HSV conversions read
tables that PIL's own float32 / float64 steps fill once (`HsvTables`), so a pixel costs a few
lookups. Each arithmetic step is its own tensor operation, so no fused multiply-add changes a
rounding: the result is PIL's bit for bit.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from bcl_dali.pipelines.pil_arithmetic import constant, divide, lookup

LUMA_WEIGHTS = tuple(w / 65536.0 for w in (19595.0, 38470.0, 7471.0))
"""PIL's RGB -> L is (19595 R + 38470 G + 7471 B + 2^15) >> 16; scaled by 2^-16 the weighted sum is
still exact in float32 (at most 24 significant bits), so L = floor(sum + 1/2)."""
SMOOTH = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))
"""PIL's ImageFilter.SMOOTH kernel; its divisor is 13."""
HSV_ROLES = ((0, 3, 1), (2, 0, 1), (1, 0, 3), (1, 2, 0), (3, 1, 0), (0, 1, 2))
"""hsv2rgb's (r, g, b) for each sector i % 6, as indices into (v, p, q, t)."""
BY_RED, BY_GREEN, BY_BLUE = 0, 65536, 131072
"""Offsets of the hue table's three parts: the first maximal channel is red, green, or blue."""


def luma(x: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 1) grey L of float32 RGB. An elementwise product and a sum, not a matmul: TF32
    matmuls would round the weights, which need 15 significant bits."""
    weighted = x * constant(LUMA_WEIGHTS, torch.float32, x.device)
    return torch.floor(weighted.sum(-1, keepdim=True) + 0.5)


def rounded_mean(grey: torch.Tensor) -> torch.Tensor:
    """(n, 1, 1, 1) float32: int(mean + 0.5) of each view's L (the sum is exact; the mean in float64
    as ImageStat's)."""
    mean = divide(grey.sum(dim=(1, 2, 3)).double(), grey[0].numel())
    return torch.floor(mean + 0.5).float().view(-1, 1, 1, 1)


def blend(x: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's Image.blend(degenerate, image, factor) in float32: D + f (x - D), truncated, clipped."""
    mixed = degenerate + factor.float().view(-1, 1, 1, 1) * (x - degenerate)
    return torch.floor(mixed).clamp_(0.0, 255.0)


def enhance(x: torch.Tensor, factor: torch.Tensor, grey: torch.Tensor, mean: torch.Tensor,
            smooth: torch.Tensor | None = None) -> torch.Tensor:
    """ImageEnhance with factor f; the degenerate image is grey * L + mean * round(mean L)
    (+ smooth * SMOOTH(x)): black for Brightness, L for Color, its mean for Contrast."""
    grey_image = luma(x)
    degenerate = grey_image * grey.float().view(-1, 1, 1, 1) + rounded_mean(grey_image) * mean.float().view(-1, 1, 1, 1)
    if smooth is not None:
        degenerate = degenerate + smoothed(x) * smooth.float().view(-1, 1, 1, 1)
    return blend(x, degenerate, factor)


def smoothed(x: torch.Tensor) -> torch.Tensor:
    """PIL's filter(SMOOTH): the 3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13 rounded half up inside, the
    1-pixel border copied. The integer sum is exact in float32 (cuDNN's TF32 included: pixel values
    and weights have at most 8 significant bits); (2 S + 13) / 26 is never an integer, so its floor
    is exact too."""
    channels = x.shape[-1]
    kernel = constant(((SMOOTH,),) * channels, torch.float32, x.device)
    total = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), kernel, groups=channels).permute(0, 2, 3, 1)
    out = x.clone()
    out[:, 1:-1, 1:-1] = torch.floor(divide(total * 2.0 + 13.0, 26.0))
    return out


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """torchvision's rgb_to_grayscale(num_output_channels=3) on PIL: L in all three channels."""
    return luma(x).expand(-1, -1, -1, 3)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_hue on PIL: RGB -> 8-bit HSV, H += shift (mod 256), -> RGB.

    `shift` (n,) holds int(hue_factor * 255) mod 256.
    """
    tables = hsv_tables(x.device)
    value = x.amax(-1)
    below = value.unsqueeze(-1) - x
    red, green, blue = below.unbind(-1)
    key = torch.where(red == 0, BY_RED + green * 256.0 + blue,
                      torch.where(green == 0, BY_GREEN + red * 256.0 + blue, BY_BLUE + red * 256.0 + green))
    hue = lookup(tables.hue, key.long()) + shift.float().view(-1, 1, 1)
    hue = torch.where(hue >= 256.0, hue - 256.0, hue)
    chroma = below.amax(-1)
    saturation = lookup(tables.saturation, (chroma * 256.0 + value).long())
    weights = (saturation * 256.0 + hue).long()
    value64 = value.double()
    candidates = [value64] + [torch.floor(value64 * lookup(table, weights) + 0.5) for table in tables.pqt]
    roles = tables.roles.index_select(0, hue.long().view(-1)).view(*hue.shape, 3)
    return torch.stack(candidates, -1).gather(-1, roles).float()


class HsvTables:
    """PIL's rgb2hsv and hsv2rgb (Convert.c) for every 8-bit input, with PIL's roundings.

    `hue[part + 256 d1 + d2]`: 8-bit H from the two channels' distances below the maximum (part
    says which channel is maximal first). `saturation[256 chroma + value]`: 8-bit S. `pqt[i][256 S + H]`:
    hsv2rgb's float64 weight w of p, q, t = round(V w). `roles[H]`: which of (V, p, q, t) each of
    r, g, b takes.
    """

    def __init__(self, device: torch.device) -> None:
        self.hue = torch.as_tensor(_hue_table(), device=device)
        self.saturation = torch.as_tensor(_saturation_table(), device=device)
        self.pqt = [torch.as_tensor(w, device=device) for w in _hsv_weights()]
        self.roles = torch.as_tensor(np.array(HSV_ROLES)[_sectors() % 6], device=device)


@functools.lru_cache(maxsize=None)
def hsv_tables(device: torch.device) -> HsvTables:
    return HsvTables(device)


def _hue_table() -> np.ndarray:
    """float32 8-bit hue by (part, d1, d2); the max channel is 0 below itself, chroma = max(d1, d2)."""
    d1, d2 = (a.astype(np.float32) for a in np.divmod(np.arange(65536), 256))
    chroma = np.maximum(d1, d2)
    with np.errstate(divide="ignore", invalid="ignore"):
        first, second = d1 / chroma, d2 / chroma
    by_red = second - first  # bc - gc
    by_green = (2.0 + first.astype(np.float64) - second.astype(np.float64)).astype(np.float32)  # 2 + rc - bc
    by_blue = (4.0 + second.astype(np.float64) - first.astype(np.float64)).astype(np.float32)  # 4 + gc - rc
    parts = []
    for h in (by_red, by_green, by_blue):
        turn = h.astype(np.float64) / 6.0 + 1.0
        h = np.fmod(turn, 1.0).astype(np.float32)
        parts.append(np.where(chroma > 0, np.clip(np.trunc(h.astype(np.float64) * 255.0), 0, 255), 0))
    return np.concatenate(parts).astype(np.float32)


def _saturation_table() -> np.ndarray:
    """float32 8-bit S by 256 chroma + value: int(s * 255.0), s = chroma / value in float32."""
    chroma, value = (a.astype(np.float32) for a in np.divmod(np.arange(65536), 256))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = chroma / value
    us = np.clip(np.trunc(s.astype(np.float64) * 255.0), 0, 255)
    return np.where((chroma > 0) & (chroma <= value), us, 0).astype(np.float32)


def _sectors() -> np.ndarray:
    return np.floor(np.arange(256) * 6.0 / 255.0).astype(np.int64)


def _hsv_weights() -> list[np.ndarray]:
    """hsv2rgb's p = round(v (1 - fs)), q = round(v (1 - fs f)), t = round(v (1 - fs (1 - f))) with
    f = float32(h 6 / 255 - i), fs = float32(s / 255), fs f a float32 product; as float64 weights
    keyed by 256 S + H."""
    s, h = np.divmod(np.arange(65536), 256)
    position = h * 6.0 / 255.0
    f = (position - np.floor(position)).astype(np.float32)
    fs = (s / 255.0).astype(np.float32)
    p = 1.0 - fs.astype(np.float64)
    q = 1.0 - (fs * f).astype(np.float64)
    t = 1.0 - fs.astype(np.float64) * (1.0 - f.astype(np.float64))
    return [p, q, t]
