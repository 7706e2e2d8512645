"""The training loop. One step reads top to bottom: batch, views, forward, per-sample loss,
momentum update, backward, optimiser step; no callbacks, no host synchronisation inside."""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

from bcl_dali.checkpoint import restore_rng_state, rng_state
from bcl_dali.config import TrainConfig
from bcl_dali.data import LongTailedData
from bcl_dali.device import uses_bf16
from bcl_dali.errors import UserError
from bcl_dali.meter import RunningMean
from bcl_dali.momentum import MomentumLoss
from bcl_dali.policy import BoostPolicy
from bcl_dali.schedule import lr_at
from bcl_dali.steps import GRADIENTS
from models import build_model
from pipelines.plan import EpochPlan

SGD_MOMENTUM = 0.9
MIN_CPU_WIDTH = 16
"""PyTorch's CPU channels_last convolution backward (oneDNN, seen with torch 2.14) corrupts memory
for 1x1 stride-2 convolutions with fewer than 16 input channels at some batch sizes."""


class Executor(Protocol):
    """Turns an epoch plan into batches of (sample indices, views): view 1 of the B samples, then view 2."""

    def epoch(self, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    lr: float
    seconds: float
    samples_per_second: float
    weight_mean: float
    weight_std: float

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class Trainer:
    """Owns the state of one run: model, optimiser, momentum loss, sampler RNG, step counter."""

    def __init__(self, config: TrainConfig, data: LongTailedData, device: torch.device, executor: Executor) -> None:
        if device.type == "cpu" and config.width < MIN_CPU_WIDTH:
            raise UserError(f"--width {config.width} is too narrow for PyTorch's CPU channels_last convolutions "
                            f"(they crash below {MIN_CPU_WIDTH} channels); use --width {MIN_CPU_WIDTH} or more")
        if len(data.train.labels) % config.batch_size == 1:
            raise UserError(f"{len(data.train.labels)} training images in batches of {config.batch_size} leave a last "
                            "batch of one image, which has no negatives and no batch statistics; change --batch-size")
        self.config = config
        self.data = data
        self.device = device
        self.executor = executor
        self.bf16 = uses_bf16(config.precision, device)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.model = build_model(config.family, config.arch, config.width).to(
            device, memory_format=torch.channels_last)
        self.network = torch.compile(self.model) if config.compile else self.model
        """What the step calls: the model, or its torch.compile'd wrapper (same parameters)."""
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=SGD_MOMENTUM,
                                         weight_decay=config.weight_decay,
                                         fused=True if device.type == "cuda" else None)
        self.num_samples = len(data.train.labels)
        self.momentum = MomentumLoss(self.num_samples, config.beta, device)
        self.policy = BoostPolicy(config.rand_k, config.rand_strength)
        self.gradients = GRADIENTS[config.family]
        self.steps_per_epoch = math.ceil(self.num_samples / config.batch_size)
        self.epoch = 0
        self.step = 0

    @property
    def image_hw(self) -> tuple[int, int]:
        return self.data.train.images.shape[1:3]

    def lr(self, step: int) -> float:
        c = self.config
        return lr_at(step, c.lr, c.epochs * self.steps_per_epoch, c.warmup_epochs * self.steps_per_epoch)

    def plan_epoch(self) -> tuple[EpochPlan, np.ndarray]:
        """This epoch's order and augmentation parameters, from the weights of the last epoch."""
        weights = self.momentum.weights().cpu().numpy()
        order = self.rng.permutation(self.num_samples)
        params = self.policy.sample(weights[order], self.rng, self.image_hw)
        return EpochPlan(order, self.config.batch_size, params), weights

    def train_epoch(self, on_step: Callable[[RunningMean], None] = lambda loss: None) -> EpochRecord:
        plan, weights = self.plan_epoch()
        if self.config.family == "sdclr":
            self.model.prune(self.config.prune_ratio)
        self.model.train()
        mean_loss = RunningMean(self.device)
        start = time.perf_counter()
        for indices, views in self.executor.epoch(plan):
            mean_loss.add(self.train_step(indices, views))
            on_step(mean_loss)
        epoch_loss = mean_loss.read()
        seconds = time.perf_counter() - start
        if not math.isfinite(epoch_loss):
            raise UserError(f"the loss became {epoch_loss} in epoch {self.epoch + 1}; the last good checkpoint "
                            "is kept; lower --lr (or use --precision fp32) and --resume or start again")
        self.momentum.end_epoch()
        self.epoch += 1
        return EpochRecord(epoch=self.epoch, loss=epoch_loss, lr=self.lr(self.step - 1), seconds=seconds,
                           samples_per_second=self.num_samples / seconds,
                           weight_mean=float(weights.mean()), weight_std=float(weights.std()))

    def train_step(self, indices: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        """One optimiser step; returns the per-sample losses, still on the device (no host sync)."""
        views = self._model_input(views)
        indices = indices.to(self.device, non_blocking=True)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.gradients(self.network, views, self.config.temperature, self.bf16)
        self.momentum.update(indices, loss)
        self.optimizer.step()
        self.step += 1
        return loss

    def _model_input(self, view: torch.Tensor) -> torch.Tensor:
        """Views on the device in channels_last; float32 unless bf16 autocast casts them anyway."""
        dtype = view.dtype if self.bf16 else torch.float32
        return view.to(self.device, dtype=dtype, non_blocking=True, memory_format=torch.channels_last)

    def data_fingerprint(self) -> str:
        """Which training set the momentum state belongs to: a resume must see the same images."""
        digest = hashlib.sha256(self.data.train_indices.astype(np.int64).tobytes())
        digest.update(self.data.train.labels.astype(np.int64).tobytes())
        digest.update(self.data.train.images.tobytes())
        return f"{self.data.name}:{self.num_samples}:{digest.hexdigest()[:16]}"

    def state_dict(self) -> dict[str, Any]:
        return {
            "data": self.data_fingerprint(),
            "config": dataclasses.asdict(self.config),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "momentum": self.momentum.state_dict(),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of this run; refuses one of other data or not from `train`."""
        missing = sorted({"data", "model", "optimizer", "momentum", "rng", "epoch", "step"} - set(state))
        if missing:
            raise UserError(f"the checkpoint lacks {missing}: it was not written by this version of `train`")
        if state["data"] != self.data_fingerprint():
            raise UserError(f"the run was trained on other images ({state['data']}) than --data-dir / --split give now "
                            f"({self.data_fingerprint()}); point to the run's data")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.momentum.load_state_dict(state["momentum"])
        restore_rng_state(self.rng, state["rng"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
