"""The input normalisation every model of the project expects (ImageNet mean and std, as the
reference's first model layer). Executors apply it as their last op; evaluation applies it to
un-augmented images."""
from __future__ import annotations

import torch

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalize_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images -> normalised float32 NCHW tensor in channels_last memory (no copy of layout)."""
    x = images.permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)
