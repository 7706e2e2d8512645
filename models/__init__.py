"""Backbones and heads: CIFAR ResNet-18/-50, SimCLR, SDCLR (pruned twin with dual BatchNorm), MoCo v2 and BYOL.

Plain nn.Modules; a user can import any of them into their own training loop.
"""
from __future__ import annotations

from bcl_dali.models.heads import PROJECTION_DIM, ProjectionHead
from bcl_dali.models.momentum import BYOL, MoCo
from bcl_dali.models.resnet import ARCHITECTURES, BasicBlock, Bottleneck, ResNet, resnet
from bcl_dali.models.sdclr import SDCLR, DualBatchNorm, MaskedConv2d, prune_by_magnitude
from bcl_dali.models.simclr import SimCLR


__all__ = [
    "ARCHITECTURES", "BYOL", "MoCo", "PROJECTION_DIM", "SDCLR", "BasicBlock", "Bottleneck", "DualBatchNorm", "MaskedConv2d",
    "ProjectionHead", "ResNet", "SimCLR", "prune_by_magnitude", "resnet",
]
