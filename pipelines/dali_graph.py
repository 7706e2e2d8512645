"""The DALI graph of the augmentation: the iteration's input, then one fused torch operator.

    in-memory images: external_source (the iteration's table rows, already on the device, not copied)
    image folders:    external_source (each sample's file and the union of its two crop boxes)
                        -> decoders.image_slice (device "mixed" on the GPU: nvJPEG decodes that box only)
      -> augment: one torch operator on DALI's stream: the first stage (PIL's bicubic RandomResizedCrop
         gathered from the resident images, or the resize of the decoded boxes), ColorJitter,
         grayscale, the blur, the RandAugment slots, normalisation (float16 for bf16 training, else
         float32; NHWC)

DALI fuses no arithmetic: each arithmetic node is its own operator with its own fixed cost and its
own pass over the pixels, and its warp_affine, coord_transform and equalize split a sequence into one
sample per frame. So the stages are torch code of our own, run by `fn.dl_tensor_python_function`
over all views of an iteration at once (pipelines.augment). They form one operator: a Python operator
holds a process-wide lock and the GIL for its whole run, so several would run one after another
anyway and each would add DALI's fixed cost; as one, the dense schedule is one CUDA graph
(pipelines.graphs). What a stage needs besides the pixels comes from the iteration's plan
(pipelines.iteration). The graph is the same on the CPU and the GPU.
"""
from __future__ import annotations

from typing import Callable

import nvidia.dali.python_function_plugin as dali_python
import torch
import torch.utils.dlpack
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.pipeline import Pipeline

from pipelines.augment import Augmentation
from pipelines.graphs import CapturedFunction
from pipelines.iteration import IterationPlan, PlanQueue
from pipelines.normalize import normalized

PREFETCH_DEPTH = 2
Timer = Callable[[str, Callable[[], torch.Tensor]], torch.Tensor]
"""Runs a stage and records how long it took: (stage name, the stage's work) -> its result."""


class AugmentOperator:
    """The graph's torch operator: DALI's input batch -> the iteration's normalised views.

    Its input is one sample, the iteration's table rows (in-memory images), or one decoded crop per
    sample (image folders). Its output has as many samples as its input: the (V, S, S, 3) views cut
    into equal parts, which the executor sees again as one tensor."""

    def __init__(self, augmentation: Augmentation, plans: PlanQueue, dtype: torch.dtype, decoded: bool,
                 timer: Timer | None = None, graph: bool = False) -> None:
        """`graph`: replay the dense stages from a CUDA graph (in-memory images on the GPU)."""
        if graph and (decoded or not augmentation.dense):
            raise ValueError("CUDA graphs need the dense schedule of in-memory images on the GPU")
        self.augmentation = augmentation
        self.plans = plans
        self.dtype = dtype
        self.decoded = decoded
        self.timer = timer
        self.device = augmentation.device
        self.graph = CapturedFunction(self._from_table, self.device) if graph else None
        self._streams: dict[int, torch.cuda.ExternalStream] = {}

    def __call__(self, batch: list) -> list:
        if self.device.type == "cuda":
            with torch.cuda.stream(self._dali_stream()):
                return self._run(batch)
        return self._run(batch)

    def _run(self, batch: list) -> list:
        inputs = [torch.utils.dlpack.from_dlpack(sample) for sample in batch]
        if self.decoded:
            plan = self.plans.take(2 * len(inputs))
            shapes = [tuple(crop.shape[:2]) for crop in inputs]
            if shapes != plan.resize.shapes:
                raise RuntimeError("the decoder's crops are not the sizes planned for this iteration")
            views = self._finish(self._timed("resize", lambda: self.augmentation.resize(inputs, plan)), plan)
        else:
            (table,) = inputs
            plan = self.plans.take(table.shape[0])
            views = self._timed("augment", lambda: self.graph(table)) if self.graph else self._from_plan(plan)
        parts = views.view(len(inputs), -1, *views.shape[1:]).unbind(0)
        return [torch.utils.dlpack.to_dlpack(part) for part in parts]

    def _from_table(self, table: torch.Tensor) -> torch.Tensor:
        """The dense chain as one function of the table rows (what the CUDA graph captures)."""
        plan = IterationPlan(table, None)
        return normalized(self.augmentation.after_crop(self.augmentation.crop(plan), plan), self.dtype)

    def _from_plan(self, plan: IterationPlan) -> torch.Tensor:
        return self._finish(self._timed("crop", lambda: self.augmentation.crop(plan)), plan)

    def _finish(self, x: torch.Tensor, plan: IterationPlan) -> torch.Tensor:
        """Colour, the slots and the normalisation, each timed as its own stage."""
        steps = plan.steps(self.augmentation.layout)
        x = self._timed("colour", lambda: self.augmentation.colour(x, plan, steps))
        for s in range(self.augmentation.layout.num_slots):
            x = self._timed(f"slot{s}", lambda x=x, s=s: self.augmentation.slot(s, x, plan, steps))
        return self._timed("normalize", lambda: normalized(x, self.dtype))

    def _timed(self, name: str, work: Callable[[], torch.Tensor]) -> torch.Tensor:
        return work() if self.timer is None else self.timer(name, work)

    def _dali_stream(self) -> torch.cuda.ExternalStream:
        pointer = dali_python.current_dali_stream()
        if pointer not in self._streams:
            self._streams[pointer] = torch.cuda.ExternalStream(pointer, device=self.device)
        return self._streams[pointer]


