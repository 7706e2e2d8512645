"""The training loop. One step reads top to bottom: batch, views, forward, per-sample loss,
backward, momentum update, optimiser step; no host synchronisation inside. The method (its model,
gradient step and epoch hook) comes from bcl_dali.methods. Under torchrun every rank draws the same
epoch plan from the same seed and global weights, augments its share of every global batch, and
trains one DDP replica; negatives, BatchNorm statistics and the momentum loss are global."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

from bcl_dali.runs.checkpoint import restore_rng_state, rng_state
from bcl_dali.config import TrainConfig
from bcl_dali.data import LongTailedData
from bcl_dali.data.files import FileRecords
from bcl_dali.device import autocast, uses_bf16
from bcl_dali.distributed import World
from bcl_dali.errors import UserError
from bcl_dali.train.memorization import MemorizationStatistics
from bcl_dali.train.meter import RunningMean
from bcl_dali.methods import METHODS, BatchShare
from bcl_dali.train.momentum import MomentumLoss
from bcl_dali.train.optimizers import build_optimizer, scaled_lr
from bcl_dali.train.schedule import lr_at
from bcl_dali.train.planner import EpochPlanner
from bcl_dali.train.step_graph import GraphedStep
from bcl_dali.train.sync_batchnorm import synchronise_batchnorm
from bcl_dali.pipelines.plan import EpochPlan


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
    memorization: dict[str, Any]
    """bcl_dali.train.memorization's statistics of the weights that augmented this epoch; none in the first."""

    def as_dict(self) -> dict[str, Any]:
        record = dict(vars(self))
        return record | record.pop("memorization")


