"""Image folders through the DALI graph's file input: decoded once per sample and augmented as the PIL reference executor does; an epoch left early releases its files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bcl_dali.data import load_data
from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.inputs import FileInput
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import ReferenceExecutor
from bcl_dali.pipelines.resize import vertical_first
from tests.augmentation_cases import FAR_TOLERANCE, MEAN_TOLERANCE, levels
from tests.folders import SIZE, lists


@pytest.mark.parametrize("k", [0, 2])
def test_dali_decodes_and_augments_as_the_pil_reference(folder, k):
    """The same plan, with the recipe's crop scale and blur, through both executors: the same samples
    in the same order, and views within F's tolerance; with no RandAugment op, views whose resize
    starts horizontally are PIL's exactly."""
    files = load_data("folder", data_dir=folder, lists=lists(folder)).train.images
    rng = np.random.default_rng(k)
    order = rng.permutation(len(files))[:96]
    params = BoostPolicy(k, crop_scale=(0.08, 1.0), blur=True).sample(rng.random(len(order)), rng,
                                                                      (files.heights[order], files.widths[order]))
    assert 0.3 < (params.view1.blur > 0).mean() < 0.7
    plan = EpochPlan(order, 48, params)
    dali = DaliExecutor(FileInput(files), size=SIZE, num_slots=k, batch_size=48, device=torch.device("cpu"), threads=2,
                              dtype=torch.float32, blur=True)
    reference = ReferenceExecutor(files, size=SIZE)
    batches = 0
    for (dali_indices, dali_views), (reference_indices, reference_views) in zip(dali.epoch(plan), reference.epoch(plan)):
        np.testing.assert_array_equal(np.asarray(dali_indices), np.asarray(reference_indices))
        ours, theirs = levels(dali_views), levels(reference_views)
        difference = np.abs(ours - theirs)
        assert difference.mean() <= MEAN_TOLERANCE and (difference > 8).mean() <= FAR_TOLERANCE
        if k == 0:
            rows = np.asarray(dali_indices)
            crops = np.concatenate([params.view1.crop, params.view2.crop])
            position = {sample: r for r, sample in enumerate(order)}
            box = np.stack([crops[position[s] + offset * len(order)] for offset in (0, 1) for s in rows])
            exact = ~vertical_first(box[:, 2], box[:, 3], SIZE)
            assert exact.sum() > len(exact) // 2
            np.testing.assert_array_equal(ours[exact], theirs[exact])
        batches += 1
    assert batches == 2


def test_an_epoch_left_early_keeps_no_files_lent(folder):
    """DALI reads each iteration's encoded files without a copy, so the executor keeps them until DALI
    hands the iteration out; an epoch left early is run out before the next, and its files go then.
    Mutation caught: the run-out counted from iteration 0 (its files kept under keys the next epoch
    may never reach)."""
    files = load_data("folder", data_dir=folder, lists=lists(folder)).train.images
    rng = np.random.default_rng(0)
    order = rng.permutation(len(files))[:64]
    plan = EpochPlan(order, 8, BoostPolicy(0, crop_scale=(0.08, 1.0), blur=True).sample(
        rng.random(len(order)), rng, (files.heights[order], files.widths[order])))
    executor = DaliExecutor(FileInput(files), size=SIZE, num_slots=0, batch_size=8, device=torch.device("cpu"), threads=2,
                                  blur=True)
    batches = executor.epoch(plan)
    for _ in range(3):
        next(batches)
    batches.close()
    short = EpochPlan(order[:16], 8, plan.params.select(slice(0, 16)))
    assert len(list(executor.epoch(short))) == 2
    assert executor.input._lent == {}
