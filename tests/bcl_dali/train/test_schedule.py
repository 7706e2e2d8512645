import numpy as np
import pytest
import torch

from bcl_dali.train.schedule import lr_at


def reference_cosine_annealing(step, total_steps, lr_max, lr_min, warmup_steps=0):
    """The reference's utils.cosine_annealing, verbatim in behaviour."""
    if step < warmup_steps:
        return lr_max * step / warmup_steps
    return lr_min + (lr_max - lr_min) * 0.5 * (1 + np.cos((step - warmup_steps) / (total_steps - warmup_steps) * np.pi))


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_matches_reference_lambdalr_stepped_before_each_iteration():
    base, steps_per_epoch, epochs = 0.5, 20, 30
    total, warmup = epochs * steps_per_epoch, 10 * steps_per_epoch
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: reference_cosine_annealing(s, total, 1, 1e-6 / base, warmup_steps=warmup))
    for i in range(total):
        scheduler.step()  # the reference steps first, then trains with the new rate
        assert abs(optimizer.param_groups[0]["lr"] - lr_at(i, base, total, warmup)) < 1e-12
    assert abs(lr_at(total - 1, base, total, warmup) - 1e-6) < 1e-12


def test_no_warmup():
    assert lr_at(0, 1.0, 100, 0) < 1.0 and lr_at(49, 1.0, 100, 0) > 0.45
