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
                       shard: int | None = None) -> torch.Tensor:
    """Loss of each of this process's B pairs (z1[i], z2[i]); computed in fp32, or fp64 for fp64 inputs.

    For SDCLR, z1 comes from the dense branch and z2 from the pruned one. Under several processes,
    `shard` is the largest per-rank batch of the step: ranks pad to it so that their projections
    can be gathered, and the padding is no one's negative.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (B, D) projections, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    batch = z1.shape[0]
    anchors = F.normalize(torch.cat([z1, z2]).to(torch.promote_types(z1.dtype, torch.float32)), dim=1)
    shard = batch if shard is None else shard
    if shard < batch:
        raise ValueError(f"this rank holds {batch} pairs, more than the step's largest share {shard}")
    padding = anchors.new_zeros(shard - batch, anchors.shape[1])
    mine = torch.ones(batch, dtype=torch.bool, device=anchors.device)
    valid = world.gather(torch.cat([mine, mine.new_zeros(shard - batch)]))
    first = world.gather(torch.cat([anchors[:batch], padding]))
    second = world.gather(torch.cat([anchors[batch:], padding]))
    logits = anchors @ torch.cat([first, second]).T / temperature
    own = world.rank * shard + torch.arange(batch, device=anchors.device)
    offset = world.size * shard
    itself = torch.cat([own, own + offset])
    positive = torch.cat([own + offset, own])
    excluded = ~torch.cat([valid, valid]).expand_as(logits).clone()
    excluded[torch.arange(2 * batch, device=anchors.device), itself] = True
    logits = logits.masked_fill(excluded, float("-inf"))
    per_anchor = torch.logsumexp(logits, dim=1) - logits.gather(1, positive[:, None]).squeeze(1)
    return (per_anchor[:batch] + per_anchor[batch:]) / 2
