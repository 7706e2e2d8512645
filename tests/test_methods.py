"""The methods by name: each owns its model, gradient step, epoch hook and policy."""
from __future__ import annotations

import pytest
import torch

from bcl_dali.config import TrainConfig
from bcl_dali.errors import UserError
from bcl_dali.methods import METHODS, Contrast, Method
from models import SDCLR, SimCLR


def test_the_papers_four_methods_with_their_presets():
    presets = {name: (type(method.build_model("resnet18", 16)), method.rand_k, method.weight_decay)
               for name, method in METHODS.items()}
    assert presets == {"simclr": (SimCLR, 0, 5e-4), "bcl-i": (SimCLR, 1, 5e-4),
                       "sdclr": (SDCLR, 0, 1e-4), "bcl-d": (SDCLR, 2, 1e-4)}
    resolved = TrainConfig(method="bcl-d").resolve()
    assert (resolved.rand_k, resolved.weight_decay) == (2, 1e-4)
    assert METHODS["bcl-d"].policy(resolved).k == 2


def test_a_method_class_with_a_name_registers_itself():
    class Probe(METHODS["simclr"].__class__):
        name = "probe"

    try:
        assert Probe in Method.registered
    finally:
        Method.registered.remove(Probe)


@pytest.mark.parametrize("name", list(METHODS))
def test_gradient_step_returns_per_sample_losses_and_fills_gradients(name):
    torch.manual_seed(0)
    method = METHODS[name]
    model = method.build_model("resnet18", 16)
    method.start_epoch(model, TrainConfig(method=name).resolve())
    views = torch.randn(12, 3, 32, 32)
    loss = method.gradients(model, model, views, Contrast(0.2, 6, 6), _full_precision)
    assert loss.shape == (6,) and not loss.requires_grad and torch.isfinite(loss).all()
    convs = [p for n, p in model.named_parameters() if p.ndim == 4]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in convs)


def _full_precision():
    return torch.autocast("cpu", enabled=False)


def test_sdclr_prunes_at_every_epoch_start():
    model = METHODS["sdclr"].build_model("resnet18", 16)
    mask = model.backbone.stem[0].mask
    assert mask.all()
    METHODS["sdclr"].start_epoch(model, TrainConfig(method="sdclr").resolve())
    assert 0 < mask.float().mean() < 1


def test_a_method_refuses_what_it_cannot_train():
    with pytest.raises(UserError, match="SDCLR needs --prune-ratio > 0"):
        TrainConfig(method="bcl-d", prune_ratio=0.0).resolve()
    assert TrainConfig(method="bcl-i", prune_ratio=0.0).resolve().prune_ratio == 0.0
