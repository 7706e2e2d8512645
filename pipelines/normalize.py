"""The input normalisation every model of the project expects (ImageNet mean and std, as the
reference's first model layer). Both executors apply it as their last step, with the same tensor
operations, so their float32 views are equal bit for bit; evaluation applies it to un-augmented
images."""
from __future__ import annotations

import torch

from bcl_dali.pipelines.pil_arithmetic import constant, divide

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalized(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> (x / 255 - mean) / std, computed in float32, as `dtype`, NHWC."""
    x = divide(images.float(), 255.0)
    return x.sub_(constant(MEAN, torch.float32, x.device)).div_(constant(STD, torch.float32, x.device)).to(dtype)


def normalize_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images -> normalised float32 NCHW tensor in channels_last memory (no copy of layout)."""
    return normalized(images).permute(0, 3, 1, 2)
