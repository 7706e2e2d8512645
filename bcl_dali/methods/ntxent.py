"""Per-sample NT-Xent (SimCLR's normalised temperature-scaled cross entropy).

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020.
BCL needs the loss of every sample, not the batch mean, to drive its momentum loss; the loss of
sample i is the mean of its two anchor directions (view 1 -> view 2 and view 2 -> view 1), with
the 2B - 2 other projections of the batch as negatives, as in the reference code. Unlike the
reference (exp without a shift), the log-sum-exp form stays finite at any temperature. Across
several processes the batch is the global one: every anchor meets every rank's projections
(gathered with their gradients, as lightly's NTXentLoss(gather_distributed=True) does).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bcl_dali.distributed import World


def nt_xent_per_sample(z1: torch.Tensor, z2: torch.Tensor, temperature: float, world: World = World(),
                       shard: int | None = None, batch: int | None = None) -> torch.Tensor:
    """Loss of each of this process's B pairs (z1[i], z2[i]); computed in fp32, or fp64 for fp64 inputs.

    For SDCLR, z1 comes from the dense branch and z2 from the pruned one. Under several processes
    the step's global `batch` is split into contiguous shares (pipelines.plan.share), of which
    `shard` is the largest: ranks pad to it so that their projections can be gathered in one
    call, and the padding is no one's negative.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (B, D) projections, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    local = z1.shape[0]
    shard = local if shard is None else shard
    if shard < local:
        raise ValueError(f"this rank holds {local} pairs, more than the step's largest share {shard}")
    anchors = F.normalize(torch.cat([z1, z2]).to(torch.promote_types(z1.dtype, torch.float32)), dim=1)
    padding = anchors.new_zeros(shard - local, anchors.shape[1])
    gathered = world.gather(torch.cat([anchors[:local], padding, anchors[local:], padding])).view(world.size, 2, shard, -1)
    everyone = torch.cat([gathered[:, 0].reshape(-1, anchors.shape[1]), gathered[:, 1].reshape(-1, anchors.shape[1])])
    logits = anchors @ everyone.T / temperature
    own = world.rank * shard + torch.arange(local, device=anchors.device)
    offset = world.size * shard
    itself = torch.cat([own, own + offset])
    positive = torch.cat([own + offset, own])
    excluded = _padding(batch if batch is not None else local, shard, world, anchors.device).repeat(2)
    excluded = excluded.expand(2 * local, -1).clone()
    excluded[torch.arange(2 * local, device=anchors.device), itself] = True
    logits = logits.masked_fill(excluded, float("-inf"))
    per_anchor = torch.logsumexp(logits, dim=1) - logits.gather(1, positive[:, None]).squeeze(1)
    return (per_anchor[:local] + per_anchor[local:]) / 2


def _padding(batch: int, shard: int, world: World, device: torch.device) -> torch.Tensor:
    """(world.size * shard,) True where a gathered row is padding: rank r holds the
    (r + 1) B // W - r B // W rows of its share (pipelines.plan.share), made on the device."""
    ranks = torch.arange(world.size, device=device)
    sizes = (ranks + 1) * batch // world.size - ranks * batch // world.size
    return (torch.arange(shard, device=device)[None, :] >= sizes[:, None]).reshape(-1)
