"""The networks of the momentum-encoder methods: MoCo v2's query and key encoders with the queue of
past keys, and BYOL's online network, predictor and target network.

Each target is a copy of its online network that no gradient reaches; the method moves it towards
the online weights after every optimiser step (bcl_dali.methods.target). The queue and the target's
update count are buffers, so a checkpoint of the model holds them and a resume continues exactly.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from bcl_dali.models.heads import PROJECTION_DIM
from bcl_dali.models.resnet import resnet

BYOL_HIDDEN = 4096
BYOL_DIM = 256
"""BYOL's projector and predictor: Linear(d, 4096) -> BN -> ReLU -> Linear(4096, 256) (Grill et al., 2020)."""


def mlp(in_dim: int, hidden: int, out_dim: int, norm: bool) -> nn.Sequential:
    """Two linear layers with a ReLU between them (MoCo v2's head), and a BatchNorm before it (BYOL's)."""
    middle = [nn.BatchNorm1d(hidden)] if norm else []
    return nn.Sequential(nn.Linear(in_dim, hidden), *middle, nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))


class Encoder(nn.Module):
    """A backbone and its head, made from the backbone's feature size by `head`."""

    def __init__(self, arch: str, width: int, stem: str, head: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.backbone = resnet(arch, width, stem=stem)
        self.head = head(self.backbone.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class WithTarget(nn.Module):
    """An online encoder and its gradient-free copy, the target, with the count of updates the target
    has had (its momentum schedule's clock)."""

    def __init__(self, online: Encoder) -> None:
        super().__init__()
        self.online = online
        self.target = copy.deepcopy(online).requires_grad_(False)
        self.register_buffer("target_updates", torch.zeros((), dtype=torch.float64))

    def targets(self, views: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.target(views)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) features of the online backbone, what evaluation probes."""
        return self.online.backbone(x)


class MoCo(WithTarget):
    """MoCo v2 (Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020): the query
    encoder with a 2-layer MLP head, the key encoder, and a queue of `queue_size` normalised keys."""

    def __init__(self, arch: str = "resnet18", width: int = 64, stem: str = "cifar", queue_size: int = 4096) -> None:
        super().__init__(Encoder(arch, width, stem, lambda dim: mlp(dim, dim, PROJECTION_DIM, norm=False)))
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, PROJECTION_DIM), dim=1))
        self.register_buffer("queue_end", torch.zeros((), dtype=torch.long))

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (with gradients) and keys (without) of the same views, and the queue as it stands."""
        return self.online(views), self.targets(views), self.queue

    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest keys by `keys` (normalised; no more than the queue holds), on the device."""
        positions = (self.queue_end + torch.arange(len(keys), device=keys.device)) % len(self.queue)
        self.queue.index_copy_(0, positions, keys.to(self.queue.dtype))
        self.queue_end.copy_((self.queue_end + len(keys)) % len(self.queue))


class BYOL(WithTarget):
    """BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020): the online encoder with its
    projector and a predictor on top, the target encoder with its projector."""

    def __init__(self, arch: str = "resnet18", width: int = 64, stem: str = "cifar") -> None:
        super().__init__(Encoder(arch, width, stem, lambda dim: mlp(dim, BYOL_HIDDEN, BYOL_DIM, norm=True)))
        self.predictor = mlp(BYOL_DIM, BYOL_HIDDEN, BYOL_DIM, norm=True)

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The online predictions (with gradients) and the target projections (without) of the same views."""
        return self.predictor(self.online(views)), self.targets(views)
