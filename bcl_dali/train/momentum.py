"""BCL's momentum loss: an exponential moving average of every training sample's loss.

The single owner of the per-sample state: the EMA vector on the training device, the count of
finished epochs, and the loss -> weight normalisation. Updates are one scatter per step with no host
synchronisation. Under several processes every rank holds the whole vector: each step's losses,
scattered into a vector of all samples by the rank that computed them, are summed over ranks (the
ranks' samples are disjoint), so every rank applies every sample's update.
"""
from __future__ import annotations

import torch

from bcl_dali.distributed import World
from bcl_dali.policy import WEIGHT_NORMS


class MomentumLoss:
    """s_i = l_i in the first epoch, s_i = (1 - beta) l_i + beta s_i afterwards.

    `weights()` maps s to [0, 1] (all zeros before the first epoch has finished, so no RandAugment
    op runs in epoch 1): with `norm="paper"`, z = (s - mean) / std, w = z / max|z| / 2 + 1/2; with
    `norm="rank"`, w = (rank of s_i, ties averaged, from 0) / (N - 1).
    """

    def __init__(self, num_samples: int, beta: float = 0.97, device: torch.device | str = "cpu",
                 world: World = World(), norm: str = "paper") -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        if norm not in WEIGHT_NORMS:
            raise ValueError(f"norm must be one of {WEIGHT_NORMS}, got {norm!r}")
        self.beta = beta
        self.norm = norm
        self.ema = torch.zeros(num_samples, dtype=torch.float32, device=device)
        self.epochs_done = 0
        self.world = world
        self.kept: torch.Tensor | None = None
        """(N,) bool: the samples a run trains on, where it leaves some out (their files do not
        decode); None: all of them."""

    def leave_out(self, positions: torch.Tensor | list[int]) -> None:
        """Samples no epoch plans again: their stale averages no longer count in the weights' scale."""
        if self.kept is None:
            self.kept = torch.ones_like(self.ema, dtype=torch.bool)
        self.kept[torch.as_tensor(positions, dtype=torch.long, device=self.ema.device)] = False

    def update(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        """Fold this step's per-sample losses into the average (indices unique within a step, and
        across the ranks of a step)."""
        losses = losses.detach().float()
        if self.world.size > 1:
            self._update_everywhere(indices, losses)
        elif self.epochs_done == 0:
            self.ema[indices] = losses
        else:
            self.ema[indices] = torch.lerp(losses, self.ema[indices], self.beta)

    def _update_everywhere(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        scattered = self.ema.new_zeros(2, len(self.ema))
        scattered[0, indices] = losses
        scattered[1, indices] = 1.0
        step, seen = self.world.sum(scattered).unbind(0)
        updated = step if self.epochs_done == 0 else torch.lerp(step, self.ema, self.beta)
        self.ema = torch.where(seen > 0, updated, self.ema)

    def end_epoch(self) -> None:
        self.epochs_done += 1

    def weights(self) -> torch.Tensor:
        """Per-sample weights in [0, 1], on the device, without a host synchronisation."""
        if self.epochs_done == 0:
            return torch.zeros_like(self.ema)
        return self._ranked() if self.norm == "rank" else self._scaled()

    def _scaled(self) -> torch.Tensor:
        """The paper's: the sample furthest from the mean loss lands on 0 or 1. z / max|z| equals
        (s - mean) / max|s - mean|: the std cancels, which also keeps the weights defined (all 1/2)
        when every loss is equal."""
        if self.kept is None:
            centred = self.ema - self.ema.mean()
            spread = centred.abs().max()
        else:  # masked sums, not ema[kept]: a boolean index would read the count back to the host
            centred = self.ema - (self.ema * self.kept).sum() / self.kept.sum()
            spread = torch.where(self.kept, centred.abs(), torch.zeros_like(centred)).max()
        return torch.where(spread > 0, centred / spread.clamp_min(torch.finfo(torch.float32).tiny) / 2 + 0.5,
                           torch.full_like(centred, 0.5))

    def _ranked(self) -> torch.Tensor:
        """Each kept sample's rank among the kept ones (equal losses share their mean rank), over N - 1:
        the smallest loss gets 0, the largest 1. Ranks come from the sorted losses by binary search, so
        the count of kept samples stays on the device."""
        kept = torch.ones_like(self.ema, dtype=torch.bool) if self.kept is None else self.kept
        ranked = torch.where(kept, self.ema, torch.full_like(self.ema, float("inf"))).sort().values
        below = torch.searchsorted(ranked, self.ema, right=False)
        up_to = torch.searchsorted(ranked, self.ema, right=True)
        count = kept.sum()
        rank = (below + up_to - 1).double() / 2
        return torch.where(count > 1, rank / (count - 1).clamp_min(1), torch.full_like(rank, 0.5)).float().clamp(0, 1)

    def state_dict(self) -> dict:
        return {"ema": self.ema.clone(), "epochs_done": self.epochs_done, "beta": self.beta, "norm": self.norm}

    def load_state_dict(self, state: dict) -> None:
        if state["ema"].shape != self.ema.shape:
            raise ValueError(f"momentum state holds {state['ema'].numel()} samples, this run has {self.ema.numel()}")
        self.ema.copy_(state["ema"])
        self.epochs_done = int(state["epochs_done"])
        if state.get("norm", "paper") != self.norm:
            raise ValueError(f"momentum state normalised by {state.get('norm', 'paper')!r}, this one by {self.norm!r}")
        self.beta = float(state["beta"])
