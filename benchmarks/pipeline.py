"""Augmentation throughput of the executors: samples per second, two views each, views on the device.

The policy at mixed weights (uniform in [0, 1]) on the built-in synthetic-lt training set, or on an
image folder's files, decoded and augmented to 224-pixel views (a generated folder of ImageNet-sized
JPEGs unless one is given). The clock
runs between two synchronisations at iteration boundaries in the middle of an epoch: warm-up
iterations before it (graph setup, worker start-up) and tail iterations after it, so the executor's
prefetching is as far ahead when the clock stops as when it starts. The DALI figures come with the
cost model's counts (benchmarks.profile), and with `profile` with the time of each fused stage.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bcl_dali.benchmarks.profile import StageTimer, cost_model
from bcl_dali.benchmarks.timing import gpu_name, synchronize
from bcl_dali.config import IMAGENET_LT
from bcl_dali.data import load_data, load_pool
from bcl_dali.data.files import ImageFiles
from bcl_dali.data.folder import list_files
from bcl_dali.data.generated_jpegs import given_or_generated
from bcl_dali.errors import UserError
from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.dali_graph import PREFETCH_DEPTH
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import ReferenceExecutor

WARMUP_ITERATIONS = 3
TAIL_ITERATIONS = PREFETCH_DEPTH + 1
FOLDER_VIEW_SIZE = IMAGENET_LT.image_size
COST_MODEL_KEYS = ("operators", "expansions", "host_to_device_copies", "kernels", "launches", "host_syncs",
                   "decodes_per_sample", "full_image_passes_per_view", "bytes_per_view")


def measure_pipeline(executor: str, device: torch.device, batch_size: int, iters: int, workers: int,
                     k: int = 1, seed: int = 0, num_classes: int = 100, profile: bool = False,
                     batches_together: int | None = None, folder: ImageFiles | None = None,
                     image_size: int = FOLDER_VIEW_SIZE, graph: bool = False) -> dict:
    """`folder`: decode and augment its files to views of `image_size` (else synthetic-lt's arrays).
    `graph`: the DALI executor replays its augmentation from a CUDA graph."""
    images = folder if folder is not None else load_data("synthetic-lt", num_classes=num_classes, seed=seed).train.images
    size = images.view_size(image_size)
    timer = StageTimer(device) if profile else None
    if executor == "dali":
        runner = DaliExecutor(images.dali_input(), size=size, num_slots=k, batch_size=batch_size, device=device, threads=workers,
                      timer=timer, batches_together=batches_together, blur=folder is not None, graph=graph)
    else:
        runner = ReferenceExecutor(images, size=size, workers=workers)
    together = runner.batches_together if executor == "dali" else 1
    in_flight = TAIL_ITERATIONS * together if executor == "dali" else 2 * workers + 1
    warmup, timed = WARMUP_ITERATIONS * together, -(-iters // together) * together
    rng = np.random.default_rng(seed)
    total = (warmup + timed + in_flight) * batch_size
    order = np.resize(rng.permutation(len(images)), total)
    sizes = images.sizes(order)
    recipe = {"crop_scale": (IMAGENET_LT.crop_scale, 1.0), "blur": IMAGENET_LT.blur} if folder is not None else {}
    params = BoostPolicy(k, **recipe).sample(rng.random(total), rng, sizes)
    start = seconds = None
    for b, (_, views) in enumerate(runner.epoch(EpochPlan(order, batch_size, params))):
        views.to(device, non_blocking=True)
        if b + 1 in (warmup, warmup + timed):
            synchronize(device)
            if start is None:
                start = time.perf_counter()
            else:
                seconds = time.perf_counter() - start
    result = {"benchmark": "pipeline", "executor": executor, "device": str(device), "batch_size": batch_size,
              "iters": timed, "workers": workers, "boost": k, "seconds": seconds,
              "samples_per_second": timed * batch_size / seconds, "torch": torch.__version__, "gpu": gpu_name(device),
              "dataset": "synthetic-lt" if folder is None else "folder", "view_size": size}
    if folder is not None:
        result["images"] = {"files": len(folder), "mean_height": float(folder.heights.mean()),
                            "mean_width": float(folder.widths.mean()), "mean_bytes": float(folder.bytes.mean())}
    if executor == "dali":
        result["batches_per_iteration"] = runner.batches_together
        result["graph"] = graph
        result.update(cost_model(k, size, folder is not None, graph, device))
    if timer is not None:
        result["stage_milliseconds_per_iteration"] = timer.milliseconds(skip=WARMUP_ITERATIONS)
    return result


def compare_pipelines(device: torch.device, batch_size: int, iters: int, workers: int, k: int = 1,
                      num_classes: int = 100, profile: bool = False, folder: ImageFiles | None = None,
                      image_size: int = FOLDER_VIEW_SIZE, graph: bool = False) -> dict:
    """Both executors in one run; `ratio` is DALI's throughput over the reference executor's. The
    cost model's counts of the DALI graph (synthetic-lt's) are repeated at the top level. `graph`:
    the DALI executor's augmentation replayed from a CUDA graph."""
    on = {"folder": folder, "image_size": image_size}
    dali = measure_pipeline("dali", device, batch_size, iters, workers, k, num_classes=num_classes, profile=profile,
                            graph=graph, **on)
    reference = measure_pipeline("reference", device, batch_size, iters, workers, k, num_classes=num_classes, **on)
    return {"benchmark": "pipelines", "device": str(device), "gpu": gpu_name(device), "boost": k,
            **{key: dali[key] for key in COST_MODEL_KEYS if key in dali}, "dali": dali, "reference": reference,
            "ratio": dali["samples_per_second"] / reference["samples_per_second"]}