class Trainer:
    """Owns the state of one run: model, optimiser, momentum loss, sampler RNG, step counter."""

    def __init__(self, config: TrainConfig, data: LongTailedData, device: torch.device, executor: Executor,
                 world: World = World()) -> None:
        check_batches(len(data.train.labels), config.batch_size, world, config.sync_bn)
        self.config = config
        self.data = data
        self.device = device
        self.executor = executor
        self.world = world
        self.method = METHODS[config.method](config.method_settings())
        self.bf16 = uses_bf16(config.precision, device)
        torch.manual_seed(config.seed)
        model = self.method.build_model(config.arch, config.width, config.stem)
        if world.size > 1 and config.sync_bn:
            model = synchronise_batchnorm(model, world, device)
        self.model = model.to(device, memory_format=torch.channels_last)
        network = self.model
        if world.size > 1:
            network = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
        self.network = torch.compile(network) if config.compile else network
        """What the step calls: the model, or its DDP / torch.compile wrapper (same parameters)."""
        self.base_lr = scaled_lr(config.lr, config.lr_scale, config.batch_size)
        self.optimizer = build_optimizer(config.optimizer, self.model, self.base_lr, config.weight_decay, device)
        self.graphed = self._graphed_step() if config.graphs_step else None
        """The step replayed from CUDA graphs (--cuda-graphs step), or None: eager."""
        self.num_samples = len(data.train.labels)
        self.momentum = MomentumLoss(self.num_samples, config.beta, device, world, config.weight_norm)
        self.planner = EpochPlanner(self.momentum, config.boost_policy(), config.batch_size, config.seed)
        self.memorization = MemorizationStatistics(data.train.labels, data.num_classes, device, data.grouping)
        self.steps_per_epoch = math.ceil(self.num_samples / config.batch_size)
        self.method.begin(config.epochs * self.steps_per_epoch, config.batch_size)
        self.epoch = 0
        self.step = 0
        self._known_files: FileRecords | None = None

    @property
    def left_out(self) -> np.ndarray:
        """(N,) bool: training samples this run no longer plans (their files do not decode:
        --on-bad-image skip)."""
        return self.planner.left_out

    def leave_out(self, positions: np.ndarray) -> None:
        self.planner.leave_out(positions)

    def lr(self, step: int) -> float:
        c = self.config
        return lr_at(step, self.base_lr, c.epochs * self.steps_per_epoch, c.warmup_epochs * self.steps_per_epoch)

    def plan_epoch(self) -> tuple[EpochPlan, torch.Tensor]:
        """This epoch's order and augmentation parameters, from the weights of the last epoch
        (returned, on the device)."""
        return self.planner.plan(self.data.train.images)

    def train_epoch(self, on_step: Callable[[RunningMean], None] = lambda loss: None) -> EpochRecord:
        weighted = self.momentum.epochs_done > 0  # before any loss every weight is 0: nothing to describe
        plan, weights = self.plan_epoch()
        self.method.start_epoch(self.model)
        self.model.train()
        mean_loss = RunningMean(self.device)
        start = time.perf_counter()
        batches = self.executor.epoch(plan.shard(self.world.rank, self.world.size))
        for b, (indices, views) in enumerate(batches):
            mean_loss.add(self.train_step(indices, views, plan.batch_length(b)))
            on_step(mean_loss)
        total = self.world.sum(torch.stack([mean_loss.total, mean_loss.total.new_tensor(mean_loss.count)]))
        epoch_loss = float(total[0]) / max(float(total[1]), 1.0)
        seconds = time.perf_counter() - start
        if not math.isfinite(epoch_loss):
            raise UserError(f"the loss became {epoch_loss} in epoch {self.epoch + 1}; the last good checkpoint "
                            "is kept; lower --lr (or use --precision fp32) and --resume or start again")
        self.momentum.end_epoch()
        self.epoch += 1
        return EpochRecord(epoch=self.epoch, loss=epoch_loss, lr=self.lr(self.step - 1), seconds=seconds,
                           samples_per_second=len(plan.order) / seconds,
                           weight_mean=float(weights.mean()), weight_std=float(weights.std(correction=0)),
                           memorization=self.memorization(weights) if weighted else {})

    def train_step(self, indices: torch.Tensor, views: torch.Tensor, batch: int) -> torch.Tensor:
        """One optimiser step on this rank's share of a global batch of `batch` samples (the whole
        batch in one process); returns the local per-sample losses, still on the device (no host sync)."""
        share = BatchShare.of(batch, self.world)
        views = self._model_input(views)
        indices = indices.to(self.device, non_blocking=True)
        if self.graphed is not None:
            loss = self.graphed(self.lr(self.step), indices, views, share)
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr(self.step)
            loss = self._step_work(indices, views, share)
        self.step += 1
        return loss

    def _step_work(self, indices: torch.Tensor, views: torch.Tensor, share: BatchShare) -> torch.Tensor:
        """The step once its learning rate is set: forward, per-sample loss, backward, momentum update,
        optimiser step, the method's after-step hook."""
        self.optimizer.zero_grad(set_to_none=True)
        cache = self.graphed is None
        loss = self.method.gradients(self.network, views, share, lambda: autocast(self.device, self.bf16, cache))
        self.momentum.update(indices, loss)
        self.optimizer.step()
        with torch.no_grad():
            self.method.after_step(self.model)
        return loss

    def _graphed_step(self) -> GraphedStep:
        if self.device.type != "cuda":
            raise UserError(f"--cuda-graphs {self.config.cuda_graphs} needs a GPU; use --device cuda, or "
                            "--cuda-graphs none on the CPU")
        if self.world.size > 1:
            raise UserError(f"--cuda-graphs {self.config.cuda_graphs} graphs a one-process step; under torchrun "
                            "use --cuda-graphs augment or none")
        return GraphedStep(self._step_work, self.optimizer, self.device, lambda: self.momentum.epochs_done > 0)

    def _model_input(self, view: torch.Tensor) -> torch.Tensor:
        """Views on the device in channels_last, in the model's dtype unless bf16 autocast casts them anyway."""
        dtype = view.dtype if self.bf16 else next(self.model.parameters()).dtype
        return view.to(self.device, dtype=dtype, non_blocking=True, memory_format=torch.channels_last)

    @functools.cached_property
    def file_records(self) -> FileRecords | None:
        """An image folder's training files as the run records them (bcl_dali.data.files): each file
        read once when the run starts, and on a resume only where its size or time changed."""
        return self.data.train.images.records(self._known_files)

    @functools.cached_property
    def data_fingerprint(self) -> str:
        """Which training set the momentum state belongs to: a resume must see the same images.
        Hashed once: every epoch's state (kept for Ctrl-C) carries it. Image folders are hashed by
        their files' records, not by their pixels."""
        records = self.file_records
        return self._fingerprint(self.data.train.images.identity() if records is None else records.identity().encode())

    def _fingerprint(self, images: bytes | memoryview) -> str:
        digest = hashlib.sha256(self.data.train_indices.astype(np.int64).tobytes())
        digest.update(self.data.train.labels.astype(np.int64).tobytes())
        digest.update(images)
        return f"{self.data.name}:{self.num_samples}:{digest.hexdigest()[:16]}"

    def _check_same_data(self, state: dict[str, Any]) -> None:
        """Refuse a checkpoint of other data, naming the first file that changed where one did."""
        if state.get("files") is not None:
            self._known_files = FileRecords.from_state(state["files"])
            for cached in ("file_records", "data_fingerprint"):
                self.__dict__.pop(cached, None)
            change = None if self.file_records is None else self._known_files.first_change(self.file_records)
            if change:
                raise UserError(f"cannot resume: {change}; restore the run's data, or start a new run on the data as "
                                "it is now")
        elif state["data"] == self._fingerprint(self.data.train.images.identity()):
            return  # arrays, or files in a checkpoint from before file records: identified by times, which match
        if state["data"] != self.data_fingerprint:
            raise UserError(f"the run was trained on other images ({state['data']}) than --data-dir / --split give now "
                            f"({self.data_fingerprint}); point to the run's data")

    def state_dict(self) -> dict[str, Any]:
        return {
            "data": self.data_fingerprint,
            "config": dataclasses.asdict(self.config),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": _with_float_rates(self.optimizer.state_dict()),
            "momentum": self.momentum.state_dict(),
            "rng": rng_state(self.planner.rng),
            "world_size": self.world.size,
            "files": None if self.file_records is None else self.file_records.as_state(),
            "left_out": np.flatnonzero(self.left_out).tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of this run; refuses one of other data or not from `train`.

        The world size may differ from the checkpoint's: the model and the optimiser are replicated,
        and the momentum state, the plan's RNG and the global batch are the same on every rank."""
        missing = sorted({"data", "model", "optimizer", "momentum", "rng", "epoch", "step"} - set(state))
        if missing:
            raise UserError(f"the checkpoint lacks {missing}: it was not written by this version of `train`")
        self._check_same_data(state)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError):
            raise UserError(f"the checkpoint's weights do not fit a {self.config.method} {self.config.arch} of width "
                            f"{self.config.width} with --optimizer {self.config.optimizer}, as the run's config says; "
                            "the directory mixes two runs") from None
        self.momentum.load_state_dict(state["momentum"])
        self.planner.load_state_dict({"numpy": state["rng"]["numpy"], "left_out": state.get("left_out")})
        restore_rng_state(self.planner.rng, state["rng"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])


