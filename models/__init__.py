"""Backbones and heads: CIFAR ResNet-18/-50, SimCLR, and SDCLR (pruned twin with dual BatchNorm).

Plain nn.Modules; a user can import any of them into their own training loop.
"""
from __future__ import annotations

from models.heads import PROJECTION_DIM, ProjectionHead
from models.resnet import ARCHITECTURES, BasicBlock, Bottleneck, ResNet, resnet
from models.sdclr import SDCLR, DualBatchNorm, MaskedConv2d, prune_by_magnitude
from models.simclr import SimCLR

FAMILIES: dict[str, type[SimCLR] | type[SDCLR]] = {"simclr": SimCLR, "sdclr": SDCLR}
"""SimCLR serves the methods SimCLR and BCL-I; SDCLR serves SDCLR and BCL-D."""


def build_model(family: str, arch: str, width: int) -> SimCLR | SDCLR:
    """The model of a method family ("simclr" or "sdclr") on a named backbone at base width `width`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[family](arch, width)


__all__ = [
    "ARCHITECTURES", "FAMILIES", "PROJECTION_DIM", "SDCLR", "BasicBlock", "Bottleneck", "DualBatchNorm",
    "MaskedConv2d", "ProjectionHead", "ResNet", "SimCLR", "build_model", "prune_by_magnitude", "resnet",
]
