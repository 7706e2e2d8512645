"""SimCLR's model: a backbone and a projection head.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020.
The contrastive loss sees the projections; evaluation drops the head and uses the features.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from bcl_dali.models.heads import ProjectionHead
from bcl_dali.models.resnet import resnet


class SimCLR(nn.Module):
    """ResNet backbone (CIFAR or ImageNet stem) + the reference's projector; the model of SimCLR and BCL-I."""

    def __init__(self, arch: str = "resnet18", width: int = 64, stem: str = "cifar") -> None:
        super().__init__()
        self.backbone = resnet(arch, width, stem=stem)
        self.projector = ProjectionHead(self.backbone.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 128) projections, the input of the contrastive loss."""
        return self.projector(self.backbone(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) backbone features, what the linear probe sees."""
        return self.backbone(x)
