"""Several processes (CPU, gloo, DALI CPU pipelines), as torchrun starts them: one distributed step is
one single-process step, the momentum state stays global, and `cli.py train` runs, resumes and is
evaluated under torchrun, on one "node" and on two."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bcl_dali.distributed import World
from bcl_dali.errors import UserError
from bcl_dali.policy import BoostPolicy
from bcl_dali.train.optimizers import LARS, scaled_lr
from bcl_dali.train.trainer import check_batches
from bcl_dali.pipelines.plan import EpochPlan
from tests.cli_support import run
from tests.distributed_support import epochs, one_step, spawn

TINY = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "32", "--device", "cpu",
        "--workers", "1", "--warmup-epochs", "1")


def _load(path: Path):
    return torch.load(path, weights_only=False)


@pytest.mark.slow
@pytest.mark.parametrize("method,samples", [("bcl-d", 16), ("bcl-i", 15), ("moco", 15), ("byol", 16)])
def test_one_distributed_step_is_one_single_process_step(tmp_path, method, samples):
    """2 processes at a global batch against 1 process at the same batch, from the same state and
    views, BatchNorm synchronised: every anchor meets all the other projections, SDCLR's two
    branches go through DDP, and a short last batch (15) splits 7 and 8, the padding no one's
    negative; MoCo's queue takes the global batch's keys in the single process's order (the queue
    and the key encoder are in the compared state), BYOL's loss is each rank's own. In float64, so that float32's rounding (which BatchNorm's sums over 16 x 32 x 32
    pixels turn into relative gradient noise of 1e-4) does not hide the comparison."""
    generator = torch.Generator().manual_seed(0)
    views = torch.randn(2 * samples, 32, 32, 3, generator=generator, dtype=torch.float64).permute(0, 3, 1, 2)
    indices = torch.randperm(100, generator=generator)[:samples]
    (tmp_path / "single").mkdir()
    (tmp_path / "two").mkdir()
    one_step(tmp_path / "single", method, views, indices, 16)
    spawn(2, one_step, tmp_path / "two", method, views, indices, 16)
    single = _load(tmp_path / "single" / "rank0.pt")
    ranks = [_load(tmp_path / "two" / f"rank{r}.pt") for r in range(2)]
    torch.testing.assert_close(torch.cat([r["loss"] for r in ranks]), single["loss"], rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.cat([r["loss"] for r in ranks]).mean(), single["loss"].mean(), rtol=0, atol=1e-5)
    for rank in ranks:
        assert torch.equal(rank["ema"], ranks[0]["ema"])
        torch.testing.assert_close(rank["ema"], single["ema"], rtol=0, atol=1e-5)
        for name, value in single["model"].items():
            torch.testing.assert_close(rank["model"][name], value, rtol=0, atol=1e-5, msg=name)
    moved = max((single["model"][n] - v).abs().max().item() for n, v in single["initial"].items()
                if v.dtype.is_floating_point)
    assert moved > 1e-3  # the step changed the parameters far more than the tolerance


@pytest.mark.slow
def test_momentum_state_and_plans_are_global_and_match_one_process(tmp_path):
    """BCL-I for an epoch, DALI CPU executors, each rank augmenting its share. Both ranks hold the
    same momentum vector after it, and so draw the same next plan; the vector is the single-process
    run's (float64, so the order of the sums does not show), and so is epoch 2's plan, whose boosted
    ops come from it."""
    (tmp_path / "single").mkdir()
    (tmp_path / "two").mkdir()
    epochs(tmp_path / "single", "bcl-i", 32, 1, torch.float64)
    spawn(2, epochs, tmp_path / "two", "bcl-i", 32, 1, torch.float64)
    single = _load(tmp_path / "single" / "rank0.pt")
    ranks = [_load(tmp_path / "two" / f"rank{r}.pt") for r in range(2)]
    assert torch.equal(ranks[0][0]["ema"], ranks[1][0]["ema"])
    torch.testing.assert_close(ranks[0][0]["ema"], single[0]["ema"], rtol=0, atol=1e-6)
    for epoch in range(2):
        for key in ("order", "applied", "op", "magnitude"):
            np.testing.assert_array_equal(ranks[0][epoch][key], ranks[1][epoch][key])
        for key in ("order", "applied", "op"):
            np.testing.assert_array_equal(ranks[0][epoch][key], single[epoch][key])
        np.testing.assert_allclose(ranks[0][epoch]["magnitude"], single[epoch]["magnitude"], rtol=0, atol=1e-5)
    assert ranks[1][1]["applied"].any() and not ranks[1][0]["applied"].any()


def test_batches_that_do_not_split_over_the_processes_are_refused():
    with pytest.raises(UserError, match="--batch-size 30 is the global batch and must divide by the 4 processes"):
        check_batches(1000, 30, World(0, 4))
    with pytest.raises(UserError, match="last batch of 2, too few for 4 processes"):
        check_batches(1002, 40, World(0, 4))
    check_batches(1004, 40, World(0, 4))


def test_a_plan_shards_into_every_sample_once():
    rng = np.random.default_rng(0)
    plan = EpochPlan(rng.permutation(54), 12, BoostPolicy(1).sample(rng.random(54), rng, (32, 32)))
    shards = [plan.shard(rank, 4) for rank in range(4)]
    assert all(shard.batch_size == 3 and shard.num_batches == plan.num_batches for shard in shards)
    for b in range(plan.num_batches):
        together = np.concatenate([shard.batch(b)[0] for shard in shards])
        np.testing.assert_array_equal(together, plan.batch(b)[0])
        magnitudes = np.concatenate([shard.batch(b)[1].view2.op_magnitude for shard in shards])
        np.testing.assert_array_equal(magnitudes, plan.batch(b)[1].view2.op_magnitude)
    assert [len(shard.batch(4)[0]) for shard in shards] == [1, 2, 1, 2]


def test_lars_scales_each_weights_step_by_its_trust_ratio_and_spares_one_dimensional_tensors():
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))
    bias = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    weight.grad, bias.grad = torch.tensor([[0.6, 0.8]]), torch.tensor([0.5, 0.5])
    LARS([weight, bias], lr=0.1, momentum=0.9, weight_decay=0.1).step()
    update = torch.tensor([[0.6, 0.8]]) + 0.1 * torch.tensor([[3.0, 4.0]])  # |w| = 5, |g + wd w| = 1.5
    torch.testing.assert_close(weight.detach(), torch.tensor([[3.0, 4.0]]) - 0.1 * (1e-3 * 5 / 1.5) * update)
    torch.testing.assert_close(bias.detach(), torch.tensor([0.95, -1.05]))  # plain SGD, no weight decay


def test_learning_rate_rules_follow_simclr():
    assert scaled_lr(0.3, "linear", 4096) == pytest.approx(4.8)
    assert scaled_lr(0.075, "sqrt", 4096) == pytest.approx(4.8)
    assert scaled_lr(0.5, "none", 4096) == 0.5


@pytest.mark.slow
def test_bench_train_reports_samples_per_second_per_world_size(tmp_path):
    report = tmp_path / "scaling.json"
    result = run("bench", "train", "--method", "bcl-i", "--device", "cpu", "--epochs", "2", "--batch-size", "64",
                 "--width", "16", "--num-classes", "3", "--nproc", "2", "--json", report)
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    assert [row["world_size"] for row in figures["runs"]] == [1, 2]
    assert all(row["samples_per_second"] > 0 for row in figures["runs"])
    assert "world size 2" in result.output
