"""BCL's central line: sample i's weight decides sample i's RandAugment ops, whatever the epoch's
shuffled order, from the trainer's plan through either executor."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bcl_dali.data import ArrayImages
from bcl_dali.config import TrainConfig
from bcl_dali.train.trainer import Trainer
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.inputs import ResidentInput
from bcl_dali.pipelines.params import AugParams
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import ReferenceExecutor
from tests.augmentation_cases import natural_images, reference_views, to_uint8

CPU = torch.device("cpu")

HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")
"""Every way Python code can pull a tensor's value to the host. On CUDA each one blocks until the
GPU has caught up; torch's own data-dependent syncs (nonzero, masked_select...) are caught on a GPU
by torch.cuda.set_sync_debug_mode in tests/test_gpu.py."""
ATEN_HOST_READS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select")
"""The same reads made inside torch's own operators (a foreach op taking a tensor scalar reads it with
item()), seen on the CPU by the profiler."""


def _trainer(method: str) -> Trainer:
    config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=3, width=16, batch_size=16, epochs=2,
                         device="cpu").resolve()
    return Trainer(config, config.load_data(), CPU, executor=None)


def test_plan_gives_each_sample_the_magnitude_of_its_own_weight():
    """BCL-I: m = 10 + 20 w for the sample in each row; pairing rows with weights in any other order
    (e.g. weights instead of weights[order]) breaks it."""
    trainer = _trainer("bcl-i")
    trainer.momentum.ema = torch.randn(trainer.num_samples, generator=torch.Generator().manual_seed(0))
    trainer.momentum.end_epoch()
    weights = trainer.momentum.weights().numpy().astype(np.float64)
    plan, planned_weights = trainer.plan_epoch()
    assert not np.array_equal(plan.order, np.arange(trainer.num_samples))
    np.testing.assert_array_equal(planned_weights, weights)
    for view in plan.params.views:
        np.testing.assert_allclose(view.op_magnitude[:, 0], 10 + 20 * weights[plan.order], atol=1e-5)


def _half_boosted(trainer: Trainer) -> np.ndarray:
    """Losses that put the first half of the samples at weight 0 and the last half at weight 1
    (a middle sample, if the count is odd, at the mean loss: weight 1/2)."""
    n = trainer.num_samples
    half = n // 2
    losses = np.zeros(n, np.float32)
    losses[:half], losses[n - half:] = -1.0, 1.0
    trainer.momentum.ema = torch.as_tensor(losses)
    trainer.momentum.end_epoch()
    weights = trainer.momentum.weights().numpy()
    np.testing.assert_array_equal(weights, losses / 2 + 0.5)
    return weights


@pytest.mark.parametrize("method", ["bcl-i", "bcl-d"])
def test_plan_applies_ops_exactly_to_the_boosted_samples(method):
    trainer = _trainer(method)
    weights = _half_boosted(trainer)
    plan, _ = trainer.plan_epoch()
    decided = weights[plan.order] != 0.5
    for view in plan.params.views:
        expected = np.repeat(weights[plan.order][:, None] == 1.0, view.num_slots, 1)
        np.testing.assert_array_equal(view.op_applied[decided], expected[decided])


def _executors(images: np.ndarray, batch: int) -> dict:
    return {"dali": DaliExecutor(ResidentInput(images), size=32, num_slots=2, batch_size=batch, device=CPU, threads=2),
            "reference": ReferenceExecutor(ArrayImages(images), size=32)}


@pytest.mark.parametrize("name", ["dali", "reference"])
def test_executor_augments_each_sample_as_its_row_of_the_plan_says(name):
    """Weight 1 for samples 20..39, 0 for 0..19, in a shuffled order: each executor's views of a
    weight-0 sample equal its views with every op switched off, and a weight-1 sample's do not; and
    the views with ops switched off are PIL's of that sample's own image."""
    images = natural_images(40, seed=11)
    trainer = _trainer("bcl-d")
    rng = np.random.default_rng(12)
    order = rng.permutation(40)
    params = trainer.planner.policy.sample((order >= 20).astype(np.float64), rng, (32, 32))
    plain = AugParams(*(replace(view, op_applied=np.zeros_like(view.op_applied)) for view in params.views))
    executor = _executors(images, batch=16)[name]
    boosted_batches = [(indices, views.clone()) for indices, views in executor.epoch(EpochPlan(order, 16, params))]
    plain_batches = [(indices, views.clone()) for indices, views in executor.epoch(EpochPlan(order, 16, plain))]
    changed = {}
    for b, ((indices, views), (same_indices, plain_views)) in enumerate(zip(boosted_batches, plain_batches)):
        assert torch.equal(indices, same_indices)
        rows = EpochPlan(order, 16, plain).batch(b)[1]
        np.testing.assert_array_equal(to_uint8(plain_views), np.concatenate(
            [reference_views(images[indices.numpy()], view) for view in rows.views]))
        first, second = views.float().chunk(2)
        plain_first, plain_second = plain_views.float().chunk(2)
        for j, sample in enumerate(indices.tolist()):
            changed[sample] = not (torch.equal(first[j], plain_first[j]) and torch.equal(second[j], plain_second[j]))
    assert sorted(changed) == list(range(40))
    assert not any(changed[i] for i in range(20))
    assert np.mean([changed[i] for i in range(20, 40)]) >= 0.9


@pytest.mark.parametrize("method", ["bcl-i", "bcl-d", "moco", "byol"])
def test_training_step_reads_nothing_back_to_the_host(method, monkeypatch):
    config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=3, width=16, batch_size=16,
                         epochs=2, device="cpu").resolve()
    trainer = Trainer(config, config.load_data(), torch.device("cpu"), executor=None)
    trainer.momentum.end_epoch()  # the EMA branch of the update, as in every epoch after the first
    views = torch.randn(32, 32, 32, 3).permute(0, 3, 1, 2)
    indices = torch.arange(16)
    trainer.train_step(indices, views, 16)  # warm-up outside the counted region
    reads = []

    def refuse(name):
        def read(tensor, *args, **kwargs):
            reads.append(name)
            return original[name](tensor, *args, **kwargs)
        return read

    original = {name: getattr(torch.Tensor, name) for name in HOST_READS}
    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, refuse(name))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as step:
        loss = trainer.train_step(indices + 16, views, 16)
    monkeypatch.undo()
    assert reads == []
    assert not [e.name for e in step.events() if e.name in ATEN_HOST_READS]
    assert loss.shape == (16,) and torch.isfinite(loss).all()
