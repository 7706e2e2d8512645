"""The target networks of MoCo and BYOL: moved towards their online networks after every step.

Both updates are device work with no host synchronisation (Method.after_step), so a CUDA-graphed
step holds them: BYOL's momentum is computed on the device from the model's update count, not read
back, and the count lives in the model's buffers so a checkpoint resumes the schedule where it was.
"""
from __future__ import annotations

import math

import torch

from bcl_dali.models.momentum import WithTarget


def follow(model: WithTarget, momentum: float, total_steps: int | None = None) -> None:
    """target <- tau target + (1 - tau) online, for every parameter of the target network.

    tau is `momentum` at every step (MoCo v2), or with `total_steps` BYOL's cosine schedule from
    `momentum` to 1 (`cosine_momentum`), read on the device from the model's update count."""
    online, target = list(model.online.parameters()), list(model.target.parameters())
    if total_steps is None:
        torch._foreach_lerp_(target, online, 1.0 - momentum)
    else:  # a tensor weight: _foreach_lerp_ would read it back to the host, mul and add do not
        tau = cosine_momentum(momentum, model.target_updates, total_steps).to(target[0].dtype)
        torch._foreach_mul_(target, tau)
        torch._foreach_add_(target, torch._foreach_mul(online, 1 - tau))
    model.target_updates += 1


def cosine_momentum(momentum: float, update: int | torch.Tensor, total_steps: int) -> float | torch.Tensor:
    """BYOL's tau_k = 1 - (1 - momentum) (cos(pi k / K) + 1) / 2 at the k-th update of K: a number,
    or a device tensor for a count kept on the device."""
    angle = math.pi * update / total_steps
    cosine = torch.cos(angle) if isinstance(angle, torch.Tensor) else math.cos(angle)
    return 1 - (1 - momentum) * (cosine + 1) / 2
