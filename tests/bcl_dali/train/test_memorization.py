"""The memorisation statistics against hand-computed values, and the sign of the correlation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bcl_dali.train.memorization import HISTOGRAM_BINS, MemorizationStatistics, average_ranks, spearman


def test_statistics_of_a_hand_made_split() -> None:
    """Three classes of 4, 2 and 1 samples (weights away from bin edges). Fails if a group, a class mean, the histogram's bins or
    the rank correlation is computed over the wrong samples (e.g. weighting classes equally)."""
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    weights = torch.tensor([0.01, 0.12, 0.22, 0.31, 0.52, 0.68, 1.0], dtype=torch.float64)
    stats = MemorizationStatistics(labels, 3, torch.device("cpu"))(weights)
    assert stats["class_weight_mean"] == pytest.approx([0.165, 0.6, 1.0])
    assert stats["weight_by_group"] == pytest.approx({"many": 0.165, "medium": 0.6, "few": 1.0})
    # Bins of width 0.05 over [0, 1], the last one closed: 1.0 falls in it.
    expected = [0] * HISTOGRAM_BINS
    for b in (0, 2, 4, 6, 10, 13, 19):
        expected[b] += 1
    assert stats["weight_histogram"] == expected
    # Sizes 4, 2, 1 against means 0.15, 0.6, 1.0: perfectly opposite ranks.
    assert stats["size_weight_spearman"] == pytest.approx(-1.0)


def test_groups_average_over_their_samples_not_their_classes() -> None:
    """Six classes, two per group; the many group holds a class of 3 at weight 0 and one of 5 at 1,
    so its sample mean is 5/8 while its class mean would be 1/2."""
    labels = np.repeat(np.arange(6), [5, 3, 2, 2, 1, 1])
    weights = torch.as_tensor((labels == 0).astype(np.float32))
    stats = MemorizationStatistics(labels, 6, torch.device("cpu"))(weights)
    assert stats["weight_by_group"]["many"] == pytest.approx(5 / 8)
    assert stats["weight_by_group"]["medium"] == 0 and stats["weight_by_group"]["few"] == 0


def test_average_ranks_share_ties() -> None:
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_spearman_matches_pearson_of_average_ranks_with_ties() -> None:
    """Against an independent computation: Pearson's r of scipy-style average ranks, by numpy."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 40).astype(np.float64)
    y = x * -0.5 + rng.normal(0, 1, 40)

    def ranks(v: np.ndarray) -> np.ndarray:
        return np.array([(v < a).sum() + ((v == a).sum() + 1) / 2 for a in v])

    expected = np.corrcoef(ranks(x), ranks(y))[0, 1]
    assert float(spearman(torch.as_tensor(x), torch.as_tensor(y))) == pytest.approx(expected, abs=1e-12)


def test_constant_weights_have_no_correlation() -> None:
    stats = MemorizationStatistics(np.array([0, 0, 1, 2]), 3, torch.device("cpu"))(torch.full((4,), 0.5))
    assert stats["size_weight_spearman"] is None


def test_a_tail_with_higher_losses_gives_a_negative_correlation() -> None:
    """The paper's premise, constructed: a long-tailed split whose tail samples have higher momentum
    losses than its head samples, with noise. The weights of bcl_dali.train.momentum must then correlate
    negatively with class size; reversing the losses must make it positive."""
    from bcl_dali.train.momentum import MomentumLoss

    rng = np.random.default_rng(1)
    counts = np.round(100 * 0.01 ** (np.arange(20) / 19)).astype(int)
    labels = np.repeat(np.arange(20), counts)
    for sign in (1, -1):
        momentum = MomentumLoss(len(labels))
        losses = sign * -np.log(counts[labels]) + rng.normal(0, 0.5, len(labels))
        momentum.update(torch.arange(len(labels)), torch.as_tensor(losses, dtype=torch.float32))
        momentum.end_epoch()
        stats = MemorizationStatistics(labels, 20, torch.device("cpu"))(momentum.weights())
        assert np.sign(stats["size_weight_spearman"]) == -sign and abs(stats["size_weight_spearman"]) > 0.8
        few, many = stats["weight_by_group"]["few"], stats["weight_by_group"]["many"]
        assert (few > many) == (sign == 1)
