"""Forward, loss and backward of one step for each model family: the step's gradients. Both
return the per-sample loss that feeds the momentum loss (taken before the optimiser step, as the
reference does)."""
from __future__ import annotations

import torch
from torch import nn

from bcl_dali.device import autocast
from bcl_dali.loss import nt_xent_per_sample


def simclr_gradients(model: nn.Module, views: torch.Tensor, temperature: float, bf16: bool) -> torch.Tensor:
    """One forward over both views (BatchNorm sees the 2B images together, as in the reference)."""
    with autocast(views.device, bf16):
        z1, z2 = model(views).chunk(2)
    loss = nt_xent_per_sample(z1, z2, temperature)
    loss.mean().backward()
    return loss.detach()


def sdclr_gradients(model: nn.Module, views: torch.Tensor, temperature: float, bf16: bool) -> torch.Tensor:
    """SDCLR's two passes: dense view 1 against the (fixed) pruned view 2, then the pruned twin
    against the (fixed) dense view 1; gradients of both accumulate into one optimiser step."""
    view1, view2 = views.chunk(2)
    device = views.device
    with torch.no_grad(), model.branch(pruned=True), autocast(device, bf16):
        z2_fixed = model(view2)
    with autocast(device, bf16):
        z1 = model(view1)
    loss = nt_xent_per_sample(z1, z2_fixed, temperature)
    loss.mean().backward()
    with model.branch(pruned=True), autocast(device, bf16):
        z2 = model(view2)
    nt_xent_per_sample(z1.detach(), z2, temperature).mean().backward()
    return loss.detach()


GRADIENTS = {"simclr": simclr_gradients, "sdclr": sdclr_gradients}