def summary(result: dict) -> str:
    if result["benchmark"] == "pipelines":
        return "\n".join([summary(result["dali"]), summary(result["reference"]),
                          f"DALI / reference: {result['ratio']:.2f}x"])
    line = (f"pipeline {result['executor']} on {result['device']}: {result['samples_per_second']:,.0f} samples/s "
            f"(batch {result['batch_size']}, {result['iters']} batches, {result['workers']} workers, "
            f"k={result['boost']})")
    if result.get("dataset") == "folder":
        images = result["images"]
        line += (f"; decode + augmentation of {images['files']} JPEGs of {images['mean_width']:.0f}x"
                 f"{images['mean_height']:.0f} pixels on average to two {result['view_size']}-pixel views each")
    if result["executor"] == "dali":
        line += (f"; a GPU iteration of {result['views']} views: {result['operators']} DALI operators, "
                 f"{result['expansions']} expanding, {result['host_to_device_copies']} host-to-device copies, "
                 f"{result['launches']} launches{' (CUDA graph)' if result['graph'] else ''}, "
                 f"{result['host_syncs']} host syncs, {result['decodes_per_sample']:g} decodes per sample; "
                 f"per view: {result['full_image_passes_per_view']} full-image passes, "
                 f"{result['bytes_per_view'] / 1e6:.2f} MB moved")
    return line


def profile_table(result: dict) -> str:
    """The cost model of one DALI iteration, stage by stage, as `bench pipeline --profile` prints it."""
    dali = result["dali"] if result["benchmark"] == "pipelines" else result
    lines = [f"timed: one iteration = {dali['batches_per_iteration']} batch(es) of {dali['batch_size']} samples "
             f"({2 * dali['batches_per_iteration'] * dali['batch_size']} views), k = {dali['boost']}",
             f"DALI operators: {dali['operators']}  " + ", ".join(
                 f"{kind} x{count}" for kind, count in dali["operators_by_kind"].items()),
             f"expanding operators (one sample per frame): {dali['expansions']}",
             f"host-to-device parameter copies: {dali['host_to_device_copies']}",
             f"counted: a GPU iteration of {dali['views']} views, {dali['schedule']} schedule: {dali['launches']} "
             f"launches{' (CUDA graph)' if dali['graph'] else ''}, {dali['host_syncs']} host syncs, "
             f"{dali['decodes_per_sample']:g} decodes per sample",
             f"per view: {dali['full_image_passes_per_view']} full-image passes, "
             f"{dali['bytes_per_view'] / 1e6:.2f} MB read and written",
             f"{'stage':<10}{'torch kernels':>15}{'ms / iteration':>16}"]
    times = dali.get("stage_milliseconds_per_iteration", {})
    for stage in dict.fromkeys([*dali["kernels_by_stage"], *times]):
        kernels = dali["kernels_by_stage"].get(stage, "")
        lines.append(f"{stage:<10}{kernels:>15}{times.get(stage, float('nan')):>16.2f}")
    return "\n".join(lines)


def run_pipeline_benchmark(executor: str, device: torch.device, batch_size: int, iters: int, workers: int,
                           boost: int, *, dataset: str = "synthetic-lt", data_dir: Path | None = None,
                           train_list: Path | None = None, image_size: int = FOLDER_VIEW_SIZE, profile: bool = False,
                           graph: bool = False, echo: Callable[[str], None] = lambda _: None) -> dict:
    """`bench pipeline`: one executor ("dali", "reference") or both ("both", with their ratio), on
    synthetic-lt or on an image folder's files (a generated one without `data_dir`)."""
    if dataset != "folder" and (data_dir or train_list):
        raise UserError("--data-dir and --train-list choose an image folder; add --dataset folder")
    if train_list is not None and data_dir is None:
        raise UserError("--train-list needs --data-dir, the root its paths are relative to")
    if graph and (device.type != "cuda" or dataset == "folder"):
        raise UserError("--cuda-graph replays the augmentation of in-memory images on a GPU; drop it, or use "
                        "--device cuda with --dataset synthetic-lt")
    with contextlib.ExitStack() as stack:
        on: dict = {"graph": graph} if graph else {}
        if dataset == "folder":
            root = stack.enter_context(given_or_generated(data_dir, echo=echo))
            pool = None if train_list is not None else load_pool("folder", data_dir=root)
            files = list_files(root, train_list) if pool is None else pool.images(pool.train_indices)
            on = {"folder": files, "image_size": image_size}
        if executor == "both":
            return compare_pipelines(device, batch_size, iters, workers, boost, profile=profile, **on)
        return measure_pipeline(executor, device, batch_size, iters, workers, boost, profile=profile, **on)
