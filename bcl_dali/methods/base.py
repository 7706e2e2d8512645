"""What a method is made of: its settings, its model, its loss and gradient step, and its hooks.

Each method is one small subclass of `Method` (solo-learn's pattern), listed by name in
bcl_dali.methods.METHODS; the trainer, the benchmarks and the command line find it there and never
switch on it. A method owns its loss: the trainer hands it the views and where the step's samples
sit in the global batch (`BatchShare`), and takes back the per-sample losses BCL's momentum loss
needs. Its settings are a dataclass whose fields are named as the run's settings (`--temperature`
is `temperature`), checked when they are made.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from bcl_dali.distributed import World

Autocast = Callable[[], contextlib.AbstractContextManager]
"""Opens the step's mixed-precision context."""


@dataclass(frozen=True)
class BatchShare:
    """Where one step's samples sit: a global batch of `batch` samples, of which every rank holds at
    most `shard`."""

    batch: int
    shard: int
    world: World = World()

    @classmethod
    def of(cls, batch: int, world: World = World()) -> BatchShare:
        return cls(batch, -(-batch // world.size), world)

    def mean(self, per_sample: torch.Tensor) -> torch.Tensor:
        """This rank's share of the global batch's mean: gathered gradients come back summed over
        ranks and DDP averages them, so the shares add up to the mean's gradient."""
        if self.world.size == 1:
            return per_sample.mean()
        return per_sample.sum() * (self.world.size / self.batch)


@dataclass(frozen=True)
class NoSettings:
    """A method without settings of its own."""


class Method:
    name: ClassVar[str]
    summary: ClassVar[str]
    base: ClassVar[str | None] = None
    """The method this one presets (bcl-i is simclr with --boost 1); None for a method of its own."""
    boost: ClassVar[int] = 0
    """Boosted RandAugment slots per view by default (--boost); 0 is the plain SimCLR augmentation."""
    weight_decay: ClassVar[float]
    lr: ClassVar[float | None] = None
    """The method's own learning rate at the data set's batch size, where its paper's differs from
    the budget's (bcl_dali.config); None: the budget's."""
    Settings: ClassVar[type] = NoSettings

    def __init__(self, settings: object | None = None) -> None:
        self.settings = self.Settings() if settings is None else settings

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        """The network the method trains; its `features(x)` is the backbone that evaluation probes."""
        raise NotImplementedError

    def gradients(self, network: nn.Module, views: torch.Tensor, share: BatchShare, autocast: Autocast) -> torch.Tensor:
        """Forward, loss and backward of one step on (2B, 3, H, W) views (view 1 of the B samples, then
        view 2); returns the (B,) per-sample losses (before the optimiser step, as the reference takes
        them) that feed the momentum loss. `network` is what to call (DDP or torch.compile around the
        model), once per step: DDP reduces the gradients of one backward, with every parameter used."""
        raise NotImplementedError

    def begin(self, total_steps: int, batch_size: int) -> None:
        """The run's length in optimiser steps and its global batch, before the first step (a momentum
        schedule's horizon; a check of the method's settings against the batch)."""

    def start_epoch(self, model: nn.Module) -> None:
        """Work at the start of every epoch, before its first step."""

    def after_step(self, model: nn.Module) -> None:
        """Work after every optimiser step (a momentum encoder's update), under torch.no_grad(); device
        work only, no host synchronisation, so a CUDA-graphed step can hold it."""
