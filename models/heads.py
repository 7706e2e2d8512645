"""The projection head that maps backbone features into the space where the contrastive loss runs."""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

PROJECTION_DIM = 128


class ProjectionHead(nn.Sequential):
    """The reference's SimCLR projector: Linear(d, d) -> BN -> ReLU -> Linear(d, 128, no bias) -> BN.

    The closing BN differs from SimCLR's paper head; it is kept because the reference has it.
    `norm` builds the two BatchNorm1d layers (SDCLR passes dual ones).
    """

    def __init__(self, in_dim: int, norm: Callable[[int], nn.Module] = nn.BatchNorm1d) -> None:
        super().__init__(
            nn.Linear(in_dim, in_dim),
            norm(in_dim),
            nn.ReLU(inplace=True),
            nn.Linear(in_dim, PROJECTION_DIM, bias=False),
            norm(PROJECTION_DIM),
        )
