"""BCL's boosted augmentation for a training loop of your own: the momentum loss, the policy, the
epoch plan and an executor (DALI or PIL) behind one object.

    boost = BoostedAugmentation(images, batch_size=256, boost=1, device="cuda")
    for epoch in range(epochs):
        for indices, views in boost:              # views: view 1 of the batch's samples, then view 2
            losses = per_sample_loss(model(views))  # one loss per sample, shape (B,)
            losses.mean().backward(); optimizer.step(); optimizer.zero_grad()
            boost.update(indices, losses)         # the momentum loss that weighs the next epoch's ops

The epochs are those `train` draws from the same seed and losses (both plan through
bcl_dali.train.planner). Under torchrun each process gets its share of every global batch, and
`update` folds every process's losses into every process's state.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import torch

from bcl_dali.data.adapt import image_source
from bcl_dali.distributed import World
from bcl_dali.pipelines.ops import MAX_MAGNITUDE
from bcl_dali.policy import CROP_SCALE, BoostPolicy
from bcl_dali.train.momentum import MomentumLoss
from bcl_dali.train.executors import default_workers, make_executor
from bcl_dali.train.planner import EpochPlanner
from bcl_dali.train.trainer import check_batches

EXECUTORS = ("dali", "pil")


class BoostedAugmentation:
    """Iterate it once per epoch for (indices, views); give it each step's per-sample losses.

    `images`: anything bcl_dali.data.adapt.image_source takes (an array, a torchvision-style dataset,
    an image source). `batch_size`: the global batch. `boost`: boosted RandAugment ops per view (0:
    SimCLR's augmentation; 1: BCL-I; 2: BCL-D). `weight_norm`: how the momentum loss becomes weights,
    "paper" or "rank" (bcl_dali.policy.WEIGHT_NORMS). `image_size`: the views' side for images read from
    files (in-memory images keep their own side). `executor`: "dali" (the fused graph, on `device`) or
    "pil" (the reference's PIL transforms in `workers` processes). Views come normalised, channels_last,
    in `dtype` (DALI; PIL gives float32), valid until the work queued on the current stream before the
    next batch is asked for has run (clone them to keep them longer)."""

    def __init__(self, images: object, *, batch_size: int, boost: int = 1, strength: float = MAX_MAGNITUDE,
                 beta: float = 0.97, weight_norm: str = "paper", device: str | torch.device | None = None,
                 executor: str = "dali",
                 image_size: int = 224, crop_scale: float = CROP_SCALE[0], blur: bool = False, seed: int = 0,
                 workers: int | None = None, dtype: torch.dtype = torch.float32) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        self.images = image_source(images)
        self.world = _world()
        check_batches(len(self.images), batch_size, self.world)
        requested = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
        self.device = self.world.device(requested)
        self.momentum = MomentumLoss(len(self.images), beta, self.device, self.world, weight_norm)
        policy = BoostPolicy(boost, strength, crop_scale=(crop_scale, 1.0), blur=blur)
        self.planner = EpochPlanner(self.momentum, policy, batch_size, seed)
        self.executor = make_executor("reference" if executor == "pil" else "dali", self.images,
                                      size=self.images.view_size(image_size), boost=boost,
                                      batch_size=batch_size // self.world.size, device=self.device,
                                      workers=default_workers(self.world) if workers is None else workers,
                                      dtype=dtype, blur=blur)

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-int((~self.planner.left_out).sum()) // self.planner.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch: its plan drawn from the weights of the losses given so far, its batches of int64
        sample indices (positions in `images`) and (2B, 3, S, S) views; the epoch counts as done when
        the last batch has been taken."""
        plan, _ = self.planner.plan(self.images)
        for indices, views in self.executor.epoch(plan.shard(self.world.rank, self.world.size)):
            yield indices, views.to(self.device, non_blocking=True, memory_format=torch.channels_last)
        self.momentum.end_epoch()

    def update(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        """Fold a step's per-sample losses (detached here) into the momentum loss; no host sync."""
        self.momentum.update(indices.to(self.device, non_blocking=True), losses.to(self.device))

    @property
    def weights(self) -> torch.Tensor:
        """(N,) each sample's weight in [0, 1], as the next epoch will draw its ops from."""
        return self.momentum.weights()

    @property
    def epochs_done(self) -> int:
        return self.momentum.epochs_done

    def state_dict(self) -> dict[str, Any]:
        """The momentum state and the plan's random stream, for the user's own checkpoints."""
        return {"momentum": self.momentum.state_dict(), "planner": self.planner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.momentum.load_state_dict(state["momentum"])
        self.planner.load_state_dict(state["planner"])


def _world() -> World:
    """This process's place in the process group the user started (torchrun, or init_process_group
    in any other way); one process without one."""
    if torch.distributed.is_initialized():
        environment = World.from_environment()
        return World(torch.distributed.get_rank(), torch.distributed.get_world_size(), environment.local_rank,
                     environment.local_size)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("WORLD_SIZE says several processes but no process group is initialised; call "
                         "torch.distributed.init_process_group() before making BoostedAugmentation")
    return World()
