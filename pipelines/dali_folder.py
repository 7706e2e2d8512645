"""The DALI executor for image folders: each sample decoded once, both views cut from it, then F's augmentation.

    external_source (CPU: each sample's encoded file, and the union of its two views' crop boxes as
                     DALI's anchor and shape, from the epoch's table)
      -> decoders.image_slice (device "mixed" on the GPU: nvJPEG decodes only that box; "cpu" here;
                               libjpeg's chroma upsampling and no EXIF rotation, as PIL decodes)
      -> augment (one torch operator: each view's box resized from its sample's crop with PIL's
                  bicubic filter, the flip, ColorJitter, grayscale, the blur, the RandAugment slots,
                  normalisation; pipelines.augment, pipelines.resize)

The crop boxes are the seeded sampler's (drawn in each file's own size), so DALI and the PIL
reference executor crop the same pixels: the parity contract of F holds on decoded crops. The sample
index reaches the momentum state through the plan's order, as in DaliExecutor: DALI reads files in
exactly the order the plan asks for. How the crops are resized (chunks under a memory budget, the
pass order of each view) is planned on the host when the epoch starts, from the boxes alone.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.types import BatchInfo

from pipelines.augment import Augmentation
from pipelines.dali_executor import DaliExecutor, view_rows
from pipelines.dali_graph import folder_pipeline
from pipelines.plan import EpochPlan
from pipelines.resize import ResizePlan, chunk_bytes, plan_resize
from pipelines.table import Layout
from pipelines.undecodable import UndecodableFiles, decode_problem

READ_THREADS = 8
"""Threads reading files for the external source (reads release the GIL)."""


class EncodedImages(Protocol):
    """What the executor needs of an image folder's files (bcl_dali.data.files.ImageFiles)."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> np.ndarray: ...


class DaliFolderExecutor(DaliExecutor):
    """DaliExecutor's epochs over files: (EpochPlan) -> batches of (indices, views of `size` pixels)."""

    _decoded = True

    def _augmentation(self, images: EncodedImages) -> Augmentation:
        self.files = images
        self._reader = ThreadPoolExecutor(READ_THREADS)
        self._lent: dict[int, tuple] = {}
        self._budget = chunk_bytes(self.device)
        return Augmentation(None, self.num_slots, size=self.size, device=self.device, blur=self.blur)

    def _pipeline(self, threads: int) -> Pipeline:
        return folder_pipeline(self._read, self.operator, self.device, threads,
                               self.batches_together * self.batch_size)

    def _start_epoch(self, plan: EpochPlan) -> None:
        self._view_rows = view_rows(plan)
        super()._start_epoch(plan)

    def _host_plan(self, host: np.ndarray, span: slice) -> dict:
        return super()._host_plan(host, span) | {
            "resize": decode_plan(host, span, self._view_rows, self.augmentation.layout, self._budget)}

    def _read(self, info: BatchInfo) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Each sample's encoded file (read by a thread pool) and the box to decode, as DALI's anchor
        (x, y) and shape (width, height); kept until DALI hands out the iteration, since DALI reads
        them without a copy."""
        plan = self._next_plan(info)
        images = self._plan.order[samples_of(self._table_rows(info.iteration))]
        crops = plan.resize.crops
        lent = (list(self._reader.map(self.files.read, images.tolist())), np.ascontiguousarray(crops[:, [1, 0]]),
                np.ascontiguousarray(crops[:, [3, 2]]))
        self._lent[info.iteration] = lent
        return lent

    def _delivered(self, iteration: int) -> None:
        self._lent.pop(iteration, None)

    def _explain(self, error: Exception) -> Exception | None:
        """A decode failure: the files of the iterations DALI was working on, decoded with PIL, name
        the ones that do not decode (DALI names only a sample of its batch). The pipeline cannot be
        used after it."""
        bad = []
        for iteration, (encoded, _, _) in sorted(self._lent.items()):
            images = self._plan.order[samples_of(self._table_rows(iteration))]
            bad += [(int(image), problem) for image, data in zip(images, encoded)
                    if (problem := decode_problem(data.tobytes())) is not None]
        if not bad:
            return None
        return UndecodableFiles(np.array([i for i, _ in bad]), [why for _, why in bad])


def samples_of(span: slice) -> np.ndarray:
    """Positions in the plan of the samples whose two views fill epoch-table rows `span`."""
    return np.arange(span.start // 2, span.stop // 2)


def decode_plan(host: np.ndarray, span: slice, rows: tuple[np.ndarray, np.ndarray], layout: Layout,
                budget: int) -> ResizePlan:
    """What to decode for table rows `span` (one box per sample: the union of its two views' boxes)
    and how to resize the views from them. `rows`: each sample's view-1 and view-2 rows in the table."""
    boxes = host[span, layout.columns("crop")].astype(np.int64)
    samples = samples_of(span)
    one, two = (view[samples] - span.start for view in rows)
    sample_of_view = np.empty(len(boxes), np.int64)
    sample_of_view[one] = sample_of_view[two] = np.arange(len(samples))
    return plan_resize(boxes, sample_of_view, union_boxes(boxes[one], boxes[two]), layout.size, budget)


def union_boxes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(n, 4) top, left, height, width of the smallest box holding both boxes of each row."""
    top = np.minimum(first[:, 0], second[:, 0])
    left = np.minimum(first[:, 1], second[:, 1])
    bottom = np.maximum(first[:, 0] + first[:, 2], second[:, 0] + second[:, 2])
    right = np.maximum(first[:, 1] + first[:, 3], second[:, 1] + second[:, 3])
    return np.stack([top, left, bottom - top, right - left], 1)
