"""What one iteration of the DALI augmentation is made of: the counts that predict its GPU speed.

Measured on DALI 2.4 (see pipelines.dali_graph): every DALI operator has a fixed cost per
iteration, and warp_affine, coord_transform and equalize pay it again for every frame of a
sequence; inside our fused stages every torch operation is one kernel launch (a few microseconds of
dispatch on the GPU) and one pass over its tensors. So the cost model of an iteration is

    DALI operators x fixed cost  +  expanding operators x frames x per-frame cost
    + torch kernels x launch cost  +  bytes moved / memory bandwidth

All of it but the times can be counted on a machine without a GPU: the graph is defined for the GPU
without running it, and the stages run in the GPU's dense schedule on the CPU.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from nvidia.dali.pipeline import Pipeline
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from benchmarks.timing import synchronize
from bcl_dali.data import load_data
from bcl_dali.device import cpu_count
from bcl_dali.policy import BoostPolicy
from pipelines.augment import Augmentation
from pipelines.dali_executor import DaliExecutor
from pipelines.dali_graph import PREFETCH_DEPTH, augmentation_pipeline
from pipelines.normalize import normalized
from pipelines.plan import EpochPlan
from pipelines.table import view_table

EXPANDING_OPERATORS = frozenset({"WarpAffine", "CoordTransform", "Equalize"})
"""DALI operators that split an FHWC sequence into one sample per frame (measured, DALI 2.4)."""
METADATA_OPS = frozenset({"view", "_unsafe_view", "select", "slice", "unsqueeze", "squeeze", "expand", "permute",
                          "unbind", "alias", "t", "transpose", "as_strided", "detach", "split", "chunk", "reshape",
                          "lift_fresh", "scalar_tensor"})
"""torch operations that only make a new view of the same memory: no kernel, no pass."""


def graph_census(num_slots: int, device: str = "gpu", size: int = 32) -> dict:
    """DALI operators per iteration by kind, the expanding ones, the host-to-device copies and the
    operators left on the CPU, of the graph as `device` ("gpu" or "cpu") would run it; the fused
    stages are named by their stage. A copy is a node made on the CPU and read on the GPU (DALI moves
    it every iteration)."""
    images = torch.zeros((1, size, size, 3), dtype=torch.uint8)
    where = torch.device("cuda" if device == "gpu" else "cpu")
    return pipeline_census(augmentation_pipeline(lambda info: None, Augmentation(images, num_slots), where,
                                                 threads=1))


def pipeline_census(pipe: Pipeline) -> dict:
    """The counts of `graph_census` for any defined pipeline."""
    pipe._build_graph()  # defines the operators without building them: no GPU is needed to inspect it
    kinds: Counter[str] = Counter()
    copied = set()
    on_cpu = 0
    for op in pipe._ops:
        on_cpu += op._op.device == "cpu"
        kind = type(op._op).__name__
        kinds[f"torch stage {op.name}" if kind.endswith("PythonFunction") else kind] += 1
        copied |= {node.name for node in op.inputs
                   if node.device == "gpu" and node.source is not None and node.source._op.device == "cpu"}
    return {"operators": sum(kinds.values()), "operators_by_kind": dict(kinds),
            "expansions": sum(kinds[kind] for kind in EXPANDING_OPERATORS),
            "host_to_device_copies": len(copied), "cpu_operators": on_cpu}


class _KernelCount(TorchDispatchMode):
    def __init__(self, plane: int) -> None:
        super().__init__()
        self.plane = plane
        self.kernels: Counter[str] = Counter()
        self.bytes = 0
        self.full_passes = 0
        self.stage = ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__ not in METADATA_OPS:
            tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
            self.kernels[self.stage] += 1
            self.bytes += sum(t.numel() * t.element_size() for t in tensors)
            self.full_passes += max((t.numel() for t in tensors), default=0) >= self.plane
        return out


def kernel_census(num_slots: int, views: int = 256, size: int = 32, seed: int = 0) -> dict:
    """torch kernels per iteration (by stage), bytes read and written per view, and the passes over
    the full images, for the GPU's dense schedule (run here on the CPU) at mixed weights."""
    rng = np.random.default_rng(seed)
    images = torch.as_tensor(rng.integers(0, 256, (views, size, size, 3), dtype=np.uint8))
    view = BoostPolicy(num_slots).sample(rng.random(views), rng, (size, size)).view1
    table = torch.as_tensor(view_table(view, np.arange(views), size))
    augmentation = Augmentation(images, num_slots)
    augmentation.rows.dense = True
    augmentation(table)  # constants and tables are made once, outside the count
    count = _KernelCount(plane=views * size * size)
    with count:
        count.stage = "crop"
        x = augmentation.crop(table)
        count.stage = "colour"
        x = augmentation.colour(x, table)
        for s in range(num_slots):
            count.stage = f"slot{s}"
            x = augmentation.slot(s, x, table)
        count.stage = "normalize"
        normalized(x, torch.float16)
    return {"kernels": sum(count.kernels.values()), "kernels_by_stage": dict(count.kernels),
            "bytes_per_view": count.bytes / views, "full_image_passes_per_view": count.full_passes}


