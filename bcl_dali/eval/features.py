"""Frozen-backbone features of un-augmented images, the input of every evaluation."""
from __future__ import annotations

import torch
from torch import nn

from bcl_dali.data import ImageSource
from bcl_dali.pipelines.normalize import normalize_uint8

FEATURE_BATCH = 1000


@torch.no_grad()
def extract_features(model: nn.Module, images: ImageSource, device: torch.device, size: int | None,
                     batch_size: int = FEATURE_BATCH) -> torch.Tensor:
    """Backbone features (projector removed; SDCLR's dense branch) of un-augmented images, on `device`:
    the source's evaluation batches of `size`-pixel images (in-memory images as they are, an image
    folder's files resized and centre-cropped).

    Always computed in fp32, whatever precision trained the model, as the official evaluation does:
    bf16 features move few-shot probe accuracies by up to 0.1 points, and the pass is cheap.
    The model is put in eval mode for the pass and restored afterwards.
    """
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for batch in images.batches(batch_size, size):
            chunks.append(model.features(normalize_uint8(batch.to(device, non_blocking=True))).float())
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, device=device)
