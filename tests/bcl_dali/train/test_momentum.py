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
