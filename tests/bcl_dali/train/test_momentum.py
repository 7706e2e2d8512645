import pytest
import torch

from bcl_dali.train.momentum import MomentumLoss


def reference_weights(s: torch.Tensor) -> torch.Tensor:
    """BCL's weight rule written out directly: z = (s - mean) / std (unbiased std), w = z / max|z| / 2 + 1/2."""
    z = (s - s.mean()) / s.std()
    return z / z.abs().max() / 2 + 0.5


def test_hand_computed_example_with_epoch_one_rule():
    m = MomentumLoss(4, beta=0.5)
    assert torch.equal(m.weights(), torch.zeros(4))  # before any epoch: no op ever applies

    m.update(torch.tensor([2, 0]), torch.tensor([1.0, 3.0]))
    m.update(torch.tensor([1, 3]), torch.tensor([2.0, 6.0]))
    assert torch.equal(m.weights(), torch.zeros(4))  # epoch 1 not finished yet
    m.end_epoch()
    assert m.ema.tolist() == [3.0, 2.0, 1.0, 6.0]  # epoch 1: s = l
    # mean 3, deviations (0, -1, -2, 3), largest |deviation| 3
    torch.testing.assert_close(m.weights(), torch.tensor([0.5, 0.5 - 1 / 6, 0.5 - 2 / 6, 1.0]))
    torch.testing.assert_close(m.weights(), reference_weights(m.ema))

    m.update(torch.tensor([3, 1, 0, 2]), torch.tensor([0.0, 2.0, 5.0, 1.0]))
    m.end_epoch()
    # s = 0.5 l + 0.5 s: (4, 2, 1, 3); mean 2.5, deviations (1.5, -.5, -1.5, .5)
    assert m.ema.tolist() == [4.0, 2.0, 1.0, 3.0]
    torch.testing.assert_close(m.weights(), torch.tensor([1.0, 0.5 - 0.5 / 3, 0.0, 0.5 + 0.5 / 3]))


def test_default_beta_and_weights_range():
    g = torch.Generator().manual_seed(0)
    m = MomentumLoss(1000)
    assert m.beta == 0.97
    for _ in range(3):
        perm = torch.randperm(1000, generator=g)
        for chunk in perm.split(128):
            m.update(chunk, torch.rand(len(chunk), generator=g) * 5)
        m.end_epoch()
    w = m.weights()
    assert w.min() >= 0 and w.max() <= 1
    assert torch.isclose(w.min(), torch.tensor(0.0)) or torch.isclose(w.max(), torch.tensor(1.0))
    torch.testing.assert_close(w, reference_weights(m.ema), rtol=1e-5, atol=1e-6)


def test_second_epoch_uses_ema_formula():
    m = MomentumLoss(2, beta=0.97)
    m.update(torch.tensor([0, 1]), torch.tensor([2.0, 4.0]))
    m.end_epoch()
    m.update(torch.tensor([0, 1]), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(m.ema, torch.tensor([0.03 * 1 + 0.97 * 2, 0.03 * 1 + 0.97 * 4]))


def test_equal_losses_give_half():
    m = MomentumLoss(3)
    m.update(torch.arange(3), torch.ones(3))
    m.end_epoch()
    assert torch.equal(m.weights(), torch.full((3,), 0.5))


def test_state_dict_round_trip():
    m = MomentumLoss(3, beta=0.9)
    m.update(torch.arange(3), torch.tensor([1.0, 2.0, 4.0]))
    m.end_epoch()
    other = MomentumLoss(3)
    other.load_state_dict(m.state_dict())
    assert other.epochs_done == 1 and other.beta == 0.9
    assert torch.equal(other.ema, m.ema) and torch.equal(other.weights(), m.weights())
    with pytest.raises(ValueError):
        MomentumLoss(4).load_state_dict(m.state_dict())


def test_rank_weights_are_hand_computed_ranks_with_ties_averaged():
    """s = (3, 1, 3, 7, 2): sorted 1, 2, 3, 3, 7, 0-based ranks 0, 1, 2.5 (the tie of 2 and 3), 4;
    over N - 1 = 4. Mutation caught (tried): ties ranked by position (searchsorted right only) gives
    the two 3s 3/4 each."""
    m = MomentumLoss(5, norm="rank")
    m.update(torch.arange(5), torch.tensor([3.0, 1.0, 3.0, 7.0, 2.0]))
    m.end_epoch()
    assert m.weights().tolist() == [2.5 / 4, 0.0, 2.5 / 4, 1.0, 1 / 4]


def test_rank_weights_leave_out_samples_no_epoch_plans():
    """Left-out samples neither take a rank nor shift the others': the kept (3, 1, 7) rank 0.5, 0, 1."""
    m = MomentumLoss(5, norm="rank")
    m.update(torch.arange(5), torch.tensor([3.0, 1.0, 100.0, 7.0, -5.0]))
    m.end_epoch()
    m.leave_out([2, 4])
    assert m.weights()[[0, 1, 3]].tolist() == [0.5, 0.0, 1.0]


def test_rank_weights_of_equal_losses_are_half_and_survive_a_checkpoint():
    m = MomentumLoss(3, norm="rank")
    m.update(torch.arange(3), torch.ones(3))
    m.end_epoch()
    assert m.weights().tolist() == [0.5, 0.5, 0.5]
    again = MomentumLoss(3, norm="rank")
    again.load_state_dict(m.state_dict())
    assert torch.equal(again.weights(), m.weights())
    with pytest.raises(ValueError, match="normalised by 'rank', this one by 'paper'"):
        MomentumLoss(3).load_state_dict(m.state_dict())


def test_rank_weights_spread_evenly_where_the_paper_s_crowd_near_one_half():
    """One extreme loss sets the paper's scale: the other 999 weights crowd within 0.02 of 1/2, while
    ranks spread them uniformly (std of a uniform on [0, 1]: 1 / sqrt(12))."""
    losses = torch.cat([torch.rand(999, generator=torch.Generator().manual_seed(0)), torch.tensor([100.0])])
    paper, rank = MomentumLoss(1000), MomentumLoss(1000, norm="rank")
    for m in (paper, rank):
        m.update(torch.arange(1000), losses)
        m.end_epoch()
    assert (paper.weights()[:999] - 0.5).abs().max() < 0.02
    assert rank.weights().std(correction=0).item() == pytest.approx(12 ** -0.5, abs=1e-3)
