"""The DALI executor: both views of every batch, on the CPU or the GPU.

Two pipelines run in lockstep. The crop pipeline cuts and resizes each view's crop (one DALI
sample per view: view 1 of the B images, then view 2). The augment pipeline takes those 2B crops
as the frames of a few long sequences (one on the GPU) and runs the rest of the augmentation with
per-frame parameters, so each of its ~150 operators is a single launch over the whole batch.
Its output is the (2B, H, W, 3) float16 tensor the model consumes, which torch sees as a
channels_last NCHW tensor without a copy. On the GPU the training images stay resident as one
uint8 tensor and a batch is an index gather on the device.

Every per-iteration input is looked up by the iteration number DALI passes to its sources, so
prefetching never mixes batches, and each epoch is a DALI epoch: the sources end it, the executor
resets the pipelines before the next, and the next plan (made from the weights refreshed after the
last step) is in place before DALI asks for its first batch.
"""
from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import Iterator

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def
from nvidia.dali.types import BatchInfo

from pipelines.dali_graph import GraphInputs, augment, crop_resize_flip
from pipelines.dali_params import CROP_FIELDS, GraphParams, frame_input_names, graph_params
from pipelines.plan import EpochPlan

PREFETCH_DEPTH = 2
CPU_FRAMES_PER_SEQUENCE = 64
"""On the CPU, DALI works on samples in parallel threads: a few dozen sequences keep them busy."""
HELD_CROPS = 2 * PREFETCH_DEPTH + 2
"""Crop outputs handed to the augment pipeline stay referenced this many iterations, so DALI does
not reuse their memory before the augment pipeline's copy of them has run."""


