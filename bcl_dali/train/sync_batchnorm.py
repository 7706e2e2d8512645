"""BatchNorm over the global batch when a run spans several processes.

SimCLR's negatives and its batch statistics are the global batch's, so every BatchNorm (SDCLR's
dual ones included) becomes a synchronised one. On GPUs that is torch's SyncBatchNorm. torch's
refuses CPU tensors (and DDP refuses it on CPU modules), so on the CPU (gloo) `MomentSyncBatchNorm`
takes the same statistics from one differentiable all-reduce of each channel's count, sum and sum
of squares, in float64 so that E[x^2] - E[x]^2 keeps what a float32 BatchNorm keeps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bcl_dali.distributed import World


class MomentSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of every rank's batch together (CPU, gloo)."""

    def __init__(self, source: nn.modules.batchnorm._BatchNorm, world: World) -> None:
        super().__init__(source.num_features, source.eps, source.momentum, source.affine, source.track_running_stats,
                         device=source.weight.device)
        self.load_state_dict(source.state_dict())
        for mine, theirs in zip(self.parameters(), source.parameters()):
            mine.requires_grad_(theirs.requires_grad)  # a target network's stay out of the gradient (and of DDP)
        self.world = world

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {input.dim()}-d")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.track_running_stats:
            raise ValueError("MomentSyncBatchNorm keeps running statistics; build the BatchNorm with them")
        if not self.training:
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                self.eps)
        dims = [0] + list(range(2, input.dim()))
        x = input.double()
        count = x.new_full((1,), float(input.numel() // input.shape[1]))
        moments = torch.cat([count, x.sum(dims), (x * x).sum(dims)])
        total, sums, squares = self.world.differentiable_sum(moments).split([1, self.num_features, self.num_features])
        mean = sums / total
        variance = squares / total - mean * mean
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            weight = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), weight)
            self.running_var.lerp_((variance * total / (total - 1)).to(self.running_var.dtype), weight)
        shape = [1, -1] + [1] * (input.dim() - 2)
        normalised = ((x - mean.view(shape)) / torch.sqrt(variance.view(shape) + self.eps)).to(input.dtype)
        return normalised * self.weight.view(shape) + self.bias.view(shape)


def synchronise_batchnorm(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """`module` with every BatchNorm synchronised over the ranks of `world`, for `device`."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return MomentSyncBatchNorm(module, world)
    for name, child in module.named_children():
        setattr(module, name, synchronise_batchnorm(child, world, device))
    return module
