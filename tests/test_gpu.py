"""What only a GPU can show. `python -m pytest -m gpu` on a lent machine runs them all; without CUDA
they are skipped."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from nvidia.dali import fn, pipeline_def

from pipelines import dali_graph
from pipelines.dali_graph import GraphInputs
from pipelines.dali_params import frame_input_names, graph_params

from bcl_dali.config import TrainConfig
from bcl_dali.executors import build_executor
from bcl_dali.meter import RunningMean
from bcl_dali.policy import BoostPolicy
from bcl_dali.run_training import load_run_data
from bcl_dali.show import denormalize
from bcl_dali.trainer import Trainer
from pipelines.dali_executor import DaliExecutor
from pipelines.plan import EpochPlan
from tests.augmentation_cases import natural_images
from tests.cli_support import run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
CUDA = torch.device("cuda")


def _plan(n: int, k: int, seed: int) -> EpochPlan:
    rng = np.random.default_rng(seed)
    return EpochPlan(rng.permutation(n), 16, BoostPolicy(k).sample(rng.random(n), rng, (32, 32)))


@pytest.mark.parametrize("k", [0, 1, 2])
def test_gpu_graph_builds_runs_and_agrees_with_the_cpu_graph(k):
    images = natural_images(48, seed=k)
    plan = _plan(48, k, seed=k)
    on_gpu = list(DaliExecutor(images, size=32, num_slots=k, batch_size=16, device=CUDA, threads=2).epoch(plan))
    on_cpu = list(DaliExecutor(images, size=32, num_slots=k, batch_size=16, device=torch.device("cpu"), threads=2).epoch(plan))
    assert len(on_gpu) == len(on_cpu) == plan.num_batches
    for (gpu_indices, gpu_views), (cpu_indices, cpu_views) in zip(on_gpu, on_cpu):
        assert gpu_views.is_cuda and gpu_indices.is_cuda
        assert torch.equal(gpu_indices.cpu(), cpu_indices)
        difference = np.abs(denormalize(gpu_views).astype(int) - denormalize(cpu_views).astype(int))
        print(f"k={k}: GPU vs CPU mean |difference| {difference.mean():.4f}, max {difference.max()}, "
              f"equal {np.mean(difference == 0):.4f}")
        assert difference.mean() < 0.5 and np.mean(difference == 0) > 0.9


def _run_stage(device: str, frames: np.ndarray, arrays: list[np.ndarray], names: list[str], stage) -> np.ndarray:
    @pipeline_def(batch_size=1, num_threads=2, device_id=0, prefetch_queue_depth=1)
    def graph():
        x = fn.external_source(source=lambda: [frames], layout="FHWC", device=device)
        params = fn.external_source(source=lambda: [[a] for a in arrays], num_outputs=len(names))
        return stage(x, GraphInputs(dict(zip(names, params)), device, per_frame=True))

    pipe = graph()
    pipe.build()
    (out,) = pipe.run()
    return np.array((out.as_cpu() if device == "gpu" else out)[0]).astype(np.float64)


STAGES = {
    "blend": lambda x, i: dali_graph._truncate(dali_graph.blend(
        x, i.tensor("jitter_factor0"), i.tensor("jitter_grey0"), i.tensor("jitter_mean0"))),
    "hue": lambda x, i: dali_graph.hue(x, i.tensor("hue_shift"), i.tensor("hue_active"), i),
    "grayscale": lambda x, i: dali_graph._round(fn.coord_transform(x, M=i.arg("grayscale"))),
    "rand_augment_slot": lambda x, i: dali_graph.rand_augment_slot(x, i, "slot0_", dali_graph._Frame(i, 32)),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_agrees_on_gpu_and_cpu(stage):
    """Finds the stage when the graphs disagree (DALI's GPU float64 `%` once broke the hue)."""
    rng = np.random.default_rng(0)
    frames = natural_images(32, seed=0)
    view = BoostPolicy(1).sample(rng.random(32), rng, (32, 32)).view1
    arrays, names = graph_params(view, (32, 32), 32).frame_arrays(), frame_input_names(1)
    cpu = _run_stage("cpu", frames, arrays, names, STAGES[stage])
    gpu = _run_stage("gpu", frames, arrays, names, STAGES[stage])
    tolerance = 1 if stage == "rand_augment_slot" else 0  # equalisation can round a level apart
    assert np.abs(cpu - gpu).max() <= tolerance


def test_views_reach_the_model_without_a_copy():
    """float16 NHWC from DALI is a channels_last NCHW tensor: under bf16 autocast the trainer feeds it
    to the model as it is (no permute, no dtype or layout copy)."""
    config = TrainConfig(dataset="synthetic-lt", num_classes=3, width=16, batch_size=16, epochs=1,
                         device="cuda").resolve()
    data = load_run_data(config)
    trainer = Trainer(config, data, CUDA, build_executor(config, data, CUDA))
    plan, _ = trainer.plan_epoch()
    indices, views = next(iter(trainer.executor.epoch(plan)))
    assert views.dtype == torch.float16 and views.is_contiguous(memory_format=torch.channels_last)
    assert trainer.bf16 and trainer._model_input(views).data_ptr() == views.data_ptr()


def test_training_images_stay_on_the_gpu():
    images = natural_images(40, seed=1)
    executor = DaliExecutor(images, size=32, num_slots=1, batch_size=16, device=CUDA, threads=2)
    assert executor._images.is_cuda
    list(executor.epoch(_plan(40, 1, seed=1)))
    assert executor._order.is_cuda  # batches are gathered on the device by index


def test_training_step_never_synchronises_with_the_host():
    config = TrainConfig(method="bcl-d", dataset="synthetic-lt", num_classes=3, width=16, batch_size=16,
                         epochs=2, device="cuda").resolve()
    trainer = Trainer(config, load_run_data(config), CUDA, executor=None)
    trainer.momentum.end_epoch()
    views = torch.randn(32, 32, 32, 3, device=CUDA, dtype=torch.float16).permute(0, 3, 1, 2)
    indices = torch.arange(16, device=CUDA)
    trainer.train_step(indices, views)
    torch.cuda.synchronize()
    mean_loss = RunningMean(CUDA)
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.model.prune(config.prune_ratio)
        for _ in range(3):
            mean_loss.add(trainer.train_step(indices, views))
            mean_loss.peek()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@pytest.mark.parametrize("method", ["bcl-i", "bcl-d"])
def test_short_training_run_on_the_gpu(tmp_path, method):
    result = run("train", "--method", method, "--dataset", "synthetic-lt", "--num-classes", "10",
                 "--epochs", "2", "--batch-size", "64", "--device", "cuda", "--out", tmp_path / method)
    assert result.exit_code == 0, result.output
    assert "kNN top-1" in result.stdout
