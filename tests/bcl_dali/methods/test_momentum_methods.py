"""MoCo v2 and BYOL: each per-sample loss against a hand-computed value, the queue and the target
updates against their formulas, and each sample's loss reaching its own momentum state whatever
the batch order."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bcl_dali.config import TrainConfig
from bcl_dali.errors import UserError
from bcl_dali.methods import BatchShare
from bcl_dali.methods.byol import byol_per_sample
from bcl_dali.methods.moco import MoCoMethod, MoCoSettings, info_nce_per_sample
from bcl_dali.methods.target import cosine_momentum, follow
from bcl_dali.models import BYOL, MoCo
from bcl_dali.train.executors import build_executor
from bcl_dali.train.trainer import Trainer

CPU = torch.device("cpu")


def _full_precision():
    return torch.autocast("cpu", enabled=False)


def test_info_nce_against_a_hand_computed_value():
    """q = (1, 0), its key (0.6, 0.8), the queue (0, 1) and (-1, 0), T = 0.5: logits (1.2, 0, -2),
    loss log(e^1.2 + e^0 + e^-2) - 1.2. Mutations caught: the positive left out of the denominator;
    the temperature not applied."""
    loss = info_nce_per_sample(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8]]),
                               torch.tensor([[0.0, 1.0], [-1.0, 0.0]]), temperature=0.5)
    assert loss.item() == pytest.approx(math.log(math.exp(1.2) + 1 + math.exp(-2)) - 1.2, abs=1e-6)


class FixedOutputs(nn.Module):
    """Stands for a network: returns the given outputs, scaled by a parameter so that a backward has
    something to reach."""

    def __init__(self, *outputs: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.outputs = outputs

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, ...]:
        first, *rest = self.outputs
        return (first * self.scale, *rest)


def test_moco_s_per_sample_loss_is_the_sum_of_its_two_directions_against_the_queue():
    """Sample i: InfoNCE(q1_i, k2_i) + InfoNCE(q2_i, k1_i) over the queue as it was, outputs
    normalised first (the demonstration's loss_12 + loss_21). Mutation caught: one direction only."""
    g = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    queue = nn.functional.normalize(torch.randn(10, 8, generator=g), dim=1)
    method = MoCoMethod(MoCoSettings(temperature=0.2))
    loss = method.gradients(FixedOutputs(queries, keys, queue), torch.zeros(6, 3, 4, 4), BatchShare.of(3),
                            _full_precision)
    q, k = nn.functional.normalize(queries, dim=1), nn.functional.normalize(keys, dim=1)
    for i in range(3):
        directions = [(q[i], k[3 + i]), (q[3 + i], k[i])]
        by_hand = [torch.logsumexp(torch.cat([(a * b).sum()[None], queue @ a]) / 0.2, 0) - (a * b).sum() / 0.2
                   for a, b in directions]
        assert loss[i].item() == pytest.approx(sum(by_hand).item(), abs=1e-5)


def test_moco_queues_the_step_s_keys_of_both_views_oldest_first_and_wraps():
    """After the step, keys (view 1's, then view 2's, normalised) replace the oldest entries, from
    where the last step stopped, wrapping at the end. Mutation caught: the queue written from 0 at
    every step (queue_end not advanced)."""
    torch.manual_seed(0)
    method = MoCoMethod(MoCoSettings(queue_size=10))
    model = method.build_model("resnet18", 16)
    model.queue_end.fill_(7)
    old = model.queue.clone()
    views = torch.randn(4, 3, 32, 32)
    loss = method.gradients(model, views, BatchShare.of(2), _full_precision)
    keys = nn.functional.normalize(model.target(views), dim=1).detach()
    with torch.no_grad():
        method.after_step(model)
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(model.queue[[7, 8, 9, 0]], keys, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.queue[1:7], old[1:7], rtol=0, atol=0)
    assert model.queue_end.item() == 1


def test_a_queue_smaller_than_one_step_s_keys_is_refused():
    with pytest.raises(UserError, match="--queue-size 100 holds less than one step's keys"):
        MoCoMethod(MoCoSettings(queue_size=100)).begin(total_steps=10, batch_size=64)


def test_byol_loss_against_a_hand_computed_value():
    """Sample 0: p1 = (3, 4) against z2 = (0, 2): 2 - 2 x 0.8; p2 = (1, 1) against z1 = (1, 0):
    2 - 2 / sqrt(2). Mutation caught (tried): the views paired with themselves (p1 against z1)."""
    predictions = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert byol_per_sample(predictions, targets).item() == pytest.approx((2 - 1.6) + (2 - 2 / math.sqrt(2)), abs=1e-6)


def _set(parameters, value: float) -> None:
    with torch.no_grad():
        for p in parameters:
            p.fill_(value)


def test_byol_target_follows_the_cosine_schedule_from_its_base_to_one():
    """Online weights 1, target 0, base 0.9, 4 steps: tau_0 = 0.9 then tau_1 = 1 - 0.1 (cos(pi/4) + 1) / 2,
    and tau reaches 1 at the last step. Mutation caught: the schedule's clock not advanced (tau stays 0.9)."""
    model = BYOL("resnet18", 16)
    _set(model.online.parameters(), 1.0)
    _set(model.target.parameters(), 0.0)
    follow(model, 0.9, total_steps=4)
    first = 1 - 0.9
    follow(model, 0.9, total_steps=4)
    tau = 1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2
    for p in model.target.parameters():
        torch.testing.assert_close(p, torch.full_like(p, tau * first + (1 - tau)), rtol=0, atol=1e-6)
    assert model.target_updates.item() == 2
    assert cosine_momentum(0.9, 1, 4) == pytest.approx(tau) and cosine_momentum(0.9, 4, 4) == 1.0


def test_moco_s_key_encoder_follows_with_a_constant_momentum():
    model = MoCo("resnet18", 16)
    _set(model.online.parameters(), 1.0)
    _set(model.target.parameters(), 0.0)
    for _ in range(2):
        follow(model, 0.99)
    for p in model.target.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.99 * 0.01 + 0.01), rtol=0, atol=1e-6)


def _trainer(method: str) -> Trainer:
    config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=3, width=16, batch_size=32, epochs=2,
                         device="cpu", workers=0, executor="reference", queue_size=256, seed=1).resolve()
    data = config.load_data()
    return Trainer(config, data, CPU, build_executor(config, data, CPU))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["moco", "byol"])
def test_each_sample_s_loss_reaches_its_own_momentum_state_in_any_batch_order(method):
    """The same step on the batch in another order (views and indices shuffled alike) gives every
    sample the same momentum state; BatchNorm sees the same set, so only summation order differs.
    Mutation caught: MoCo's second direction paired with a rolled key (k1.roll(1)), which ties
    sample i's loss to its neighbour's views."""
    trainer = _trainer(method)
    plan, _ = trainer.plan_epoch()
    indices, views = next(trainer.executor.epoch(plan))
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(0))
    shuffled = _trainer(method)
    trainer.train_step(indices, views, len(indices))
    first, second = views.chunk(2)
    shuffled.train_step(indices[order], torch.cat([first[order], second[order]]), len(indices))
    torch.testing.assert_close(shuffled.momentum.ema, trainer.momentum.ema, rtol=0, atol=1e-4)
    assert (trainer.momentum.ema[indices] > 0).all() and trainer.momentum.ema.count_nonzero() == len(indices)
