"""The DALI executor: both views of every batch from one pipeline run, on the CPU or the GPU.

One DALI batch holds 2B samples, view 1 of the B images then view 2, so every operator runs
once per training step and the output is already the (2B, H, W, 3) tensor the model consumes;
float16 NHWC, which torch sees as a channels_last NCHW tensor without a copy. On the GPU the
training images stay resident as one uint8 tensor and a batch is an index gather on the device.
Every per-iteration input is looked up by the iteration number DALI passes to its sources, so
prefetching never mixes batches, and each epoch is a DALI epoch: the sources end it, the
executor resets the pipeline before the next, and the next plan (made from the weights refreshed
after the last step) is in place before DALI asks for its first batch.
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def
from nvidia.dali.types import BatchInfo

from pipelines.dali_graph import GraphInputs, augment
from pipelines.dali_params import GraphParams, graph_params, input_names
from pipelines.plan import EpochPlan

PREFETCH_DEPTH = 2


class DaliExecutor:
    def __init__(self, images: np.ndarray, *, size: int, num_slots: int, batch_size: int,
                 device: torch.device, threads: int | None = None) -> None:
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
        self._epochs = 0
        self._pipe = self._build(batch_size, threads or len(os.sched_getaffinity(0)))

    def _build(self, batch_size: int, threads: int):
        names = input_names(self.num_slots)
        stream = torch.cuda.current_stream(self.device).cuda_stream if self._cuda else None

        @pipeline_def(batch_size=2 * batch_size, num_threads=threads, prefetch_queue_depth=PREFETCH_DEPTH,
                      device_id=(self.device.index or 0) if self._cuda else None)
        def pipeline():
            images = fn.external_source(source=self._image_batch, batch_info=True, layout="HWC",
                                        device="gpu" if self._cuda else "cpu", cuda_stream=stream)
            params = fn.external_source(source=self._param_batch, batch_info=True, num_outputs=len(names))
            inputs = GraphInputs(dict(zip(names, params)), "gpu" if self._cuda else "cpu")
            return augment(images, inputs, self.size, self.num_slots)

        pipe = pipeline()
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
        if self._epochs:
            self._pipe.reset()
        self._epochs += 1
        stream = torch.cuda.current_stream(self.device) if self._cuda else None
        for b in range(plan.num_batches):
            (views,) = self._pipe.run(stream)
            yield self._order[self._rows(b)], torch.from_dlpack(views.as_tensor()).permute(0, 3, 1, 2)
        try:
            self._pipe.run(stream)
        except StopIteration:
            return
        raise RuntimeError("the DALI pipeline produced more batches than the epoch plan holds")

    def _rows(self, b: int) -> slice:
        size = self._plan.batch_size
        return slice(b * size, min((b + 1) * size, len(self._plan.order)))

    def _image_batch(self, info: BatchInfo):
        rows = self._batch_rows(info)
        index = self._order[rows]
        if self._cuda:
            return self._images[torch.cat([index, index])]
        index = index.numpy()
        return self._images[np.concatenate([index, index])]

    def _param_batch(self, info: BatchInfo) -> list[np.ndarray]:
        rows = self._batch_rows(info)
        return GraphParams.concat([view.select(rows) for view in self._views]).arrays()

    def _batch_rows(self, info: BatchInfo) -> slice:
        if info.iteration >= self._plan.num_batches:
            raise StopIteration
        return self._rows(info.iteration)
