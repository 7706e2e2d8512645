"""ResNet with either stem: the CIFAR variant used by the reference (a 3x3 stride-1 stem and no
max-pool, so a 32x32 image keeps its resolution through the first stage), or the ImageNet one (7x7
stride 2 and a 3x3 stride-2 max-pool, for the 224-pixel ImageNet-LT and Places-LT recipes).

The conv and norm layers are injected (`conv`, `norm`) so that SDCLR can build the very same
network from masked convs and dual BatchNorms instead of copying it. The model holds no input
normalisation: its inputs arrive normalised (pipelines/normalize.py).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

ConvFactory = Callable[..., nn.Conv2d]
"""Called as nn.Conv2d is: (in_channels, out_channels, kernel_size, stride, padding, bias=False)."""
NormFactory = Callable[[int], nn.Module]
"""Called with the number of channels."""


def _shortcut(in_channels: int, out_channels: int, stride: int, conv: ConvFactory,
              norm: NormFactory) -> nn.Module:
    """Identity where the shape is kept, else a strided 1x1 conv + BN projection."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(conv(in_channels, out_channels, 1, stride, 0, bias=False), norm(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convs; ResNet-18's block."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int, conv: ConvFactory,
                 norm: NormFactory) -> None:
        super().__init__()
        self.conv1 = conv(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = norm(channels)
        self.conv2 = conv(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = norm(channels)
        self.shortcut = _shortcut(in_channels, channels, stride, conv, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand by 4; ResNet-50's block."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, conv: ConvFactory,
                 norm: NormFactory) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = conv(in_channels, channels, 1, 1, 0, bias=False)
        self.bn1 = norm(channels)
        self.conv2 = conv(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = norm(channels)
        self.conv3 = conv(channels, out_channels, 1, 1, 0, bias=False)
        self.bn3 = norm(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride, conv, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x), inplace=True)


Block = type[BasicBlock] | type[Bottleneck]

ARCHITECTURES: dict[str, tuple[Block, tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}
"""Block type and blocks per stage of each supported depth."""


class ResNet(nn.Module):
    """Stem, four stages of widths w, 2w, 4w, 8w (strides 1, 2, 2, 2), global average pool.

    Returns the pooled feature of size `feature_dim` = 8w * block expansion; there is no
    classifier, the heads live elsewhere. The pool is a mean rather than AdaptiveAvgPool2d,
    whose CUDA backward refuses `torch.use_deterministic_algorithms(True)`.
    """

    def __init__(self, block: Block, depths: tuple[int, ...], width: int = 64,
                 conv: ConvFactory = nn.Conv2d, norm: NormFactory = nn.BatchNorm2d, stem: str = "cifar") -> None:
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(conv(3, width, 7, 2, 3, bias=False), norm(width), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = nn.Sequential(conv(3, width, 3, 1, 1, bias=False), norm(width), nn.ReLU(inplace=True))
        stages = []
        in_channels = width
        for index, depth in enumerate(depths):
            channels = width * 2 ** index
            blocks = []
            for position in range(depth):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(block(in_channels, channels, stride, conv, norm))
                in_channels = channels * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.feature_dim = in_channels
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


STEMS = ("cifar", "imagenet")


def resnet(arch: str, width: int = 64, conv: ConvFactory = nn.Conv2d,
           norm: NormFactory = nn.BatchNorm2d, stem: str = "cifar") -> ResNet:
    """A ResNet by name ("resnet18" or "resnet50") and stem ("cifar" or "imagenet"); width 64 is the reference's."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {', '.join(STEMS)}")
    block, depths = ARCHITECTURES[arch]
    return ResNet(block, depths, width, conv, norm, stem)
