"""SDCLR (Jiang et al., ICML 2021): the network against its own magnitude-pruned twin."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bcl_dali.errors import UserError
from bcl_dali.methods.base import Autocast, BatchShare
from bcl_dali.methods.simclr import ContrastiveSettings, SimCLRMethod
from bcl_dali.models import SDCLR


@dataclass(frozen=True)
class SDCLRSettings(ContrastiveSettings):
    prune_ratio: float = 0.9
    """The share of each layer's weights the twin prunes, by magnitude."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.prune_ratio < 1.0:
            raise UserError("SDCLR needs --prune-ratio in (0, 1) (0 makes the pruned twin identical to the dense "
                            "network)")


class SDCLRMethod(SimCLRMethod):
    name = "sdclr"
    weight_decay = 1e-4
    summary = "ResNet with a pruned twin (dual BatchNorm), SimCLR's augmentation"
    Settings = SDCLRSettings

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        return SDCLR(arch, width, stem)

    def gradients(self, network: nn.Module, views: torch.Tensor, share: BatchShare, autocast: Autocast) -> torch.Tensor:
        """SDCLR's two losses: the dense view 1 against the (fixed) pruned view 2, and the pruned twin
        against the (fixed) dense view 1, both branches in one forward, one backward (see models.SDCLR)."""
        view1, view2 = views.chunk(2)
        with autocast():
            z1, z2 = network(view1, view2)
        loss = self.loss(z1, z2.detach(), share)
        (share.mean(loss) + share.mean(self.loss(z1.detach(), z2, share))).backward()
        return loss.detach()

    def start_epoch(self, model: nn.Module) -> None:
        """The reference re-prunes from the current weights at every epoch start."""
        model.prune(self.settings.prune_ratio)
