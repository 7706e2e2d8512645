"""Frozen-backbone features of un-augmented images, the input of every evaluation."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bcl_dali.device import autocast
from pipelines.normalize import normalize_uint8

FEATURE_BATCH = 1000


@torch.no_grad()
def extract_features(model: nn.Module, images: np.ndarray | torch.Tensor, device: torch.device,
                     bf16: bool = False, batch_size: int = FEATURE_BATCH) -> torch.Tensor:
    """Backbone features (projector removed; SDCLR's dense branch) of uint8 NHWC images, fp32, on `device`.

    The model is put in eval mode for the pass and restored afterwards.
    """
    was_training = model.training
    model.eval()
    images = torch.as_tensor(images)
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device, non_blocking=True)
        with autocast(device, bf16):
            chunks.append(model.features(normalize_uint8(batch)).float())
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, device=device)
