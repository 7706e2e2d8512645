"""What only a GPU can show. `python -m pytest -m gpu` on a lent machine runs them all; without CUDA
they are skipped."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bcl_dali.config import TrainConfig
from bcl_dali.data import load_data
from bcl_dali.data.folder import FolderLists
from bcl_dali.data.generated_jpegs import write_jpeg_folder
from bcl_dali.policy import BoostPolicy
from bcl_dali.report.views import denormalize
from bcl_dali.train.executors import build_executor
from bcl_dali.train.meter import RunningMean
from bcl_dali.train.trainer import Trainer
from bcl_dali.benchmarks.handoff_stress import stress_handoff
from bcl_dali.pipelines.dali_executor import DaliExecutor, epoch_table
from bcl_dali.pipelines.inputs import FileInput, ResidentInput
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import ReferenceExecutor
from tests.augmentation_cases import FAR_TOLERANCE, MEAN_TOLERANCE, levels, natural_images, reference_views
from tests.cli_support import run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
CUDA = torch.device("cuda")


def _plan(n: int, k: int, seed: int, batch: int = 16) -> EpochPlan:
    rng = np.random.default_rng(seed)
    return EpochPlan(rng.permutation(n), batch, BoostPolicy(k).sample(rng.random(n), rng, (32, 32)))


@pytest.mark.parametrize("k", [0, 1, 2])
def test_gpu_graph_computes_the_cpu_graphs_numbers(k):
    """Three batches per DALI iteration on the GPU (dense stages on DALI's stream), a short last
    iteration, two epochs: float32 views equal to the CPU graph's (sparse stages) and PIL's. Every
    stage is integer or IEEE arithmetic in separate kernels, so the devices agree bit for bit."""
    images = natural_images(200, seed=k)
    plans = [_plan(200, k, seed=k + epoch, batch=20) for epoch in range(2)]
    on_gpu = DaliExecutor(ResidentInput(images), size=32, num_slots=k, batch_size=20, device=CUDA, threads=2, dtype=torch.float32,
                          batches_together=3)
    on_cpu = DaliExecutor(ResidentInput(images), size=32, num_slots=k, batch_size=20, device=torch.device("cpu"), threads=2,
                          dtype=torch.float32)
    for plan in plans:
        gpu_batches = [(i.cpu(), views.cpu()) for i, views in on_gpu.epoch(plan)]
        cpu_batches = [(i, views.clone()) for i, views in on_cpu.epoch(plan)]
        assert len(gpu_batches) == len(cpu_batches) == plan.num_batches == 10
        for b, ((gpu_indices, gpu_views), (cpu_indices, cpu_views)) in enumerate(zip(gpu_batches, cpu_batches)):
            assert torch.equal(gpu_indices, cpu_indices)
            unequal = (gpu_views != cpu_views).float().mean().item()
            print(f"k={k} batch {b}: GPU vs CPU unequal values {unequal:.6f}, "
                  f"max |difference| {(gpu_views - cpu_views).abs().max().item():.6f}")
            assert torch.equal(gpu_views, cpu_views)
            order, params = plan.batch(b)
            reference = np.concatenate([reference_views(images[order], view) for view in params.views])
            np.testing.assert_array_equal(denormalize(gpu_views), reference)


def test_views_read_late_are_the_views_dali_made():
    """The hand-off under stress (benchmarks/handoff_stress.py): every batch copied at once and again
    after a long sleep queued on the consumer's stream, while DALI runs ahead. Fails if an output goes
    back to DALI before the consumer's stream has read it (pipelines.handoff)."""
    result = stress_handoff(CUDA, natural_images(256, seed=5), batch_size=32, batches=24)
    assert result["batches"] == 24 and result["views_differing"] == 0


@pytest.mark.parametrize("k", [1, 2])
def test_the_augmentation_replayed_from_a_cuda_graph_is_the_eager_one(k):
    """Two epochs with a short last iteration (a second captured shape): the replayed views equal the
    eager ones bit for bit, and each shape is captured once."""
    images = natural_images(200, seed=k)
    plans = [_plan(200, k, seed=k + epoch, batch=20) for epoch in range(2)]
    graphed = DaliExecutor(ResidentInput(images), size=32, num_slots=k, batch_size=20, device=CUDA, threads=2, dtype=torch.float32,
                           batches_together=3, graph=True)
    eager = DaliExecutor(ResidentInput(images), size=32, num_slots=k, batch_size=20, device=CUDA, threads=2, dtype=torch.float32,
                         batches_together=3)
    for plan in plans:
        for (i, views), (j, expected) in zip([(i, v.clone()) for i, v in graphed.epoch(plan)],
                                             [(i, v.clone()) for i, v in eager.epoch(plan)]):
            assert torch.equal(i, j) and torch.equal(views, expected)
    assert graphed.operator.graph.captured == 2


@pytest.mark.parametrize("method", ["bcl-i", "bcl-d", "moco", "byol"])
def test_the_graphed_step_trains_as_the_eager_step(method):
    """Three epochs of the same run eager and with the step replayed from CUDA graphs (both momentum
    phases, the short last batch eager): the same losses and momentum state up to the float32 learning
    rate the graph reads and cuDNN's run-to-run differences."""
    runs = []
    for graphs in ("none", "step"):
        config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=10, width=16, batch_size=64,
                             epochs=3, device="cuda", cuda_graphs=graphs).resolve()
        data = config.load_data()
        trainer = Trainer(config, data, CUDA, build_executor(config, data, CUDA))
        losses = [trainer.train_epoch().loss for _ in range(3)]
        runs.append((losses, trainer.momentum.ema.clone(), trainer))
    (eager_losses, eager_ema, _), (graph_losses, graph_ema, graphed) = runs
    assert graphed.graphed.captured == 1
    np.testing.assert_allclose(graph_losses, eager_losses, rtol=2e-2)
    assert torch.allclose(graph_ema, eager_ema, rtol=5e-2, atol=5e-2)


