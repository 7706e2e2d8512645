"""End-to-end training throughput: ours, ours with the PIL executor, and the reference configuration.

Both run whole epochs on the built-in synthetic-lt training set (9,754 images, CIFAR-100-LT's
size and profile) with the same model size, batch and policy; the first epoch (graph build, cuDNN
autotuning, worker start-up) is excluded. The reference configuration is the reference code's
way of training: fp32, NCHW, the PIL executor in DataLoader worker processes (one per core), the
per-sample Python loop that updates the momentum loss, and a loss read back to the host every
step. Between the two, our trainer fed by the PIL executor in one worker process per core isolates
what the DALI graph itself brings. The ratios are measured in the same process.
"""
from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bcl_dali.config import TrainConfig
from bcl_dali.data.generated_jpegs import GENERATED_FILES, given_or_generated
from bcl_dali.distributed import World
from bcl_dali.errors import UserError
from bcl_dali.train.executors import build_executor
from bcl_dali.methods import METHODS, BatchShare
from bcl_dali.train.momentum import MomentumLoss
from bcl_dali.train.schedule import lr_at
from bcl_dali.train.trainer import Trainer, check_batch_split
from bcl_dali.benchmarks import child_environment
from bcl_dali.benchmarks.timing import gpu_name, synchronize
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import ReferenceExecutor

SCALING_TIMEOUT_S = 3600


def measure_training(method: str, device: torch.device, epochs: int, batch_size: int = 512, width: int = 64,
                     compile_model: bool = False, num_classes: int = 100, executor: str = "dali",
                     folder: Path | None = None, image_size: int | None = None, cuda_graphs: str = "none") -> dict:
    """Our training loop (the `train` command's, without evaluation or checkpoints); under torchrun,
    on every process, `batch_size` being the global batch. With `folder` (a root holding train.txt
    and test.txt), the ImageNet-LT recipe on its files: ResNet-50, decode and augmentation to
    `image_size` (224) views."""
    data = {"dataset": "synthetic-lt", "num_classes": num_classes}
    if folder is not None:
        data = {"dataset": "folder", "data_dir": str(folder), "train_list": str(folder / "train.txt"),
                "test_list": str(folder / "test.txt"), "image_size": image_size}
    config = TrainConfig(method=method, width=width, batch_size=batch_size, epochs=epochs, device=str(device),
                         compile=compile_model, executor=executor, cuda_graphs=cuda_graphs, **data).resolve()
    world = World.from_environment()
    device = world.device(device)
    world.start(device)
    data = config.load_data()
    trainer = Trainer(config, data, device, build_executor(config, data, device, world), world)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return _result("ours" if executor == "dali" else "ours, PIL executor", config, device, trainer.num_samples,
                   seconds) | {"world_size": world.size}


def measure_scaling(method: str, device: torch.device, epochs: int, batch_size: int, width: int, nproc: int,
                    num_classes: int = 100) -> dict:
    """The same training under torchrun at each world size from 1 to `nproc` (powers of two, and
    `nproc`): samples/s of the whole run for each, the global batch fixed."""
    sizes = sorted({2 ** i for i in range(nproc.bit_length()) if 2 ** i <= nproc} | {nproc})
    for size in sizes:
        check_batch_split(batch_size, World(0, size))
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            report = Path(scratch) / f"world{size}.json"
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={size}",
                       "-m", "bcl_dali", "bench", "train", "--method", method, "--device", device.type, "--epochs",
                       str(epochs), "--batch-size", str(batch_size), "--width", str(width), "--num-classes",
                       str(num_classes), "--json", str(report)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=SCALING_TIMEOUT_S,
                                  env=child_environment())
            if done.returncode != 0:
                reason = next((line for line in done.stderr.splitlines() if "error:" in line), "see torchrun's output")
                raise UserError(f"torchrun with {size} processes failed: {reason.strip()}")
            runs.append(json.loads(report.read_text()))
    return {"benchmark": "scaling", "method": method, "device": device.type, "batch_size": batch_size,
            "runs": runs}


def measure_reference(method: str, device: torch.device, epochs: int, batch_size: int = 512,
                      width: int = 64, num_classes: int = 100) -> dict:
    """The reference configuration (see the module docstring) on the same data and policy."""
    config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=num_classes, width=width,
                         batch_size=batch_size, epochs=epochs, device=str(device), executor="reference",
                         precision="fp32").resolve()
    data = config.load_data()
    torch.manual_seed(config.seed)
    method = METHODS[config.method](config.method_settings())
    model = method.build_model(config.arch, config.width).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    images = data.train.images
    executor = ReferenceExecutor(images, size=images.view_size(0), workers=config.worker_count)
    momentum = MomentumLoss(len(data.train.labels), config.beta, device, norm=config.weight_norm)
    policy = config.boost_policy()
    rng = np.random.default_rng(0)
    steps_per_epoch = math.ceil(len(data.train.labels) / batch_size)
    method.begin(epochs * steps_per_epoch, batch_size)
    step, seconds = 0, []
    for epoch in range(epochs):
        start = time.perf_counter()
        weights = momentum.weights().cpu().numpy()
        order = rng.permutation(len(weights))
        plan = EpochPlan(order, batch_size, policy.sample(weights[order], rng, images.sizes(order)))
        method.start_epoch(model)
        model.train()
        for indices, views in executor.epoch(plan):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config.lr, epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch)
            optimizer.zero_grad()
            loss = method.gradients(model, views.to(device), BatchShare.of(len(indices)), contextlib.nullcontext)
            _per_sample_momentum_loop(momentum, indices, loss, epoch, config.beta)
            optimizer.step()
            with torch.no_grad():
                method.after_step(model)
            float(loss.mean().detach().cpu())
            step += 1
        momentum.end_epoch()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return _result("reference", config, device, len(data.train.labels), seconds)


