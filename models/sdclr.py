"""SDCLR's model: one network run as two branches, a dense one and a magnitude-pruned one.

Jiang et al., "Self-Damaging Contrastive Learning", ICML 2021. Pruning damages what the network
memorised least, which tends to be the long tail; contrasting the dense branch with its pruned
twin makes the loss high exactly on the samples the pruning forgot. The branches share every
conv and linear weight; each conv carries a prune mask, and each BatchNorm exists twice because
the pruned branch's activation statistics differ from the dense one's.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from functools import partial
from typing import Iterable, Iterator

import torch
import torch.nn as nn

from bcl_dali.models.heads import ProjectionHead
from bcl_dali.models.resnet import resnet


class MaskedConv2d(nn.Conv2d):
    """A conv that uses `weight * mask` in the pruned branch and the plain weight in the dense one.

    Gradients of the pruned branch flow through the product into the shared weight (zero where
    the mask is 0). The mask is a buffer, so it is saved in the state_dict and follows `.to()`,
    memory format included, which keeps `weight * mask` channels_last.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("mask", torch.ones_like(self.weight))
        self.use_pruned = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight * self.mask if self.use_pruned else self.weight
        return self._conv_forward(x, weight, self.bias)


class DualBatchNorm(nn.Module):
    """Two independent BatchNorms (`dense`, `pruned`): parameters and running statistics per branch."""

    def __init__(self, norm: type[nn.BatchNorm1d] | type[nn.BatchNorm2d], num_features: int) -> None:
        super().__init__()
        self.dense = norm(num_features)
        self.pruned = norm(num_features)
        self.use_pruned = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.pruned if self.use_pruned else self.dense)(x)


@torch.no_grad()
def prune_by_magnitude(convs: Iterable[MaskedConv2d], ratio: float) -> None:
    """Global unstructured magnitude pruning with the reference's rule.

    Over the N weights of all `convs` together: threshold = sort(|w|)[min(ceil(ratio * N), N - 1)],
    mask = |w| >= threshold, so ratio 0.9 keeps the largest ~10% (more where magnitudes tie).
    The threshold stays on the device (no host sync); a full sort rather than kthvalue because
    kthvalue on CUDA refuses `torch.use_deterministic_algorithms(True)` in some torch versions.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"prune ratio must lie in [0, 1], got {ratio}")
    convs = list(convs)
    magnitudes = torch.cat([conv.weight.detach().abs().flatten() for conv in convs])
    count = magnitudes.numel()
    threshold = magnitudes.sort().values[min(math.ceil(ratio * count), count - 1)]
    for conv in convs:
        conv.mask.copy_(conv.weight.abs() >= threshold)


class SDCLR(nn.Module):
    """SimCLR's architecture with a pruned twin branch; the model of SDCLR and BCL-D.

    The dense branch is active by default. `branch(pruned=True)` (a context manager) or
    `set_pruned(True)` switch every masked conv and dual BN to the pruned branch. `prune(ratio)`
    recomputes the masks from the current weights (the reference does it at every epoch start).
    `features` always uses the dense branch: evaluation probes the dense network.

    One training step as in the reference::

        with torch.no_grad(), model.branch(pruned=True):
            z2 = model(view2)
        z1 = model(view1)
        loss(z1, z2).backward()
        with model.branch(pruned=True):
            z2 = model(view2)
        loss(z1.detach(), z2).backward()
        optimizer.step()

    `model(view1, view2)` runs both branches in one call, dense on view1 and pruned on view2: the
    same gradients from one backward of loss(z1, z2.detach()) + loss(z1.detach(), z2), because no
    weight changes between the reference's passes (only the pruned branch's running statistics,
    which evaluation never reads, are updated once rather than twice). Under DDP one call that uses
    every parameter is what lets the gradients be reduced once, with no search for unused ones.
    """

    def __init__(self, arch: str = "resnet18", width: int = 64, stem: str = "cifar") -> None:
        super().__init__()
        self.backbone = resnet(arch, width, conv=MaskedConv2d, norm=partial(DualBatchNorm, nn.BatchNorm2d), stem=stem)
        self.projector = ProjectionHead(self.backbone.feature_dim, norm=partial(DualBatchNorm, nn.BatchNorm1d))
        self.use_pruned = False

    def forward(self, x: torch.Tensor, twin: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """(B, 128) projections from the active branch; with `twin`, the dense branch's of `x` and the
        pruned branch's of `twin`."""
        if twin is None:
            return self.projector(self.backbone(x))
        with self.branch(pruned=False):
            dense = self.projector(self.backbone(x))
        with self.branch(pruned=True):
            return dense, self.projector(self.backbone(twin))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) dense-branch backbone features, whichever branch is active."""
        with self.branch(pruned=False):
            return self.backbone(x)

    def set_pruned(self, pruned: bool) -> None:
        """Make the pruned (True) or the dense (False) branch the active one."""
        self.use_pruned = pruned
        for module in self.modules():
            if isinstance(module, (MaskedConv2d, DualBatchNorm)):
                module.use_pruned = pruned

    @contextmanager
    def branch(self, pruned: bool) -> Iterator[None]:
        """Run the enclosed forwards in one branch, then restore the branch that was active."""
        previous = self.use_pruned
        self.set_pruned(pruned)
        try:
            yield
        finally:
            self.set_pruned(previous)

    def prune(self, ratio: float) -> None:
        """Recompute every conv mask from the current weights (see `prune_by_magnitude`)."""
        prune_by_magnitude((m for m in self.backbone.modules() if isinstance(m, MaskedConv2d)), ratio)
