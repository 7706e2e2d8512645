"""The training step alone: forward, per-sample loss, momentum update, backward, optimiser step, on
synthetic views already on the device in the executor's format (float16 NHWC on CUDA)."""
from __future__ import annotations

import time

import torch

from bcl_dali.benchmarks.timing import gpu_name, synchronize
from bcl_dali.config import RECIPES, TrainConfig
from bcl_dali.train.trainer import Trainer

WARMUP_STEPS = 5
CIFAR_SIZE = 32


def measure_step(method: str, device: torch.device, batch_size: int, iters: int, width: int = 64,
                 compile_model: bool = False, num_classes: int = 100, recipe: str | None = None,
                 size: int | None = None, cuda_graphs: str = "none") -> dict:
    """`recipe` (imagenet-lt, places-lt): its ResNet-50 with the ImageNet stem on views of its size
    (or of `size`). `cuda_graphs` "step" or "all": the step replayed from a CUDA graph."""
    model = {} if recipe is None else {"arch": RECIPES[recipe].arch, "stem": RECIPES[recipe].stem}
    size = size or (CIFAR_SIZE if recipe is None else RECIPES[recipe].image_size)
    config = TrainConfig(method=method, dataset="synthetic-lt", num_classes=num_classes, width=width,
                         batch_size=batch_size, epochs=1, device=str(device), compile=compile_model,
                         cuda_graphs=cuda_graphs, **model).resolve()
    trainer = Trainer(config, config.load_data(), device, executor=None)
    trainer.model.train()
    views = torch.randn(2 * batch_size, size, size, 3, device=device).to(_view_dtype(trainer)).permute(0, 3, 1, 2)
    generator = torch.Generator(device=device).manual_seed(0)
    order = torch.randperm(trainer.num_samples, device=device, generator=generator)
    indices = [order[i * batch_size % (trainer.num_samples - batch_size):][:batch_size] for i in range(8)]
    for step in range(WARMUP_STEPS + iters):
        if step == WARMUP_STEPS:
            synchronize(device)
            start = time.perf_counter()
        trainer.train_step(indices[step % len(indices)], views, batch_size)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"benchmark": "step", "method": method, "device": str(device), "batch_size": batch_size, "width": width,
            "arch": config.arch, "view_size": size,
            "iters": iters, "compile": compile_model, "cuda_graphs": cuda_graphs,
            "precision": "bf16" if trainer.bf16 else "fp32",
            "seconds": seconds, "samples_per_second": iters * batch_size / seconds, "gpu": gpu_name(device)}


def _view_dtype(trainer: Trainer) -> torch.dtype:
    return torch.float16 if trainer.bf16 else torch.float32


def summary(result: dict) -> str:
    graphs = ", CUDA graph" if result.get("cuda_graphs", "none") in ("step", "all") else ""
    return (f"step {result['method']} on {result['device']} ({result['precision']}"
            f"{', compiled' if result['compile'] else ''}{graphs}): {result['samples_per_second']:,.0f} samples/s "
            f"(batch {result['batch_size']}, {result['arch']} width {result['width']}, {result['view_size']}-pixel views, "
            f"{result['iters']} steps)")