def _per_sample_momentum_loop(momentum: MomentumLoss, indices: torch.Tensor, loss: torch.Tensor, epoch: int,
                              beta: float) -> None:
    """The reference's update: one Python iteration (and small kernels) per sample."""
    for count in range(indices.size()[0]):
        if epoch > 0:
            momentum.ema[indices[count]] = (1.0 - beta) * loss[count].clone().detach() + beta * momentum.ema[indices[count]]
        else:
            momentum.ema[indices[count]] = loss[count].clone().detach()


def _result(configuration: str, config: TrainConfig, device: torch.device, samples: int, seconds: list[float]) -> dict:
    timed = seconds[1:] or seconds
    return {"benchmark": "train", "configuration": configuration, "method": config.method, "device": str(device),
            "gpu": gpu_name(device), "dataset": config.dataset, "arch": config.arch, "image_size": config.image_size,
            "batch_size": config.batch_size, "width": config.width, "epochs": len(seconds),
            "executor": config.executor, "workers": config.worker_count, "precision": config.precision,
            "compile": config.compile, "cuda_graphs": config.cuda_graphs, "epoch_seconds": seconds,
            "samples_per_second": samples * len(timed) / sum(timed)}


def compare(method: str, device: torch.device, epochs: int, batch_size: int, width: int,
            compile_model: bool = False, num_classes: int = 100) -> dict:
    ours = measure_training(method, device, epochs, batch_size, width, compile_model, num_classes)
    pil = measure_training(method, device, epochs, batch_size, width, compile_model, num_classes, executor="reference")
    reference = measure_reference(method, device, epochs, batch_size, width, num_classes)
    return {"benchmark": "compare", "method": method, "device": str(device), "gpu": gpu_name(device),
            "ours": ours, "ours_pil_executor": pil, "reference": reference,
            "speedup": ours["samples_per_second"] / reference["samples_per_second"],
            "speedup_over_pil_executor": ours["samples_per_second"] / pil["samples_per_second"]}


def summary(result: dict) -> str:
    if result["benchmark"] == "scaling":
        return "\n".join(f"train {row['method']} on {row['device']}, world size {row['world_size']}: "
                         f"{row['samples_per_second']:,.0f} samples/s (global batch {row['batch_size']})"
                         for row in result["runs"])
    if result["benchmark"] == "compare":
        return (f"train {result['method']} on {result['device']}: ours {result['ours']['samples_per_second']:,.0f} "
                f"samples/s; ours with the PIL executor ({result['ours_pil_executor']['workers']} workers) "
                f"{result['ours_pil_executor']['samples_per_second']:,.0f} samples/s "
                f"({result['speedup_over_pil_executor']:.2f}x); reference configuration "
                f"{result['reference']['samples_per_second']:,.0f} samples/s ({result['speedup']:.2f}x)")
    on = (f", {result['arch']} on {result['image_size']}-pixel views of JPEG files"
          if result.get("dataset") == "folder" else "")
    return (f"train {result['method']} ({result['configuration']}) on {result['device']}: "
            f"{result['samples_per_second']:,.0f} samples/s (batch {result['batch_size']}, width {result['width']}"
            f"{on}, {result['epochs']} epochs, first excluded)")


def run_train_benchmark(method: str, device: torch.device, epochs: int, batch_size: int, width: int, *,
                        compile_model: bool = False, num_classes: int = 100, against_reference: bool = False,
                        nproc: int | None = None, dataset: str = "synthetic-lt", data_dir: Path | None = None,
                        image_size: int = 224, files: int = GENERATED_FILES, cuda_graphs: str = "none",
                        echo: Callable[[str], None] = lambda _: None) -> dict:
    """`bench train`: our loop on synthetic-lt, against the reference configuration, across world
    sizes, or with the ImageNet-LT recipe on JPEG files (generated without `data_dir`)."""
    if cuda_graphs != "none" and (nproc is not None or against_reference):
        raise UserError(f"--cuda-graphs {cuda_graphs} measures one process of ours; drop it with --nproc or "
                        "--against-reference")
    if dataset == "folder":
        if nproc is not None or against_reference:
            raise UserError("--dataset folder measures our loop on one process; drop --nproc and --against-reference")
        with given_or_generated(data_dir, files, echo) as root:
            return measure_training(method, device, epochs, batch_size, width, compile_model, folder=root,
                                    image_size=image_size, cuda_graphs=cuda_graphs)
    if nproc is not None:
        return measure_scaling(method, device, epochs, batch_size, width, nproc, num_classes)
    if against_reference:
        return compare(method, device, epochs, batch_size, width, compile_model, num_classes)
    return measure_training(method, device, epochs, batch_size, width, compile_model, num_classes,
                            cuda_graphs=cuda_graphs)
