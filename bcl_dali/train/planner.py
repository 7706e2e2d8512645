"""BCL's epoch plan: a shuffled order and every view's augmentation parameters, drawn from the
momentum loss's weights. `train` and the library's `BoostedAugmentation` both plan through it, so a
researcher's own loop draws the epochs `train` would draw from the same seed."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bcl_dali.data.source import ImageSource
from bcl_dali.policy import BoostPolicy
from bcl_dali.train.momentum import MomentumLoss
from bcl_dali.pipelines.plan import EpochPlan


class EpochPlanner:
    """Owns the plan's random stream and the samples no epoch plans (files that do not decode)."""

    def __init__(self, momentum: MomentumLoss, policy: BoostPolicy, batch_size: int, seed: int) -> None:
        self.momentum = momentum
        self.policy = policy
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.left_out = np.zeros(len(momentum.ema), bool)

    def leave_out(self, positions: np.ndarray) -> None:
        self.left_out[positions] = True
        self.momentum.leave_out(np.flatnonzero(self.left_out).tolist())

    def plan(self, images: ImageSource) -> tuple[EpochPlan, torch.Tensor]:
        """The next epoch's plan, and the weights it was drawn from (on the momentum loss's device).
        The crop boxes are drawn in each image's own size (`images.sizes`)."""
        weights = self.momentum.weights()
        order = self.rng.permutation(len(self.left_out))
        order = order[~self.left_out[order]]
        params = self.policy.sample(weights.cpu().numpy()[order], self.rng, images.sizes(order))
        return EpochPlan(order, self.batch_size, params), weights

    def state_dict(self) -> dict[str, Any]:
        return {"numpy": self.rng.bit_generator.state, "left_out": np.flatnonzero(self.left_out).tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["numpy"]
        self.left_out[:] = False
        self.momentum.kept = None
        if state.get("left_out"):
            self.leave_out(np.asarray(state["left_out"], np.int64))
