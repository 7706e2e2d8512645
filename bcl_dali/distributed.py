"""Several processes under torchrun: who this process is, and the few collectives a run needs.

torchrun (one process per GPU, on one node or several: `--nnodes`, c10d rendezvous) sets RANK,
WORLD_SIZE and LOCAL_RANK; without them a run is one process and every helper here is the
identity, so single-process code paths see world size 1. NCCL carries the collectives between
GPUs, gloo between CPU processes.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as differentiable

from bcl_dali.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    """Processes on this node: they share its cores."""

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and the progress bar; the other ranks are quiet."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> World:
        if "WORLD_SIZE" not in os.environ:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)),
                   int(os.environ.get("LOCAL_WORLD_SIZE", 1)))

    def device(self, requested: torch.device) -> torch.device:
        """The device of this rank: its local GPU when the run asks for CUDA."""
        if self.size > 1 and requested.type == "cuda":
            if requested.index not in (None, self.local_rank):
                raise UserError(f"--device {requested} under torchrun: each process takes the GPU of its local rank; "
                                "use --device cuda")
            if self.local_rank >= torch.cuda.device_count():
                raise UserError(f"local rank {self.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                                "give torchrun --nproc-per-node at most the GPU count")
            return torch.device("cuda", self.local_rank)
        return requested

    def start(self, device: torch.device) -> None:
        """Join the process group (once per process); NCCL for GPUs, gloo for CPUs."""
        if self.size > 1 and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's `tensor` (equal shapes) stacked along dim 0, in rank order, with gradients
        flowing back to each rank's own part. torch 2.14 marks this autograd-aware gather deprecated
        in favour of a private API; torch 2.11, which the GPU machines run, has no public successor."""
        if self.size == 1:
            return tensor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.cat(differentiable.all_gather(tensor), dim=0)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over ranks (no gradient), in place; enqueued on the device, no host sync."""
        if self.size > 1:
            dist.all_reduce(tensor)
        return tensor

    def differentiable_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over ranks, with gradients summed back to every rank."""
        if self.size == 1:
            return tensor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return differentiable.all_reduce(tensor)