def _augment(inputs, operator: AugmentOperator, device: torch.device):
    return fn.dl_tensor_python_function(inputs, function=operator, batch_processing=True, synchronize_stream=False,
                                        output_layouts="FHWC", device="gpu" if device.type == "cuda" else "cpu",
                                        name="augment")


def _pipeline_args(device: torch.device, threads: int, batch_size: int) -> dict:
    return dict(batch_size=batch_size, num_threads=threads, prefetch_queue_depth=PREFETCH_DEPTH,
                device_id=(device.index or 0) if device.type == "cuda" else None, exec_dynamic=True)


def resident_pipeline(source: Callable, operator: AugmentOperator, device: torch.device, threads: int,
                      stream: int | None) -> Pipeline:
    """In-memory images (defined, not built): `source(BatchInfo)` gives an iteration's table rows as a
    batch of one sample, on the device already; DALI takes them as they are (no copy), ordered on
    `stream` (an idle stream of the executor's: nothing of DALI's waits on the training's)."""
    cuda = device.type == "cuda"

    @pipeline_def(**_pipeline_args(device, threads, 1))
    def views():
        table = fn.external_source(source=source, batch_info=True, device="gpu" if cuda else "cpu", no_copy=True,
                                   cuda_stream=stream)
        return _augment(table, operator, device)

    return views()


def folder_pipeline(source: Callable, operator: AugmentOperator, device: torch.device, threads: int,
                    max_samples: int) -> Pipeline:
    """Image folders (defined, not built): `source(BatchInfo)` gives each sample's encoded file and the
    anchor (x, y) and shape (width, height) of the box to decode; libjpeg's chroma upsampling and no
    EXIF rotation, as PIL decodes."""
    cuda = device.type == "cuda"

    @pipeline_def(**_pipeline_args(device, threads, max_samples))
    def views():
        files, anchor, shape = fn.external_source(source=source, batch_info=True, num_outputs=3, batch=True,
                                                  no_copy=True)
        crops = fn.decoders.image_slice(files, anchor, shape, device="mixed" if cuda else "cpu",
                                        output_type=types.RGB, normalized_anchor=False, normalized_shape=False,
                                        adjust_orientation=False, jpeg_fancy_upsampling=True)
        return _augment(crops, operator, device)

    return views()
