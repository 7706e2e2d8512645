"""MoCo v2 (Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive Learning", 2020;
He et al., CVPR 2020): a query encoder trained against a momentum key encoder, with a queue of
past keys as the negatives.

Per-sample loss, symmetric as in the authors' CIFAR-10 demonstration (facebookresearch/moco,
colab/moco_cifar10_demo.ipynb, whose loss is loss_12 + loss_21): sample i's loss is
InfoNCE(q1_i, k2_i) + InfoNCE(q2_i, k1_i), where InfoNCE(q, k) = -log exp(q.k / T) / (exp(q.k / T)
+ sum_n exp(q.n / T)) over the queue's keys n, every vector normalised. This sum is what feeds
BCL's momentum loss, and its batch mean is what the step minimises.
After the step the keys of both views of the whole global batch enter the queue (gathered from
every rank in rank order, so every rank holds the same queue) and the key encoder moves towards
the query encoder with a constant momentum. MoCo's shuffled BatchNorm is replaced by SyncBN under
several processes, as the issue that brought MoCo here asked; in one process BatchNorm sees the
whole batch. Neither blocks what shuffling BN blocks (a query and its key normalised with the same
batch's statistics, while the queue's keys carry older batches'); the demonstration's authors
measured its absence at about 4 points of kNN accuracy after 800 epochs on CIFAR-10.

CIFAR-scale defaults, from the CIFAR-10 demonstration: a queue of 4,096 keys, momentum 0.99, lr
0.06 at a batch of 512, weight decay 5e-4; the temperature is MoCo v2's 0.2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bcl_dali.errors import UserError
from bcl_dali.methods.base import Autocast, BatchShare, Method
from bcl_dali.methods.simclr import ContrastiveSettings
from bcl_dali.methods.target import follow
from bcl_dali.models import MoCo
from bcl_dali.pipelines.plan import share as plan_share


@dataclass(frozen=True)
class MoCoSettings(ContrastiveSettings):
    queue_size: int = 4096
    """Keys kept as negatives."""
    target_momentum: float = 0.99
    """The key encoder's momentum."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.queue_size < 1:
            raise UserError("--queue-size must be at least 1")
        if not 0.0 <= self.target_momentum < 1.0:
            raise UserError("--target-momentum must lie in [0, 1)")


def info_nce_per_sample(queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """(B,) -log softmax of each query's positive (its own key) among [positive, the queue's keys];
    every input normalised; computed in fp32, or fp64 for fp64 inputs."""
    positive = (queries * keys).sum(1, keepdim=True)
    logits = torch.cat([positive, queries @ queue.to(queries.dtype).T], dim=1) / temperature
    return torch.logsumexp(logits, dim=1) - logits[:, 0]


def global_rows(rows: torch.Tensor, share: BatchShare) -> torch.Tensor:
    """The global batch's rows, every rank's share in rank order (each rank holds `rows` of its own)."""
    world = share.world
    if world.size == 1:
        return rows
    padded = torch.cat([rows, rows.new_zeros(share.shard - len(rows), *rows.shape[1:])])
    gathered = world.gather(padded).view(world.size, share.shard, *rows.shape[1:])
    shares = [plan_share(r, world.size, share.batch) for r in range(world.size)]
    return torch.cat([gathered[r, :s.stop - s.start] for r, s in enumerate(shares)])


class MoCoMethod(Method):
    name = "moco"
    summary = "MoCo v2: query encoder against a momentum key encoder, a queue of negatives"
    weight_decay = 5e-4
    lr = 0.06
    Settings = MoCoSettings

    def __init__(self, settings: MoCoSettings | None = None) -> None:
        super().__init__(settings)
        self._keys: torch.Tensor | None = None
        """The step's keys, queued after the optimiser step (the loss still reads the queue until then)."""

    def build_model(self, arch: str, width: int, stem: str = "cifar") -> nn.Module:
        return MoCo(arch, width, stem, self.settings.queue_size)

    def begin(self, total_steps: int, batch_size: int) -> None:
        if self.settings.queue_size < 2 * batch_size:
            raise UserError(f"--queue-size {self.settings.queue_size} holds less than one step's keys (2 x --batch-size "
                            f"{batch_size}); use at least {2 * batch_size}")

    def gradients(self, network: nn.Module, views: torch.Tensor, share: BatchShare, autocast: Autocast) -> torch.Tensor:
        with autocast():
            queries, keys, queue = network(views)
        dtype = torch.promote_types(queries.dtype, torch.float32)
        q1, q2 = F.normalize(queries.to(dtype), dim=1).chunk(2)
        k1, k2 = F.normalize(keys.to(dtype), dim=1).chunk(2)
        t = self.settings.temperature
        loss = info_nce_per_sample(q1, k2, queue, t) + info_nce_per_sample(q2, k1, queue, t)
        share.mean(loss).backward()
        self._keys = torch.cat([global_rows(k1, share), global_rows(k2, share)])
        return loss.detach()

    def after_step(self, model: nn.Module) -> None:
        model.enqueue(self._keys)
        follow(model, self.settings.target_momentum)
