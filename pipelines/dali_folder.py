"""The DALI executor for image folders: each view's crop box decoded from its file, then F's augmentation.

    external_source (CPU: the encoded files, each view's crop anchor and shape, from the epoch's table)
    external_source (the views' parameter-table rows, on the device)
      -> decoders.image_slice (device "mixed" on the GPU: nvJPEG decodes only the crop box; "cpu" here;
                               libjpeg's chroma upsampling and no EXIF rotation, as PIL decodes)
      -> pad (to the iteration's largest crop)
      -> augment (one torch operator: PIL's bicubic resize to S x S and the flip, ColorJitter,
                  grayscale, the RandAugment slots, normalisation; pipelines.augment)

The crop boxes are the seeded sampler's (drawn in each file's own size), so DALI and the PIL
reference executor crop the same pixels: the parity contract of F holds on decoded crops. Views are
samples of the pipeline's batch here (decoded crops differ in size); the torch operator stacks them
once and runs every stage on all of them. The sample index reaches the momentum state through the
plan's order, as in DaliExecutor: DALI reads files in exactly the order the plan asks for.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.types import BatchInfo

from pipelines.augment import Augmentation
from pipelines.dali_executor import DaliExecutor, TensorList
from pipelines.dali_graph import PREFETCH_DEPTH, TorchStage, Timer
from pipelines.normalize import normalized

READ_THREADS = 8
"""Threads reading files for the external source (reads release the GIL)."""


class EncodedImages(Protocol):
    """What the executor needs of an image folder's files (bcl_dali.data.files.ImageFiles)."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> np.ndarray: ...


class DaliFolderExecutor(DaliExecutor):
    """DaliExecutor's epochs over files: (EpochPlan) -> batches of (indices, views of `size` pixels)."""

    def _pipeline(self, images: EncodedImages, threads: int, dtype: torch.dtype, timer: Timer | None) -> Pipeline:
        self.files = images
        self.augmentation = Augmentation(None, self.num_slots, size=self.size, device=self.device, blur=self.blur)
        self._reader = ThreadPoolExecutor(READ_THREADS)
        layout = self.augmentation.layout
        self._image_column = layout.columns("image").start
        self._crop_columns = layout.columns("crop")
        return folder_pipeline(self._encoded, self._batch_table, self.augmentation, self.device, threads,
                               self.batches_together * 2 * self.batch_size, dtype, timer)

    def _views(self, output: TensorList) -> torch.Tensor:
        """An iteration's (2B, H, W, 3) views: the pipeline's batch of views, as one tensor."""
        return torch.from_dlpack(output.as_tensor())

    def _batch_table(self, info: BatchInfo) -> torch.Tensor | np.ndarray:
        """The iteration's table rows as a batch of rows, one per view."""
        return self._table[self._table_rows(info.iteration)]

    def _encoded(self, info: BatchInfo) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Each view's encoded file (read once per sample, shared by its two views), and its crop box
        as DALI's anchor (x, y) and shape (width, height)."""
        rows = self._host_table[self._table_rows(info.iteration)]
        images = rows[:, self._image_column].astype(np.int64)
        unique, position = np.unique(images, return_inverse=True)
        encoded = list(self._reader.map(self.files.read, unique.tolist()))
        top, left, height, width = rows[:, self._crop_columns].astype(np.int32).T
        return ([encoded[p] for p in position], np.stack([left, top], 1), np.stack([width, height], 1))


def folder_pipeline(encoded: Callable, table: Callable, augmentation: Augmentation, device: torch.device,
                    threads: int, max_views: int, dtype: torch.dtype, timer: Timer | None = None) -> Pipeline:
    """The pipeline (defined, not built): `encoded(BatchInfo)` gives the views' files and crop boxes,
    `table(BatchInfo)` their table rows (on `device`); the views come out as `dtype`, FHWC per view."""
    cuda = device.type == "cuda"
    stream = torch.cuda.current_stream(device).cuda_stream if cuda and torch.cuda.is_available() else None

    def augment(crops: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return normalized(augmentation.after_crop(augmentation.resize(crops, rows), rows), dtype)

    @pipeline_def(batch_size=max_views, num_threads=threads, prefetch_queue_depth=PREFETCH_DEPTH,
                  device_id=(device.index or 0) if cuda else None)
    def views():
        files, anchor, shape = fn.external_source(source=encoded, batch_info=True, num_outputs=3, batch=True)
        rows = fn.external_source(source=table, batch_info=True, batch=True, device="gpu" if cuda else "cpu",
                                  cuda_stream=stream)
        crops = fn.decoders.image_slice(files, anchor, shape, device="mixed" if cuda else "cpu",
                                        output_type=types.RGB, normalized_anchor=False, normalized_shape=False,
                                        adjust_orientation=False, jpeg_fancy_upsampling=True)
        crops = fn.pad(crops, fill_value=0)
        return fn.dl_tensor_python_function(crops, rows, function=TorchStage("augment", augment, device, timer,
                                                                              per_view=True),
                                            batch_processing=True, synchronize_stream=False, output_layouts="HWC",
                                            device="gpu" if cuda else "cpu", name="augment")

    return views()