class DaliExecutor:
    def __init__(self, images: np.ndarray, *, size: int, num_slots: int, batch_size: int,
                 device: torch.device, threads: int) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
        self.device = device
        self.size = size
        self.num_slots = num_slots
        self.image_hw = images.shape[1:3]
        self._cuda = device.type == "cuda"
        self._images = torch.as_tensor(images).to(device) if self._cuda else images
        self._plan: EpochPlan | None = None
        self._order: torch.Tensor | None = None
        self._views: tuple[GraphParams, GraphParams] | None = None
        self._held: deque = deque(maxlen=HELD_CROPS)
        self._batch_cache: OrderedDict[int, GraphParams] = OrderedDict()
        self._epochs = 0
        self._sequences = 1 if self._cuda else math.ceil(2 * batch_size / CPU_FRAMES_PER_SEQUENCE)
        self._crop_pipe = self._build_crop(batch_size, threads)
        self._augment_pipe = self._build_augment(threads)

    @property
    def _stream(self):
        return torch.cuda.current_stream(self.device) if self._cuda else None

    def _pipeline_options(self, batch_size: int, threads: int) -> dict:
        return dict(batch_size=batch_size, num_threads=threads, prefetch_queue_depth=PREFETCH_DEPTH,
                    device_id=(self.device.index or 0) if self._cuda else None)

    def _build_crop(self, batch_size: int, threads: int):
        device = "gpu" if self._cuda else "cpu"
        stream = self._stream.cuda_stream if self._cuda else None

        @pipeline_def(**self._pipeline_options(2 * batch_size, threads))
        def crops():
            images = fn.external_source(source=self._image_batch, batch_info=True, layout="HWC", device=device,
                                        cuda_stream=stream)
            params = fn.external_source(source=self._crop_params, batch_info=True, num_outputs=len(CROP_FIELDS))
            return crop_resize_flip(images, GraphInputs(dict(zip(CROP_FIELDS, params)), device, per_frame=False),
                                    self.size)

        pipe = crops()
        pipe.build()
        return pipe

    def _build_augment(self, threads: int):
        device = "gpu" if self._cuda else "cpu"
        stream = self._stream.cuda_stream if self._cuda else None
        names = frame_input_names(self.num_slots)

        @pipeline_def(**self._pipeline_options(self._sequences, threads))
        def views():
            frames = fn.external_source(source=self._crop_frames, batch_info=True, layout="FHWC", device=device,
                                        cuda_stream=stream)
            params = fn.external_source(source=self._frame_params, batch_info=True, num_outputs=len(names))
            return augment(frames, GraphInputs(dict(zip(names, params)), device, per_frame=True), self.size,
                           self.num_slots)

        pipe = views()
        pipe.build()
        return pipe

    def epoch(self, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(indices, views) per batch of `plan`: views are view 1 of the B samples then view 2,
        float16, normalised, a (2B, 3, H, W) channels_last tensor over DALI's output buffer."""
        if plan.params.view1.num_slots != self.num_slots:
            raise ValueError(f"plan has {plan.params.view1.num_slots} op slots, the graph {self.num_slots}")
        self._plan = plan
        self._order = torch.as_tensor(plan.order).to(self.device)
        self._views = tuple(graph_params(v, self.image_hw, self.size) for v in plan.params.views)
        self._batch_cache.clear()
        if self._epochs:
            self._crop_pipe.reset()
            self._augment_pipe.reset()
        self._epochs += 1
        for b in range(plan.num_batches):
            (views,) = self._augment_pipe.run(self._stream)
            yield self._order[self._rows(b)], self._as_tensor(views).permute(0, 3, 1, 2)
        try:
            self._augment_pipe.run(self._stream)
        except StopIteration:
            return
        raise RuntimeError("the DALI pipeline produced more batches than the epoch plan holds")

    def _as_tensor(self, views) -> torch.Tensor:
        """The frames of all sequences as one (2B, H, W, 3) tensor (no copy on the GPU: one sequence)."""
        if self._sequences == 1:
            return torch.from_dlpack(views.as_tensor())[0]
        return torch.cat([torch.from_dlpack(views[i]) for i in range(len(views))])

    def _rows(self, b: int) -> slice:
        size = self._plan.batch_size
        return slice(b * size, min((b + 1) * size, len(self._plan.order)))

    def _batch_rows(self, info: BatchInfo) -> slice:
        if info.iteration >= self._plan.num_batches:
            raise StopIteration
        return self._rows(info.iteration)

    def _batch_params(self, info: BatchInfo) -> GraphParams:
        """Both views' parameters of one batch, assembled once for the two pipelines that read them."""
        rows = self._batch_rows(info)
        if info.iteration not in self._batch_cache:
            self._batch_cache[info.iteration] = GraphParams.concat([view.select(rows) for view in self._views])
            while len(self._batch_cache) > HELD_CROPS:
                self._batch_cache.popitem(last=False)
        return self._batch_cache[info.iteration]

    def _image_batch(self, info: BatchInfo):
        index = self._order[self._batch_rows(info)]
        if self._cuda:
            return self._images[torch.cat([index, index])]
        index = index.numpy()
        return self._images[np.concatenate([index, index])]

    def _crop_params(self, info: BatchInfo) -> list[np.ndarray]:
        return self._batch_params(info).crop_arrays()

    def _crop_frames(self, info: BatchInfo) -> list:
        """The crop pipeline's output for this iteration, cut into the augment pipeline's sequences."""
        self._batch_rows(info)
        (crops,) = self._crop_pipe.run(self._stream)
        self._held.append(crops)
        frames = torch.from_dlpack(crops.as_tensor()) if self._cuda else np.asarray(crops.as_tensor())
        return [frames[part] for part in self._parts(len(frames))]

    def _frame_params(self, info: BatchInfo) -> list[list[np.ndarray]]:
        arrays = self._batch_params(info).frame_arrays()
        return [[a[part] for part in self._parts(len(a))] for a in arrays]

    def _parts(self, frames: int) -> list[slice]:
        """At most `_sequences` consecutive runs of frames, none empty (a short last batch has fewer)."""
        size = math.ceil(frames / self._sequences)
        return [slice(start, min(start + size, frames)) for start in range(0, frames, size)]
