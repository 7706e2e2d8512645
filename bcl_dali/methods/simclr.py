"""SimCLR (Chen et al., ICML 2020): one network, both views in one forward, NT-Xent."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bcl_dali.errors import UserError
from bcl_dali.methods.base import Autocast, BatchShare, Method
from bcl_dali.methods.ntxent import nt_xent_per_sample
from bcl_dali.models import SimCLR


@dataclass(frozen=True)
class ContrastiveSettings:
    temperature: float = 0.2
    """NT-Xent's temperature."""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise UserError("--temperature must be positive")


class SimCLRMethod(Method):
    name = "simclr"
    weight_decay = 5e-4
    summary = "ResNet + projector, SimCLR's augmentation"
    Settings = ContrastiveSettings

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        return SimCLR(arch, width, stem)

    def loss(self, z1: torch.Tensor, z2: torch.Tensor, share: BatchShare) -> torch.Tensor:
        """Each local pair's NT-Xent loss, every other projection of the global batch a negative."""
        return nt_xent_per_sample(z1, z2, self.settings.temperature, share.world, share.shard, share.batch)

    def gradients(self, network: nn.Module, views: torch.Tensor, share: BatchShare, autocast: Autocast) -> torch.Tensor:
        """One forward over both views (BatchNorm sees the 2B images together, as in the reference)."""
        with autocast():
            z1, z2 = network(views).chunk(2)
        loss = self.loss(z1, z2, share)
        share.mean(loss).backward()
        return loss.detach()
