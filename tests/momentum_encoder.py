"""A test-only momentum-encoder method (BYOL's shape), written against bcl_dali.methods' interface:
what a method beyond NT-Xent needs (its own settings, a target network outside the gradient, a loss
of its own, an update after every optimiser step) fits the interface without touching the trainer."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bcl_dali.errors import UserError
from bcl_dali.methods import Autocast, BatchShare, Method
from bcl_dali.models import SimCLR


@dataclass(frozen=True)
class MomentumEncoderSettings:
    target_momentum: float = 0.99

    def __post_init__(self) -> None:
        if not 0.0 <= self.target_momentum < 1.0:
            raise UserError("--target-momentum must lie in [0, 1)")


class OnlineAndTarget(nn.Module):
    def __init__(self, arch: str, width: int, stem: str) -> None:
        super().__init__()
        self.online = SimCLR(arch, width, stem)
        self.predictor = nn.Linear(128, 128)
        self.target = copy.deepcopy(self.online).requires_grad_(False)

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            targets = self.target(views)
        return self.predictor(self.online(views)), targets

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.online.features(x)


class MomentumEncoderMethod(Method):
    name = "momentum-encoder"
    summary = "online network and predictor against an EMA target (test only)"
    rand_k = 1
    weight_decay = 1e-4
    Settings = MomentumEncoderSettings

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        return OnlineAndTarget(arch, width, stem)

    def gradients(self, network: nn.Module, views: torch.Tensor, share: BatchShare, autocast: Autocast) -> torch.Tensor:
        with autocast():
            predictions, targets = network(views)
        p1, p2 = F.normalize(predictions.float(), dim=1).chunk(2)
        t1, t2 = F.normalize(targets.float(), dim=1).chunk(2)
        loss = (2 - 2 * (p1 * t2).sum(1)) + (2 - 2 * (p2 * t1).sum(1))
        share.mean(loss).backward()
        return loss.detach()

    def after_step(self, model: nn.Module) -> None:
        online, target = list(model.online.parameters()), list(model.target.parameters())
        torch._foreach_mul_(target, self.settings.target_momentum)
        torch._foreach_add_(target, online, alpha=1 - self.settings.target_momentum)
