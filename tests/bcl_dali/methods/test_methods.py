"""The methods by name: each owns its settings, model, loss, gradient step and hooks (MoCo's and
BYOL's own: tests/bcl_dali/methods/test_momentum_methods.py)."""
from __future__ import annotations

import pytest
import torch

from bcl_dali.config import TrainConfig
from bcl_dali.errors import UserError
from bcl_dali.methods import METHODS, BatchShare
from bcl_dali.models import BYOL, SDCLR, MoCo, SimCLR


def test_the_papers_four_methods_and_moco_and_byol_with_their_presets():
    presets = {name: (type(method().build_model("resnet18", 16)), method.boost, method.weight_decay, method.lr)
               for name, method in METHODS.items()}
    assert presets == {"simclr": (SimCLR, 0, 5e-4, None), "bcl-i": (SimCLR, 1, 5e-4, None),
                       "sdclr": (SDCLR, 0, 1e-4, None), "bcl-d": (SDCLR, 2, 1e-4, None),
                       "moco": (MoCo, 0, 5e-4, 0.06), "byol": (BYOL, 0, 1e-5, None)}
    resolved = TrainConfig(method="bcl-d").resolve()
    assert (resolved.boost, resolved.weight_decay) == (2, 1e-4)
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
    convs = [p for p in model.parameters() if p.ndim == 4 and p.requires_grad]
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