def test_a_folder_epoch_at_large_views_never_synchronises_with_the_host(tmp_path):
    """The sparse schedule on the GPU (views over 64 pixels): each step's rows and the resize's chunks
    come from the host plan, so after the epoch's uploads nothing reads back."""
    root = write_jpeg_folder(tmp_path, [60, 40, 20], 2, sides=(40, 300))
    files = load_data("folder", data_dir=root, lists=FolderLists(str(root / "train.txt"), str(root / "test.txt"))).train.images
    rng = np.random.default_rng(0)
    order = rng.permutation(len(files))
    plan = EpochPlan(order, 24, BoostPolicy(2, crop_scale=(0.08, 1.0), blur=True).sample(
        rng.random(len(order)), rng, (files.heights[order], files.widths[order])))
    executor = DaliExecutor(FileInput(files), size=96, num_slots=2, batch_size=24, device=CUDA, threads=2,
                                  batches_together=1, blur=True)
    list(executor.epoch(plan))  # every lazily made table and constant exists after a whole epoch
    batches = executor.epoch(plan)
    next(batches)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        assert len(list(batches)) == plan.num_batches - 1
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_a_gpu_epoch_never_synchronises_with_the_host():
    """After an epoch's uploads (once per epoch) nothing reads back: the stages of the iterations
    DALI runs while the debug mode is on raise on any synchronisation, and DALI reports it."""
    images = natural_images(160, seed=3)
    executor = DaliExecutor(ResidentInput(images), size=32, num_slots=2, batch_size=16, device=CUDA, threads=2, batches_together=1)
    list(executor.epoch(_plan(160, 2, seed=3)))
    batches = executor.epoch(_plan(160, 2, seed=4))
    next(batches)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        assert len(list(batches)) == 9
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_views_reach_the_model_without_a_copy():
    """float16 NHWC from DALI is a channels_last NCHW tensor: under bf16 autocast a training step feeds
    it to the model as it is (no permute, no dtype or layout copy): the model's forward receives the
    executor's own memory. Fails if the step copies the views (e.g. a cast to the model's float32)."""
    config = TrainConfig(dataset="synthetic-lt", num_classes=3, width=16, batch_size=16, epochs=1,
                         device="cuda").resolve()
    data = config.load_data()
    trainer = Trainer(config, data, CUDA, build_executor(config, data, CUDA))
    plan, _ = trainer.plan_epoch()
    indices, views = next(iter(trainer.executor.epoch(plan)))
    assert views.dtype == torch.float16 and views.is_contiguous(memory_format=torch.channels_last)
    received = []
    hook = trainer.model.register_forward_pre_hook(lambda module, args: received.append(args[0]))
    try:
        trainer.train_step(indices, views, len(indices))
    finally:
        hook.remove()
    assert trainer.bf16 and len(received) == 1
    assert received[0].data_ptr() == views.data_ptr() and received[0].dtype == torch.float16
    assert received[0].shape == views.shape and received[0].stride() == views.stride()


