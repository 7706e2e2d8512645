"""The DALI graph of the augmentation: a few operators over one sequence of all 2B views.

    external_source (the batch's parameter-table rows, already on the device)
      -> crop     (PIL's bicubic RandomResizedCrop and flip, gathered from the resident images)
      -> colour   (ColorJitter's six blend slots around the 8-bit HSV hue stage, grayscale)
      -> slot 0 .. slot k-1 (RandAugment: warp, enhance, autocontrast, point map, equalize, cutout)
      -> normalize (ImageNet mean and std; float16 for bf16 training, else float32; FHWC)

DALI fuses no arithmetic: each arithmetic node is its own operator with its own fixed cost and its
own pass over the pixels, and its warp_affine, coord_transform and equalize split a sequence into
one sample per frame, paying per-sample costs for every view. So the stages are fused operators of
our own: torch code run by `fn.dl_tensor_python_function` on DALI's CUDA stream, each treating the
views as one batch (pipelines.augment). The graph has k + 4 operators and expands nothing; the
same definition builds for the CPU and the GPU. The normalisation is the PIL executor's own
function, so in float32 the two executors hand the model the same numbers.
"""
from __future__ import annotations

from typing import Callable

import nvidia.dali.python_function_plugin as dali_python
import torch
import torch.utils.dlpack
from nvidia.dali import fn, pipeline_def
from nvidia.dali.data_node import DataNode
from nvidia.dali.pipeline import Pipeline

from pipelines.augment import Augmentation
from pipelines.normalize import normalized


PREFETCH_DEPTH = 2
Timer = Callable[[str, Callable[[], torch.Tensor]], torch.Tensor]
"""Runs a stage and records how long it took: (stage name, the stage's work) -> its result."""


class TorchStage:
    """A DALI operator's function: torch code on the operator's inputs, on the pipeline's device and,
    on the GPU, on DALI's stream (so DALI need not synchronise before or after it).

    The function sees each input as one tensor: the batch's one sample (a sequence of views), or,
    `per_view`, the batch's samples stacked (one view each), its output then split back into them."""

    def __init__(self, name: str, function: Callable[..., torch.Tensor], device: torch.device,
                 timer: Timer | None = None, per_view: bool = False) -> None:
        self.name = name
        self.function = function
        self.device = device
        self.timer = timer
        self.per_view = per_view
        self._streams: dict[int, torch.cuda.ExternalStream] = {}

    def __call__(self, *batches: list) -> list:
        if self.device.type == "cuda":
            with torch.cuda.stream(self._dali_stream()):
                return self._outputs(self._run(self._inputs(batches)))
        return self._outputs(self._run(self._inputs(batches)))

    def _inputs(self, batches: tuple[list, ...]) -> list[torch.Tensor]:
        if self.per_view:
            return [torch.stack([torch.utils.dlpack.from_dlpack(sample) for sample in batch]) for batch in batches]
        return [torch.utils.dlpack.from_dlpack(batch[0]) for batch in batches]

    def _outputs(self, out: torch.Tensor) -> list:
        out = out.contiguous()
        return [torch.utils.dlpack.to_dlpack(view) for view in out] if self.per_view else [torch.utils.dlpack.to_dlpack(out)]

    def _run(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        if self.timer is None:
            return self.function(*tensors)
        return self.timer(self.name, lambda: self.function(*tensors))

    def _dali_stream(self) -> torch.cuda.ExternalStream:
        pointer = dali_python.current_dali_stream()
        if pointer not in self._streams:
            self._streams[pointer] = torch.cuda.ExternalStream(pointer, device=self.device)
        return self._streams[pointer]


def stages(augmentation: Augmentation) -> list[tuple[str, Callable[..., torch.Tensor]]]:
    """(name, function) of every stage after the crop, in graph order; each takes (views, table)."""
    slots = [(f"slot{s}", lambda x, table, s=s: augmentation.slot(s, x, table))
             for s in range(augmentation.layout.num_slots)]
    return [("colour", augmentation.colour)] + slots


def augment(table: DataNode, augmentation: Augmentation, device: torch.device, dtype: torch.dtype,
            timer: Timer | None = None) -> DataNode:
    """The graph from a batch's (2B, P) float64 table rows to the normalised FHWC views of `dtype`."""
    dali_device = "gpu" if device.type == "cuda" else "cpu"

    def operator(name: str, function: Callable[..., torch.Tensor], *inputs: DataNode) -> DataNode:
        return fn.dl_tensor_python_function(*inputs, function=TorchStage(name, function, device, timer),
                                            batch_processing=True, synchronize_stream=False, output_layouts="FHWC",
                                            device=dali_device, name=name)

    x = operator("crop", augmentation.crop, table)
    for name, function in stages(augmentation):
        x = operator(name, function, x, table)
    return operator("normalize", lambda views: normalized(views, dtype), x)


def augmentation_pipeline(source: Callable, augmentation: Augmentation, device: torch.device, threads: int,
                          dtype: torch.dtype = torch.float16, timer: Timer | None = None) -> Pipeline:
    """The pipeline (defined, not built): `source(BatchInfo)` gives an iteration's table rows, on
    `device` already (a CUDA tensor, or a numpy array on the CPU); the views come out as `dtype`."""
    cuda = device.type == "cuda"
    stream = torch.cuda.current_stream(device).cuda_stream if cuda and torch.cuda.is_available() else None

    @pipeline_def(batch_size=1, num_threads=threads, prefetch_queue_depth=PREFETCH_DEPTH,
                  device_id=(device.index or 0) if cuda else None)
    def views():
        table = fn.external_source(source=source, batch_info=True, device="gpu" if cuda else "cpu", cuda_stream=stream)
        return augment(table, augmentation, device, dtype, timer)

    return views()
