"""The methods by name: each owns its settings, model, loss, gradient step and hooks; a method
beyond NT-Xent (tests/momentum_encoder.py) trains through the same interface."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bcl_dali.config import TrainConfig
from bcl_dali.errors import UserError
from bcl_dali.methods import METHODS, BatchShare
from bcl_dali.train.trainer import Trainer
from bcl_dali.models import SDCLR, SimCLR
from tests.momentum_encoder import MomentumEncoderMethod


def test_the_papers_four_methods_with_their_presets():
    presets = {name: (type(method().build_model("resnet18", 16)), method.rand_k, method.weight_decay)
               for name, method in METHODS.items()}
    assert presets == {"simclr": (SimCLR, 0, 5e-4), "bcl-i": (SimCLR, 1, 5e-4),
                       "sdclr": (SDCLR, 0, 1e-4), "bcl-d": (SDCLR, 2, 1e-4)}
    resolved = TrainConfig(method="bcl-d").resolve()
    assert (resolved.rand_k, resolved.weight_decay) == (2, 1e-4)
    assert resolved.boost_policy().k == 2


def test_a_method_s_settings_come_from_the_run_s_fields_of_the_same_name():
    settings = TrainConfig(method="bcl-d", temperature=0.3, prune_ratio=0.5).resolve().method_settings()
    assert (settings.temperature, settings.prune_ratio) == (0.3, 0.5)
    assert not hasattr(TrainConfig(method="simclr").resolve().method_settings(), "prune_ratio")


@pytest.mark.parametrize("name", list(METHODS))
def test_gradient_step_returns_per_sample_losses_and_fills_gradients(name):
    torch.manual_seed(0)
    method = METHODS[name]()
    model = method.build_model("resnet18", 16)
    method.start_epoch(model)
    views = torch.randn(12, 3, 32, 32)
    loss = method.gradients(model, views, BatchShare.of(6), _full_precision)
    assert loss.shape == (6,) and not loss.requires_grad and torch.isfinite(loss).all()
    convs = [p for n, p in model.named_parameters() if p.ndim == 4]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in convs)


def _full_precision():
    return torch.autocast("cpu", enabled=False)


def test_sdclr_prunes_at_every_epoch_start():
    method = METHODS["sdclr"]()
    model = method.build_model("resnet18", 16)
    mask = model.backbone.stem[0].mask
    assert mask.all()
    method.start_epoch(model)
    assert 0 < mask.float().mean() < 1


def test_a_method_refuses_settings_it_cannot_train_with():
    with pytest.raises(UserError, match="SDCLR needs --prune-ratio in"):
        TrainConfig(method="bcl-d", prune_ratio=0.0).resolve()
    with pytest.raises(UserError, match="--temperature must be positive"):
        TrainConfig(method="simclr", temperature=0.0).resolve()
    assert TrainConfig(method="bcl-i", prune_ratio=0.0).resolve().prune_ratio == 0.0


@pytest.fixture
def momentum_encoder(monkeypatch):
    monkeypatch.setitem(METHODS, MomentumEncoderMethod.name, MomentumEncoderMethod)


def _trainer(**fields) -> Trainer:
    config = TrainConfig(method=MomentumEncoderMethod.name, dataset="synthetic-lt", num_classes=3, width=16,
                         batch_size=64, epochs=2, device="cpu", workers=0, executor="reference", **fields).resolve()
    data = config.load_data()
    from bcl_dali.train.executors import build_executor

    return Trainer(config, data, torch.device("cpu"), build_executor(config, data, torch.device("cpu")))


def test_a_momentum_encoder_s_target_follows_its_online_network_after_every_step(momentum_encoder):
    """The hook runs after the optimiser step: target = m * target + (1 - m) * (online after the step).
    Mutation caught (tried): the trainer calling after_step before optimizer.step()."""
    trainer = _trainer()
    model = trainer.model
    before = [p.detach().clone() for p in model.target.parameters()]
    plan, _ = trainer.plan_epoch()
    indices, views = next(trainer.executor.epoch(plan))
    trainer.train_step(indices, views, len(indices))
    m = trainer.method.settings.target_momentum
    for old, online, target in zip(before, model.online.parameters(), model.target.parameters()):
        torch.testing.assert_close(target, m * old + (1 - m) * online.detach(), rtol=0, atol=1e-6)
    assert any(not torch.equal(old, new) for old, new in zip(before, model.target.parameters()))
    assert all(p.grad is None for p in model.target.parameters())


@pytest.mark.slow
def test_a_momentum_encoder_trains_and_resumes_through_the_trainer(momentum_encoder):
    """Two epochs end to end (the per-sample losses drive BCL's weights), and a checkpoint brings the
    target network back."""
    trainer = _trainer()
    records = [trainer.train_epoch() for _ in range(2)]
    assert all(np.isfinite(record.loss) for record in records)
    assert trainer.momentum.weights().std() > 0
    again = _trainer()
    again.load_state_dict(trainer.state_dict())
    for mine, theirs in zip(trainer.model.target.parameters(), again.model.target.parameters()):
        assert torch.equal(mine, theirs)