def test_images_and_the_epoch_table_stay_on_the_gpu():
    """The images live on the GPU, the epoch's order and parameter table are uploaded once when the
    epoch starts (torch's device memory grows by at least the table's size and stays grown), and
    the indices handed out are slices of the device-resident order. Fails if the table is kept on
    the host (then only the order's few hundred bytes are allocated on the device)."""
    images = natural_images(40, seed=1)
    executor = DaliExecutor(ResidentInput(images), size=32, num_slots=1, batch_size=16, device=CUDA, threads=2)
    assert executor.augmentation.columns.is_cuda
    plan = _plan(40, 1, seed=1)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated(CUDA)
    batches = list(executor.epoch(plan))
    assert len(batches) == plan.num_batches and all(indices.is_cuda for indices, _ in batches)
    assert torch.equal(torch.cat([indices for indices, _ in batches]).cpu(), torch.as_tensor(plan.order))
    assert torch.cuda.memory_allocated(CUDA) - before >= epoch_table(plan, 32).nbytes


@pytest.mark.parametrize("method", ["bcl-d", "moco", "byol"])
def test_training_step_never_synchronises_with_the_host(method):
    """bf16 autocast and channels_last views, as training runs on a GPU; MoCo's queue and BYOL's
    momentum schedule are device work too."""
    config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=3, width=16, batch_size=16,
                         epochs=2, device="cuda", queue_size=64).resolve()
    trainer = Trainer(config, config.load_data(), CUDA, executor=None)
    trainer.momentum.end_epoch()
    views = torch.randn(32, 32, 32, 3, device=CUDA, dtype=torch.float16).permute(0, 3, 1, 2)
    indices = torch.arange(16, device=CUDA)
    trainer.train_step(indices, views, 16)
    torch.cuda.synchronize()
    mean_loss = RunningMean(CUDA)
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.method.start_epoch(trainer.model)
        for _ in range(3):
            mean_loss.add(trainer.train_step(indices, views, 16))
            mean_loss.peek()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@pytest.mark.parametrize("method", ["bcl-i", "bcl-d", "moco", "byol"])
def test_short_training_run_on_the_gpu(tmp_path, method):
    result = run("train", "--method", method, "--boost", "2" if method == "bcl-d" else "1", "--dataset", "synthetic-lt",
                 "--num-classes", "10", "--epochs", "2", "--batch-size", "64", "--device", "cuda", "--out", tmp_path / method)
    assert result.exit_code == 0, result.output
    assert "kNN top-1" in result.stdout


@pytest.mark.parametrize("k, size", [(0, 64), (2, 64), (2, 96)])
def test_gpu_decodes_folders_as_pil_does(tmp_path, k, size):
    """nvJPEG's crop decode ("mixed"), the resize, the blur and every stage on the GPU (dense at 64
    pixels, sparse above), several batches per iteration and a short last one: the same samples as
    the PIL reference, views within F's tolerance (nvJPEG's IDCT may differ from libjpeg's by a level)."""
    root = write_jpeg_folder(tmp_path, [60, 40, 20], 2, sides=(40, 300))
    files = load_data("folder", data_dir=root, lists=FolderLists(str(root / "train.txt"), str(root / "test.txt"))).train.images
    rng = np.random.default_rng(k)
    order = rng.permutation(len(files))
    plan = EpochPlan(order, 24, BoostPolicy(k, crop_scale=(0.08, 1.0), blur=True).sample(
        rng.random(len(order)), rng, (files.heights[order], files.widths[order])))
    on_gpu = DaliExecutor(FileInput(files), size=size, num_slots=k, batch_size=24, device=CUDA, threads=2,
                                dtype=torch.float32, batches_together=2, blur=True)
    batches = 0
    for (gpu_indices, gpu_views), (ref_indices, ref_views) in zip(on_gpu.epoch(plan), ReferenceExecutor(files, size).epoch(plan)):
        np.testing.assert_array_equal(gpu_indices.cpu().numpy(), ref_indices.numpy())
        difference = np.abs(levels(gpu_views.cpu()) - levels(ref_views))
        assert difference.mean() <= MEAN_TOLERANCE and (difference > 8).mean() <= FAR_TOLERANCE
        batches += 1
    assert batches == plan.num_batches
