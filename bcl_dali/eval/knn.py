"""Weighted k-nearest-neighbour classification of features, the quick learning signal of SSL.

Cosine similarity, the k = 200 nearest bank features vote for their class with weight
exp(similarity / 0.1): the monitor of Wu et al. (InstDisc, CVPR 2018) as used by SSL libraries.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

KNN_K = 200
KNN_TEMPERATURE = 0.1


@torch.no_grad()
def knn_predict(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, num_classes: int,
                k: int = KNN_K, temperature: float = KNN_TEMPERATURE, chunk: int = 1024) -> torch.Tensor:
    """Predicted class of every query; chunked so the similarity matrix stays small."""
    bank = F.normalize(bank.float(), dim=1)
    queries = F.normalize(queries.float(), dim=1)
    k = min(k, len(bank))
    predictions = []
    for start in range(0, len(queries), chunk):
        similarity = queries[start:start + chunk] @ bank.T
        top_similarity, top_index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(similarity), num_classes, device=bank.device)
        votes.scatter_add_(1, bank_labels[top_index], (top_similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)
