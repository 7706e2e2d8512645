"""SDCLR (Jiang et al., ICML 2021): the network against its own magnitude-pruned twin."""
from __future__ import annotations

import torch
from torch import nn

from bcl_dali.methods.base import Contrast, Method
from models import SDCLR


class SDCLRMethod(Method):
    name = "sdclr"
    weight_decay = 1e-4
    summary = "ResNet with a pruned twin (dual BatchNorm), SimCLR's augmentation"
    branches_per_step = 2

    def build_model(self, arch: str, width: int) -> nn.Module:
        return SDCLR(arch, width)

    def gradients(self, network: nn.Module, model: nn.Module, views: torch.Tensor, contrast: Contrast,
                  autocast) -> torch.Tensor:
        """SDCLR's two passes: dense view 1 against the (fixed) pruned view 2, then the pruned twin
        against the (fixed) dense view 1; gradients of both accumulate into one optimiser step."""
        view1, view2 = views.chunk(2)
        with torch.no_grad(), model.branch(pruned=True), autocast():
            z2_fixed = network(view2)
        with autocast():
            z1 = network(view1)
        loss = contrast.per_sample(z1, z2_fixed)
        contrast.objective(loss).backward()
        with model.branch(pruned=True), autocast():
            z2 = network(view2)
        contrast.objective(contrast.per_sample(z1.detach(), z2)).backward()
        return loss.detach()

    def start_epoch(self, model: nn.Module, config) -> None:
        """The reference re-prunes from the current weights at every epoch start."""
        model.prune(config.prune_ratio)

    def check(self, config) -> str | None:
        if config.prune_ratio <= 0:
            return "SDCLR needs --prune-ratio > 0 (0 makes the pruned twin identical to the dense network)"
        return None