class StageTimer:
    """Times each fused stage: wall clock on the CPU, CUDA events on DALI's stream on the GPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._records: list[tuple[str, object, object]] = []

    def __call__(self, name: str, work: Callable[[], torch.Tensor]) -> torch.Tensor:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = work()
            end.record()
        else:
            start = time.perf_counter()
            out = work()
            end = time.perf_counter()
        self._records.append((name, start, end))
        return out

    def milliseconds(self, skip: int = 0) -> dict[str, float]:
        """Mean milliseconds per call of each stage, leaving out each stage's first `skip` calls."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        times: dict[str, list[float]] = {}
        for name, start, end in self._records:
            elapsed = start.elapsed_time(end) if self.device.type == "cuda" else (end - start) * 1e3
            times.setdefault(name, []).append(elapsed)
        return {name: float(np.mean(values[skip:] or values)) for name, values in times.items()}


def iteration_profile(device: torch.device, batch_size: int, k: int, path: Path, iterations: int = 5,
                      num_classes: int = 100) -> dict:
    """torch's profiler over `iterations` DALI iterations in steady state (iterations before and
    after the window, so DALI's prefetching is as far ahead at both ends): every kernel of the fused
    stages with its device time, written as a table to `path`; returns the kernel count and the
    device time per iteration."""
    images = load_data("synthetic-lt", num_classes=num_classes).train.images
    executor = DaliExecutor(images, size=images.shape[1], num_slots=k, batch_size=batch_size, device=device,
                            threads=cpu_count())
    batches = (2 + iterations + PREFETCH_DEPTH + 1) * executor.batches_together
    rng = np.random.default_rng(0)
    order = np.resize(rng.permutation(len(images)), batches * batch_size)
    stream = executor.epoch(EpochPlan(order, batch_size, BoostPolicy(k).sample(rng.random(len(order)), rng,
                                                                              images.shape[1:3])))
    for _ in range(2 * executor.batches_together):
        next(stream)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(iterations * executor.batches_together):
            next(stream)
        synchronize(device)
    for _ in stream:
        pass
    on_device = [e for e in profiler.events() if e.device_type == DeviceType.CUDA]
    sort = "self_device_time_total" if on_device else "self_cpu_time_total"
    header = (f"{iterations} DALI iterations of {executor.batches_together} batch(es) of {batch_size} samples, k = {k}, "
              f"on {device}\n")
    path.write_text(header + profiler.key_averages().table(sort_by=sort, row_limit=80) + "\n")
    return {"table": str(path), "kernels": len(on_device) / iterations,
            "gpu_milliseconds_per_iteration": sum(e.time_range.elapsed_us() for e in on_device) / 1e3 / iterations}