def _with_float_rates(state: dict[str, Any]) -> dict[str, Any]:
    """An optimiser state whose learning rates are numbers, as an eager step leaves them (a graphed
    step keeps its rate on the device)."""
    groups = [group | {"lr": float(group["lr"])} for group in state["param_groups"]]
    return state | {"param_groups": groups}


def check_batch_split(batch_size: int, world: World) -> None:
    """Refuse a global batch that does not divide over the processes (before any data is loaded)."""
    if batch_size % world.size:
        raise UserError(f"--batch-size {batch_size} is the global batch and must divide by the {world.size} "
                        f"processes; use a multiple of {world.size}")


def check_batches(samples: int, batch_size: int, world: World, sync_bn: bool = True) -> None:
    """Refuse batches that leave a rank without a share, a batch without negatives, or BatchNorm
    (per process without --sync-bn) with a single image."""
    if samples < 2:
        raise UserError(f"the training split holds {samples} image; contrastive learning needs at least 2, "
                        "give a larger split")
    if batch_size > samples:
        raise UserError(f"--batch-size {batch_size} is larger than the {samples} training images; use at most "
                        f"{samples}")
    check_batch_split(batch_size, world)
    last = samples % batch_size
    if last == 1:
        raise UserError(f"{samples} training images in batches of {batch_size} leave a last batch of one image, "
                        "which has no negatives and no batch statistics; change --batch-size")
    smallest = min(batch_size, last or batch_size) // world.size
    if smallest < 1 or (not sync_bn and world.size > 1 and smallest < 2):
        raise UserError(f"{samples} training images in batches of {batch_size} leave a last batch of {last}, too "
                        f"few for {world.size} processes{'' if sync_bn else ' with per-process BatchNorm'}; "
                        "change --batch-size")
