"""Per-sample NT-Xent (SimCLR's normalised temperature-scaled cross entropy).

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020.
BCL needs the loss of every sample, not the batch mean, to drive its momentum loss; the loss of
sample i is the mean of its two anchor directions (view 1 -> view 2 and view 2 -> view 1), with
the 2B - 2 other projections of the batch as negatives, as in the reference code. Unlike the
reference (exp without a shift), the log-sum-exp form stays finite at any temperature.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent_per_sample(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Loss of each of the B pairs (z1[i], z2[i]); computed in fp32 whatever the input dtype.

    For SDCLR, z1 comes from the dense branch and z2 from the pruned one.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (B, D) projections, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    batch = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T) / temperature
    logits.fill_diagonal_(float("-inf"))
    positive_index = torch.arange(2 * batch, device=z.device).roll(batch)
    positive = logits.gather(1, positive_index[:, None]).squeeze(1)
    per_anchor = torch.logsumexp(logits, dim=1) - positive
    return (per_anchor[:batch] + per_anchor[batch:]) / 2
