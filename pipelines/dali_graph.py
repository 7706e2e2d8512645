"""The DALI graph of the augmentation: the iteration's input, then one fused torch operator.

    the source's input stage (pipelines.inputs):
        in-memory images: external_source (the iteration's table rows, already on the device, not copied)
        image folders:    external_source (each sample's file and the union of its two crop boxes)
                            -> decoders.image_slice (device "mixed" on the GPU: nvJPEG decodes that box only)
      -> augment: one torch operator on DALI's stream: the first stage (PIL's bicubic RandomResizedCrop
         from the resident images, or from the decoded boxes), ColorJitter, grayscale, the blur, the
         RandAugment slots, normalisation (float16 for bf16 training, else float32; NHWC)

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

from typing import Any, Callable

import nvidia.dali.python_function_plugin as dali_python
import torch
import torch.utils.dlpack
from nvidia.dali import fn, pipeline_def
from nvidia.dali.pipeline import Pipeline

from bcl_dali.pipelines.augment import Augmentation
from bcl_dali.pipelines.graphs import CapturedFunction
from bcl_dali.pipelines.iteration import IterationPlan, PlanQueue
from bcl_dali.pipelines.normalize import normalized

PREFETCH_DEPTH = 2
Timer = Callable[[str, Callable[[], torch.Tensor]], torch.Tensor]
"""Runs a stage and records how long it took: (stage name, the stage's work) -> its result."""


class AugmentOperator:
    """The graph's torch operator: DALI's input batch -> the iteration's normalised views.

    Its input is what the image source's input stage gives (pipelines.inputs): one sample, the
    iteration's table rows, or one decoded crop per sample. Its output has as many samples as its
    input: the (V, S, S, 3) views cut into equal parts, which the executor sees again as one tensor."""

    def __init__(self, source_input: Any, augmentation: Augmentation, plans: PlanQueue, dtype: torch.dtype,
                 timer: Timer | None = None, graph: bool = False) -> None:
        """`graph`: replay the dense stages from a CUDA graph (an input that allows it, on the GPU)."""
        if graph and not (source_input.graphable and augmentation.dense):
            raise ValueError("CUDA graphs need the dense schedule of in-memory images on the GPU")
        self.first_name, self.first_stage, self.views_in = source_input.first_stage(augmentation)
        self.augmentation = augmentation
        self.plans = plans
        self.dtype = dtype
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
        plan = self.plans.take(self.views_in(inputs))
        if self.graph is not None:
            views = self._timed("augment", lambda: self.graph(plan.table))
        else:
            views = self._finish(self._timed(self.first_name, lambda: self.first_stage(inputs, plan)), plan)
        parts = views.view(len(inputs), -1, *views.shape[1:]).unbind(0)
        return [torch.utils.dlpack.to_dlpack(part) for part in parts]

    def _from_table(self, table: torch.Tensor) -> torch.Tensor:
        """The dense chain as one function of the table rows (what the CUDA graph captures)."""
        plan = IterationPlan(table, None)
        return normalized(self.augmentation.after_crop(self.augmentation.crop(plan), plan), self.dtype)

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


def augmentation_pipeline(source_input: Any, source: Callable, operator: AugmentOperator, device: torch.device,
                          threads: int, batch_size: int, stream: int | None) -> Pipeline:
    """The pipeline (defined, not built): the source's input stage, fed by `source(BatchInfo)`, then
    the augmentation operator; `batch_size` samples at most per iteration."""
    cuda = device.type == "cuda"

    @pipeline_def(batch_size=batch_size, num_threads=threads, prefetch_queue_depth=PREFETCH_DEPTH,
                  device_id=(device.index or 0) if cuda else None, exec_dynamic=True)
    def views():
        return fn.dl_tensor_python_function(source_input.nodes(source, device, stream), function=operator,
                                            batch_processing=True, synchronize_stream=False, output_layouts="FHWC",
                                            device="gpu" if cuda else "cpu", name="augment")

    return views()
