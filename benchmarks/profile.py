"""What one iteration of the DALI augmentation is made of: the counts that predict its GPU speed.

Measured on DALI 2.4 (see pipelines.dali_graph): every DALI operator has a fixed cost per
iteration, and warp_affine, coord_transform and equalize pay it again for every frame of a
sequence; inside our fused operator every torch operation is one kernel launch (a few microseconds
of dispatch on the GPU, holding the GIL in DALI's thread) and one pass over its tensors; an
operation that needs a value on the host (`nonzero`, `.item()`, a data-dependent shape) stalls the
host until the device has caught up. So the cost model of an iteration is

    DALI operators x fixed cost  +  expanding operators x frames x per-frame cost
    + launches x launch cost  +  host synchronisations x a drained queue  +  bytes moved / bandwidth

All of it but the times can be counted on a machine without a GPU: the graph is defined for the GPU
without running it, and an iteration's stages run in the GPU's schedule (dense or sparse, the GPU's
chunk budget) on meta tensors, which have shapes but no values: every kernel is dispatched and
counted, none computes.
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

from bcl_dali.benchmarks.timing import synchronize
from bcl_dali.data import load_data
from bcl_dali.data.generated_jpegs import IMAGENET_SIDES
from bcl_dali.device import cpu_count
from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.augment import Augmentation
from bcl_dali.pipelines.dali_executor import GPU_VIEWS_PER_ITERATION, DaliExecutor, epoch_table, view_rows
from bcl_dali.pipelines.dali_graph import PREFETCH_DEPTH, AugmentOperator, augmentation_pipeline
from bcl_dali.pipelines.inputs import FileInput, ResidentInput, decode_plan
from bcl_dali.pipelines.iteration import IterationPlan, PlanQueue, step_rows, upload_indices
from bcl_dali.pipelines.normalize import normalized
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.resize import GPU_CHUNK_BYTES
from bcl_dali.pipelines.steps import dense_for

EXPANDING_OPERATORS = frozenset({"WarpAffine", "CoordTransform", "Equalize"})
"""DALI operators that split an FHWC sequence into one sample per frame (measured, DALI 2.4)."""
METADATA_OPS = frozenset({"view", "_unsafe_view", "select", "slice", "unsqueeze", "squeeze", "expand", "permute",
                          "unbind", "alias", "t", "transpose", "as_strided", "detach", "split", "chunk", "reshape",
                          "lift_fresh", "scalar_tensor", "empty", "empty_strided"})
"""torch operations that launch no kernel: new views of the same memory, uninitialised allocations."""
SYNCING_OPS = frozenset({"nonzero", "_local_scalar_dense", "masked_select", "unique", "_unique2", "unique_dim",
                         "unique_consecutive", "is_nonzero", "equal", "argwhere", "nonzero_static"})
"""torch operations whose result needs the device's values on the host: `.item()`, `bool()`, `int()`
and every data-dependent shape."""
MASKING_OPS = frozenset({"index", "index_put", "index_put_"})
"""Indexing that reads a boolean mask on the host to know its result's shape (x[mask])."""
GATHERING_OPS = frozenset({"index_select", "gather", "index", "take"})
"""Operations that read only the elements they select from their first argument."""
DALI_OUTPUT_COPIES = 1
GRAPH_LAUNCHES = 3
"""A CUDA-graphed iteration: the table copied in, the replay, the views cloned out (pipelines.graphs)."""
"""DALI copies the operator's returned tensors into its own buffer: one batched copy per iteration."""
FOLDER_CROP_SCALE = 0.08


def graph_census(num_slots: int, device: str = "gpu", size: int = 32, folder: bool = False) -> dict:
    """DALI operators per iteration by kind, the expanding ones, the host-to-device copies and the
    operators left on the CPU, of the graph as `device` ("gpu" or "cpu") would run it. A copy is a
    node made on the CPU and read on the GPU (DALI moves it every iteration)."""
    where = torch.device("cuda" if device == "gpu" else "cpu")
    source_input = FileInput([]) if folder else ResidentInput(np.zeros((1, size, size, 3), np.uint8))
    augmentation = source_input.augmentation(num_slots, size, torch.device("cpu"), blur=False)
    operator = AugmentOperator(source_input, augmentation, PlanQueue(), torch.float16)
    return pipeline_census(augmentation_pipeline(source_input, lambda info: None, operator, where, threads=1,
                                                 batch_size=source_input.batch_size(4), stream=None))


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
    """Counts what torch dispatches: kernels (by stage), bytes read and written, passes over the full
    images, and operations that read device values on the host. On meta tensors those have no value
    to read, so they return an empty or zero stand-in after being counted."""

    def __init__(self, plane: int) -> None:
        super().__init__()
        self.plane = plane
        self.kernels: Counter[str] = Counter()
        self.syncs: Counter[str] = Counter()
        self.bytes = 0
        self.full_passes = 0
        self.stage = ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in MASKING_OPS and any(isinstance(t, torch.Tensor) and t.dtype == torch.bool
                                       for t in tree_flatten(args[1:])[0]):
            self.syncs[f"{self.stage}: {name} by a mask"] += 1
            if args[0].is_meta:
                return torch.empty(0, dtype=args[0].dtype, device="meta")
        elif name in SYNCING_OPS:
            self.syncs[f"{self.stage}: {name}"] += 1
            if any(isinstance(t, torch.Tensor) and t.is_meta for t in tree_flatten(args)[0]):
                return _stand_in(name, args[0])
        out = func(*args, **(kwargs or {}))
        if name not in METADATA_OPS:
            tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
            if name in GATHERING_OPS:  # they read what they write, not their whole source
                tensors = [t for t in tensors if t is not args[0]] + [out]
            self.kernels[self.stage] += 1
            self.bytes += sum(t.numel() * t.element_size() for t in tensors)
            self.full_passes += max((t.numel() for t in tensors), default=0) >= self.plane
        return out


