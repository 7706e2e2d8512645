"""SimCLR (Chen et al., ICML 2020): one network, both views in one forward, NT-Xent."""
from __future__ import annotations

import torch
from torch import nn

from bcl_dali.methods.base import Autocast, Contrast, Method
from models import SimCLR


class SimCLRMethod(Method):
    name = "simclr"
    weight_decay = 5e-4
    summary = "ResNet + projector, SimCLR's augmentation"

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        return SimCLR(arch, width, stem)

    def gradients(self, network: nn.Module, model: nn.Module, views: torch.Tensor, contrast: Contrast,
                  autocast: Autocast) -> torch.Tensor:
        """One forward over both views (BatchNorm sees the 2B images together, as in the reference)."""
        with autocast():
            z1, z2 = network(views).chunk(2)
        loss = contrast.per_sample(z1, z2)
        contrast.objective(loss).backward()
        return loss.detach()
