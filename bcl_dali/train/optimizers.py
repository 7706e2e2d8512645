"""The optimisers of a run: the reference's SGD, and LARS for large batches, with SimCLR's rules for
scaling the learning rate by the global batch."""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

SGD_MOMENTUM = 0.9
LARS_TRUST = 1e-3
"""LARS's trust coefficient eta (You et al., 2017; SimCLR's value)."""


def scaled_lr(lr: float, rule: str, batch_size: int) -> float:
    """SimCLR's rules for the global batch B: linear, lr * B / 256 (e.g. 0.3 * B / 256); square root,
    lr * sqrt(B) (e.g. 0.075 * sqrt(B)); none, lr as given (the reference's 0.5 at batch 512)."""
    if rule == "linear":
        return lr * batch_size / 256
    if rule == "sqrt":
        return lr * math.sqrt(batch_size)
    return lr


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al., "Large Batch Training of Convolutional Networks",
    2017), with SimCLR's exclusions.

    Each weight tensor's update is scaled by its trust ratio eta * ||w|| / ||g + wd w||; the 1-d
    tensors (BatchNorm weights and every bias) get neither that adaptation nor weight decay, as in
    SimCLR. The momentum and the learning rate then act as in torch's SGD (lr applied to the momentum
    buffer, as solo-learn's LARS does); SimCLR's TensorFlow LARS folds lr into the buffer instead,
    which differs only while the learning rate changes (warm-up, cosine decay).
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float, momentum: float = SGD_MOMENTUM,
                 weight_decay: float = 0.0, trust: float = LARS_TRUST) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust=trust))

    @torch.no_grad()
    def step(self, closure=None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for weight in group["params"]:
                if weight.grad is None:
                    continue
                update = weight.grad
                if weight.ndim > 1:
                    update = update.add(weight, alpha=group["weight_decay"])
                    weight_norm, update_norm = torch.linalg.vector_norm(weight), torch.linalg.vector_norm(update)
                    ratio = group["trust"] * weight_norm / update_norm
                    update = update * torch.where((weight_norm > 0) & (update_norm > 0), ratio, 1.0)
                state = self.state[weight]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(weight)
                buffer = state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                weight.add_(buffer, alpha=-group["lr"])
        return loss


def build_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float,
                    device: torch.device) -> torch.optim.Optimizer:
    if name == "lars":
        return LARS(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay,
                           fused=True if device.type == "cuda" else None)
