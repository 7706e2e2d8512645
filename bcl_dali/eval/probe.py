"""The reference's linear probe on frozen features (eval_cifar.eval_sgd), with features on the device.

A 512 -> C linear layer trained with Adam (lr 1e-2, weight decay 5e-6) for 500 epochs of
minibatches of 1000, the learning rate decayed per epoch exponentially to 1e-6, cross-entropy.
The features never leave the device, so the 500 epochs cost seconds on a GPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PROBE_EPOCHS = 500
PROBE_BATCH = 1000
PROBE_LR = 1e-2
PROBE_FINAL_LR = 1e-6
PROBE_WEIGHT_DECAY = 5e-6


def linear_probe(train_features: torch.Tensor, train_labels: torch.Tensor, num_classes: int,
                 seed: int = 0, epochs: int = PROBE_EPOCHS) -> nn.Linear:
    """Train the probe on (features, labels), both on the same device; returns the linear layer."""
    device = train_features.device
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        probe = nn.Linear(train_features.shape[1], num_classes).to(device)
    optimizer = torch.optim.Adam(probe.parameters(), lr=PROBE_LR, weight_decay=PROBE_WEIGHT_DECAY)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=(PROBE_FINAL_LR / PROBE_LR) ** (1 / epochs))
    count = len(train_labels)
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator, device=device)
        for batch in order.split(PROBE_BATCH):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(probe(train_features[batch]), train_labels[batch]).backward()
            optimizer.step()
        decay.step()
    return probe


@torch.no_grad()
def predict(probe: nn.Linear, features: torch.Tensor, k: int = 1) -> torch.Tensor:
    """The probe's k most likely classes of each feature row, most likely first: (N, k)."""
    return probe(features).topk(min(k, probe.out_features), dim=1).indices