def _stand_in(name: str, tensor: torch.Tensor):
    if name == "_local_scalar_dense":
        return tensor.dtype.is_floating_point and 0.0 or 0
    if name in ("is_nonzero", "equal"):
        return False
    if name in ("nonzero", "argwhere", "nonzero_static"):
        return torch.empty((0, tensor.dim()), dtype=torch.long, device="meta")
    return torch.empty(0, dtype=tensor.dtype, device="meta")


def iteration_census(num_slots: int, size: int = 32, views: int = GPU_VIEWS_PER_ITERATION, folder: bool = False,
                     graph: bool = False, seed: int = 0) -> dict:
    """One GPU iteration of `views` views at mixed weights, counted on meta tensors in the GPU's
    schedule: torch kernels (by stage), launches (the kernels, or with `graph` the copy in, the
    replay and the copy out, plus DALI's copy of the output), host synchronisations, bytes read and
    written and full-image passes per view, and decodes per sample. `folder`: ImageNet-sized files
    decoded and resized to `size` with the recipe's crop scale and blur, chunked on the GPU's budget."""
    meta = torch.device("meta")
    rng = np.random.default_rng(seed)
    samples = views // 2
    sides = (rng.integers(*IMAGENET_SIDES, samples), rng.integers(*IMAGENET_SIDES, samples)) if folder else (size, size)
    recipe = {"crop_scale": (FOLDER_CROP_SCALE, 1.0), "blur": True} if folder else {}
    plan = EpochPlan(np.arange(samples), samples, BoostPolicy(num_slots, **recipe).sample(rng.random(samples), rng, sides))
    host = epoch_table(plan, size)
    dense = dense_for(torch.device("cuda"), size)
    if folder:
        augmentation = Augmentation(None, num_slots, size=size, device=meta, blur=True)
    else:
        augmentation = Augmentation(torch.empty((samples, size, size, 3), dtype=torch.uint8, device=meta), num_slots)
    layout, span = augmentation.layout, slice(0, len(host))
    extra = {"rows": step_rows(host, layout, dense)}
    if folder:
        extra["resize"] = decode_plan(host, span, view_rows(plan), layout, GPU_CHUNK_BYTES)
    iteration = IterationPlan(torch.as_tensor(host).to(meta), **upload_indices(extra, meta))
    crops = [torch.empty((h, w, 3), dtype=torch.uint8, device=meta) for h, w in iteration.resize.shapes] if folder else []
    _stages(augmentation, iteration, crops, _KernelCount(0))  # tables and constants are made once, outside the count
    count = _KernelCount(plane=views * size * size)
    with count:
        _stages(augmentation, iteration, crops, count)
    kernels = sum(count.kernels.values())
    launches = (GRAPH_LAUNCHES if graph else kernels) + DALI_OUTPUT_COPIES
    result = {"views": views, "view_size": size, "boost": num_slots, "schedule": "dense" if dense else "sparse",
              "graph": graph, "kernels": kernels, "kernels_by_stage": dict(count.kernels), "launches": launches,
              "host_syncs": sum(count.syncs.values()), "host_syncs_by_stage": dict(count.syncs),
              "bytes_per_view": count.bytes / views, "full_image_passes_per_view": count.full_passes,
              "decodes_per_sample": len(iteration.resize.shapes) / samples if folder else 0.0}
    if folder:
        result["chunks"] = len(iteration.resize.chunks)
    return result


def cost_model(num_slots: int, size: int, folder: bool, graph: bool, device: torch.device) -> dict:
    """The graph's operators as `device` runs them, and one GPU iteration's census (iteration_census)."""
    census = iteration_census(num_slots, size, folder=folder, graph=graph)
    return graph_census(num_slots, "gpu" if device.type == "cuda" else "cpu", size, folder) | census


def _stages(augmentation: Augmentation, iteration: IterationPlan, crops: list[torch.Tensor], count: _KernelCount) -> None:
    """The augmentation operator's stages, each named in `count`."""
    count.stage = "resize" if crops else "crop"
    x = augmentation.resize(crops, iteration) if crops else augmentation.crop(iteration)
    steps = iteration.steps(augmentation.layout)
    count.stage = "colour"
    x = augmentation.colour(x, iteration, steps)
    for s in range(augmentation.layout.num_slots):
        count.stage = f"slot{s}"
        x = augmentation.slot(s, x, iteration, steps)
    count.stage = "normalize"
    normalized(x, torch.float16)


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
    images = load_data("synthetic-lt", num_classes=num_classes).train.images.pixels
    executor = DaliExecutor(ResidentInput(images), size=images.shape[1], num_slots=k, batch_size=batch_size, device=device,
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
