"""How an image source's pixels reach the augmentation: the input stage of the one DALI graph.

    ResidentInput: uint8 (N, S, S, 3) images kept on the device; the iteration's table rows go in
                   (external_source, taken without a copy), and the first stage resizes each view's
                   box straight from the resident images.
    FileInput:     encoded files; each sample's file and the union of its two views' boxes go in
                   (external_source), DALI decodes that box (decoders.image_slice, nvJPEG on "mixed"
                   on the GPU; libjpeg's chroma upsampling and no EXIF rotation, as PIL decodes), and
                   the first stage resizes each view's box from its sample's decoded union.

Everything after the first stage is the same for both (pipelines.augment). An input also says what
its iterations need planned on the host (a decode plan for files), what its source callback gives
DALI, and, after a DALI failure, which of its files do not decode. The crop boxes are the seeded
sampler's, drawn in each image's own size, so DALI and the PIL reference executor crop the same pixels.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol

import numpy as np
import torch
from nvidia.dali import fn, types
from nvidia.dali.data_node import DataNode

from bcl_dali.pipelines.augment import Augmentation
from bcl_dali.pipelines.iteration import IterationPlan
from bcl_dali.pipelines.resize import ResizePlan, chunk_bytes, plan_resize
from bcl_dali.pipelines.table import Layout
from bcl_dali.pipelines.undecodable import UndecodableFiles, decode_problem

READ_THREADS = 8
"""Threads reading files for the external source (reads release the GIL)."""
FirstStage = Callable[[list[torch.Tensor], IterationPlan], torch.Tensor]


class EncodedImages(Protocol):
    """What a FileInput needs of an image folder's files (bcl_dali.data.files.ImageFiles)."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> np.ndarray: ...


class ResidentInput:
    """In-memory images, gathered on the device by the first stage."""

    graphable = True
    """Static shapes, no decode: the dense schedule can be a CUDA graph (pipelines.graphs)."""

    def __init__(self, images: np.ndarray) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
        self.images = images

    def augmentation(self, num_slots: int, size: int, device: torch.device, blur: bool) -> Augmentation:
        if size != self.images.shape[1]:
            raise ValueError(f"views of in-memory images are their own size, {self.images.shape[1]}, not {size}")
        return Augmentation(torch.as_tensor(self.images), num_slots, device=device, blur=blur)

    def first_stage(self, augmentation: Augmentation) -> tuple[str, FirstStage, Callable[[list], int]]:
        """(stage name, the stage, the views of the operator's input): the crop, from the table rows."""
        return "crop", lambda inputs, plan: augmentation.crop(plan), lambda inputs: inputs[0].shape[0]

    def nodes(self, source: Callable, device: torch.device, stream: int | None) -> DataNode:
        """The iteration's table rows, a batch of one sample on the device already: no copy, ordered on
        `stream` (an idle stream of the executor's: nothing of DALI's waits on the training's)."""
        return fn.external_source(source=source, batch_info=True, device="gpu" if device.type == "cuda" else "cpu",
                                  no_copy=True, cuda_stream=stream)

    def batch_size(self, views: int) -> int:
        return 1

    def host_plan(self, host: np.ndarray, span: slice, view_rows: tuple[np.ndarray, np.ndarray],
                  layout: Layout) -> dict:
        """Nothing besides the table: the crop reads its boxes from it."""
        return {}

    def feed(self, plan: IterationPlan, images: np.ndarray, iteration: int) -> Any:
        return plan.table[None] if plan.table.is_cuda else plan.table.numpy()[None]

    def delivered(self, iteration: int) -> None:
        """DALI has handed the iteration out."""

    def explain(self) -> Exception | None:
        """Nothing to decode, nothing to explain."""
        return None


class FileInput:
    """Encoded files, each sample decoded once: the union of its two views' boxes."""

    graphable = False

    def __init__(self, files: EncodedImages) -> None:
        self.files = files
        self._reader = ThreadPoolExecutor(READ_THREADS)
        self._lent: dict[int, tuple] = {}

    def augmentation(self, num_slots: int, size: int, device: torch.device, blur: bool) -> Augmentation:
        self._budget = chunk_bytes(device)
        return Augmentation(None, num_slots, size=size, device=device, blur=blur)

    def first_stage(self, augmentation: Augmentation) -> tuple[str, FirstStage, Callable[[list], int]]:
        def resize(crops: list[torch.Tensor], plan: IterationPlan) -> torch.Tensor:
            if [tuple(crop.shape[:2]) for crop in crops] != plan.resize.shapes:
                raise RuntimeError("the decoder's crops are not the sizes planned for this iteration")
            return augmentation.resize(crops, plan)

        return "resize", resize, lambda crops: 2 * len(crops)

    def nodes(self, source: Callable, device: torch.device, stream: int | None) -> DataNode:
        files, anchor, shape = fn.external_source(source=source, batch_info=True, num_outputs=3, batch=True,
                                                  no_copy=True)
        return fn.decoders.image_slice(files, anchor, shape, device="mixed" if device.type == "cuda" else "cpu",
                                       output_type=types.RGB, normalized_anchor=False, normalized_shape=False,
                                       adjust_orientation=False, jpeg_fancy_upsampling=True)

    def batch_size(self, views: int) -> int:
        return views // 2

    def host_plan(self, host: np.ndarray, span: slice, view_rows: tuple[np.ndarray, np.ndarray],
                  layout: Layout) -> dict:
        """The iteration's decode boxes and how its views are resized from them (pipelines.resize)."""
        return {"resize": decode_plan(host, span, view_rows, layout, self._budget)}

    def feed(self, plan: IterationPlan, images: np.ndarray, iteration: int) -> tuple:
        """Each sample's encoded file (read by a thread pool) and the box to decode, as DALI's anchor
        (x, y) and shape (width, height); kept until DALI hands out the iteration, since DALI reads
        them without a copy."""
        crops = plan.resize.crops
        lent = (list(self._reader.map(self.files.read, images.tolist())), np.ascontiguousarray(crops[:, [1, 0]]),
                np.ascontiguousarray(crops[:, [3, 2]]))
        self._lent[iteration] = (lent, images)
        return lent

    def delivered(self, iteration: int) -> None:
        self._lent.pop(iteration, None)

    def explain(self) -> Exception | None:
        """A decode failure: the files of the iterations DALI was working on, decoded with PIL, name
        the ones that do not decode (DALI names only a sample of its batch). The pipeline cannot be
        used after it."""
        bad = []
        for iteration, ((encoded, _, _), image_indices) in sorted(self._lent.items()):
            bad += [(int(image), problem) for image, data in zip(image_indices, encoded)
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
