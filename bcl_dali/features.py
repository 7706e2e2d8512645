"""Frozen-backbone features of un-augmented images, the input of every evaluation."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipelines.normalize import normalize_uint8

FEATURE_BATCH = 1000


@torch.no_grad()
def extract_features(model: nn.Module, images: np.ndarray | torch.Tensor, device: torch.device,
                     batch_size: int = FEATURE_BATCH) -> torch.Tensor:
    """Backbone features (projector removed; SDCLR's dense branch) of uint8 NHWC images, on `device`.

    Always computed in fp32, whatever precision trained the model, as the official evaluation does:
    bf16 features move few-shot probe accuracies by up to 0.1 points, and the pass is cheap.
    The model is put in eval mode for the pass and restored afterwards.
    """
    was_training = model.training
    model.eval()
    images = torch.as_tensor(images)
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device, non_blocking=True)
        chunks.append(model.features(normalize_uint8(batch)).float())
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, device=device)
