"""What every method of the paper is made of: a model, a gradient step, an epoch hook, a policy.

Each method is one small subclass of `Method` in a module of this package (solo-learn's pattern);
the trainer, the benchmarks and the command line find it by name in `bcl_dali.methods.METHODS`
and never switch on it. Adding a method is adding one module.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

import torch
from torch import nn

from bcl_dali.distributed import World
from bcl_dali.loss import nt_xent_per_sample
from bcl_dali.policy import BoostPolicy

if TYPE_CHECKING:
    from bcl_dali.config import TrainConfig

Autocast = Callable[[], contextlib.AbstractContextManager]
"""Opens the step's mixed-precision context."""


@dataclass(frozen=True)
class Contrast:
    """How one step's projections meet the rest of the global batch of `batch` samples, of which
    every rank holds at most `shard`."""

    temperature: float
    batch: int
    shard: int
    world: World = World()

    def per_sample(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Each local pair's NT-Xent loss, every other projection of the global batch a negative."""
        return nt_xent_per_sample(z1, z2, self.temperature, self.world, self.shard, self.batch)

    def objective(self, per_sample: torch.Tensor) -> torch.Tensor:
        """This rank's share of the global batch's mean loss: gathered gradients come back summed
        over ranks and DDP averages them, so the shares add up to the mean's gradient."""
        if self.world.size == 1:
            return per_sample.mean()
        return per_sample.sum() * (self.world.size / self.batch)


class Method:
    name: ClassVar[str]
    rand_k: ClassVar[int] = 0
    """Boosted RandAugment slots per view by default; 0 is the plain SimCLR augmentation."""
    weight_decay: ClassVar[float]
    summary: ClassVar[str]
    registered: ClassVar[list[type[Method]]] = []

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Method.registered.append(cls)

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        raise NotImplementedError

    def gradients(self, network: nn.Module, model: nn.Module, views: torch.Tensor, contrast: Contrast,
                  autocast: Autocast) -> torch.Tensor:
        """Forward, loss and backward of one step; returns the per-sample losses (before the optimiser
        step, as the reference takes them) that feed the momentum loss. `network` is what to call
        (DDP or torch.compile around `model`), once per step: DDP reduces the gradients of one
        backward, with every parameter used."""
        raise NotImplementedError

    def start_epoch(self, model: nn.Module, config: TrainConfig) -> None:
        """Work at the start of every epoch, before its first step."""

    def policy(self, config: TrainConfig) -> BoostPolicy:
        return BoostPolicy(config.rand_k, config.rand_strength, crop_scale=(config.crop_scale, 1.0), blur=config.blur)

    def check(self, config: TrainConfig) -> str | None:
        """A one-line error for settings this method cannot train with, else None. Boosted slots
        make a run BCL and none make it a baseline, so --rand-k may not cross that line (the run
        would be recorded under the wrong method)."""
        if (config.rand_k == 0) != (self.rand_k == 0):
            return (f"--method {self.name} with --rand-k {config.rand_k} is another method: boosted RandAugment "
                    "(--rand-k >= 1) is BCL (bcl-i, bcl-d), none is SimCLR or SDCLR; choose that method, or drop --rand-k")
        return None
