"""SDCLR (Jiang et al., ICML 2021): the network against its own magnitude-pruned twin."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from bcl_dali.methods.base import Autocast, Contrast, Method
from models import SDCLR

if TYPE_CHECKING:
    from bcl_dali.config import TrainConfig


class SDCLRMethod(Method):
    name = "sdclr"
    weight_decay = 1e-4
    summary = "ResNet with a pruned twin (dual BatchNorm), SimCLR's augmentation"

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        return SDCLR(arch, width, stem)

    def gradients(self, network: nn.Module, model: nn.Module, views: torch.Tensor, contrast: Contrast,
                  autocast: Autocast) -> torch.Tensor:
        """SDCLR's two losses: the dense view 1 against the (fixed) pruned view 2, and the pruned twin
        against the (fixed) dense view 1, both branches in one forward, one backward (see models.SDCLR)."""
        view1, view2 = views.chunk(2)
        with autocast():
            z1, z2 = network(view1, view2)
        loss = contrast.per_sample(z1, z2.detach())
        (contrast.objective(loss) + contrast.objective(contrast.per_sample(z1.detach(), z2))).backward()
        return loss.detach()

    def start_epoch(self, model: nn.Module, config: TrainConfig) -> None:
        """The reference re-prunes from the current weights at every epoch start."""
        model.prune(config.prune_ratio)

    def check(self, config: TrainConfig) -> str | None:
        if config.prune_ratio <= 0:
            return "SDCLR needs --prune-ratio > 0 (0 makes the pruned twin identical to the dense network)"
        return super().check(config)
