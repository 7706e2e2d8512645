"""BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020): an online network with a predictor
regresses the projections of a target network, an exponential moving average of itself; no negatives.

Per-sample loss, as the paper's symmetrised loss: sample i's loss is
(2 - 2 cos(p1_i, z2_i)) + (2 - 2 cos(p2_i, z1_i)), with p the online predictions and z the target
projections of the two views (the squared distance of the normalised vectors, each direction once).
It is computed from the sample's own views only, so under several processes each rank computes
its own samples' losses; BatchNorm is SyncBN there, as BYOL's own training uses.

Defaults: the paper's projector and predictor (4,096 hidden units, 256 outputs) and its cosine
schedule of the target's momentum up to 1; for CIFAR-scale runs the schedule starts at 0.99 and
the weight decay is 1e-5, as solo-learn's CIFAR recipe (scripts/pretrain/cifar/byol.yaml) has
them (the paper's ImageNet values are 0.996 and 1.5e-6). The learning rate is the data set's budget's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bcl_dali.errors import UserError
from bcl_dali.methods.base import Autocast, BatchShare, Method
from bcl_dali.methods.target import follow
from bcl_dali.models import BYOL


@dataclass(frozen=True)
class BYOLSettings:
    target_momentum: float = 0.99
    """The target's momentum at the first step; a cosine schedule takes it to 1 at the last."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.target_momentum < 1.0:
            raise UserError("--target-momentum must lie in [0, 1)")


def byol_per_sample(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) loss of each sample from its (2B, D) predictions and target projections (view 1 of the
    B samples, then view 2); computed in fp32, or fp64 for fp64 inputs."""
    dtype = torch.promote_types(predictions.dtype, torch.float32)
    p1, p2 = F.normalize(predictions.to(dtype), dim=1).chunk(2)
    z1, z2 = F.normalize(targets.to(dtype), dim=1).chunk(2)
    return (2 - 2 * (p1 * z2).sum(1)) + (2 - 2 * (p2 * z1).sum(1))


class BYOLMethod(Method):
    name = "byol"
    summary = "BYOL: online network and predictor against an EMA target, no negatives"
    weight_decay = 1e-5
    Settings = BYOLSettings

    def __init__(self, settings: BYOLSettings | None = None) -> None:
        super().__init__(settings)
        self._total_steps = 1

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        return BYOL(arch, width, stem)

    def begin(self, total_steps: int, batch_size: int) -> None:
        self._total_steps = max(total_steps, 1)

    def gradients(self, network: nn.Module, views: torch.Tensor, share: BatchShare, autocast: Autocast) -> torch.Tensor:
        with autocast():
            predictions, targets = network(views)
        loss = byol_per_sample(predictions, targets)
        share.mean(loss).backward()
        return loss.detach()

    def after_step(self, model: nn.Module) -> None:
        follow(model, self.settings.target_momentum, self._total_steps)
