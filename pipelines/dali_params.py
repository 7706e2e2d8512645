"""From the sampler's parameters to the arrays the DALI graphs read.

Vectorised over samples: a loop runs over the 15 ops and the 4 jitter positions, never over
samples. One `GraphParams` row describes one view of one image. The crop fields feed the crop
graph, one DALI sample per view; every other field is a per-frame input of the augmentation
graph, which sees the views as frames of a few long sequences.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pipelines.ops import RAND_OPS
from pipelines.params import ViewParams
from pipelines.slot import LUMA, SlotParams

PRE_HUE_SLOTS = 3
"""ColorJitter runs brightness, contrast, saturation and hue in a per-sample order. The graph
has three colour-map slots before its single hue stage and three after, which fits every order
(hue at position p leaves p adjustments before it and 3 - p after)."""
JITTER_SLOTS = 2 * PRE_HUE_SLOTS
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)
CROP_FIELDS = ("crop_anchor", "crop_shape", "flip_start", "flip_end")


@dataclass
class GraphParams:
    crop_anchor: np.ndarray
    """(n, 2) float32: (top, left) of the crop."""
    crop_shape: np.ndarray
    """(n, 2) float32: (height, width) of the crop."""
    flip_start: np.ndarray
    """(n, 2) float32: relative resize ROI start; (0, 1) to (1, 0) flips horizontally."""
    flip_end: np.ndarray
    jitter_factor: np.ndarray
    """(n, 6) float32: blend factor of each of the six jitter slots (1 where unused)."""
    jitter_grey: np.ndarray
    """(n, 6) float32: the slot blends with the grey image (saturation)."""
    jitter_mean: np.ndarray
    """(n, 6) float32: the slot blends with the rounded mean grey (contrast)."""
    hue_shift: np.ndarray
    """(n,) float32 in [0, 256): torchvision's uint8 hue shift."""
    hue_active: np.ndarray
    """(n,) float32 in {0, 1}: the sample runs PIL's HSV round trip."""
    grayscale: np.ndarray
    """(n, 3, 3) float32: identity, or every row the PIL luma weights."""
    slots: list[SlotParams]

    def select(self, rows: slice | np.ndarray) -> GraphParams:
        values = {f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "slots"}
        return GraphParams(**values, slots=[_select_slot(s, rows) for s in self.slots])

    @classmethod
    def concat(cls, parts: list[GraphParams]) -> GraphParams:
        values = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
                  for f in fields(cls) if f.name != "slots"}
        slots = [SlotParams(*(np.concatenate(a) for a in zip(*(p.slots[i].arrays() for p in parts))))
                 for i in range(len(parts[0].slots))]
        return cls(**values, slots=slots)

    def crop_arrays(self) -> list[np.ndarray]:
        """Per-sample inputs of the crop graph, in CROP_FIELDS order."""
        return [np.ascontiguousarray(getattr(self, name)) for name in CROP_FIELDS]

    def frame_arrays(self) -> list[np.ndarray]:
        """Per-frame inputs of the augmentation graph in `frame_input_names` order: a per-frame
        scalar as (n, 1, 1, 1), so it broadcasts over (frames, H, W, C); matrices as they are."""
        flat = []
        for f in fields(self):
            if f.name.startswith("jitter_"):
                flat += [getattr(self, f.name)[:, j] for j in range(JITTER_SLOTS)]
            elif f.name not in CROP_FIELDS and f.name != "slots":
                flat.append(getattr(self, f.name))
        for slot in self.slots:
            flat += slot.arrays()
        return [np.ascontiguousarray(a.reshape(-1, 1, 1, 1) if a.ndim == 1 else a) for a in flat]


def frame_input_names(num_slots: int) -> list[str]:
    names = []
    for f in fields(GraphParams):
        if f.name.startswith("jitter_"):
            names += [f"{f.name}{j}" for j in range(JITTER_SLOTS)]
        elif f.name not in CROP_FIELDS and f.name != "slots":
            names.append(f.name)
    for s in range(num_slots):
        names += [f"slot{s}_{f.name}" for f in fields(SlotParams)]
    return names


def graph_params(view: ViewParams, image_hw: tuple[int, int], size: int) -> GraphParams:
    n = view.batch_size
    top, left, height, width = view.crop.T.astype(np.float32)
    flip = view.flip
    factor, grey, mean, hue_shift, hue_active = _jitter(view)
    grayscale = np.repeat(np.eye(3, dtype=np.float32)[None], n, axis=0)
    grayscale[view.grayscale] = LUMA.astype(np.float32)
    return GraphParams(
        crop_anchor=np.stack([top, left], 1),
        crop_shape=np.stack([height, width], 1),
        flip_start=np.stack([np.zeros(n), flip.astype(np.float64)], 1).astype(np.float32),
        flip_end=np.stack([np.ones(n), 1.0 - flip], 1).astype(np.float32),
        jitter_factor=factor,
        jitter_grey=grey,
        jitter_mean=mean,
        hue_shift=hue_shift,
        hue_active=hue_active,
        grayscale=grayscale,
        slots=[_slot(view, s, (size, size)) for s in range(view.num_slots)],
    )


def _jitter(view: ViewParams) -> tuple[np.ndarray, ...]:
    """Place each sample's brightness, contrast and saturation in the slots around its hue."""
    n = view.batch_size
    factor = np.ones((n, JITTER_SLOTS), np.float32)
    grey = np.zeros((n, JITTER_SLOTS), np.float32)
    mean = np.zeros((n, JITTER_SLOTS), np.float32)
    order = view.jitter_order.astype(np.int64)
    hue_position = np.argmax(order == HUE, axis=1)
    for position in range(4):
        adjustment = order[:, position]
        slot = np.where(position < hue_position, position, PRE_HUE_SLOTS + position - hue_position - 1)
        for kind, degenerate in ((BRIGHTNESS, None), (CONTRAST, mean), (SATURATION, grey)):
            rows = np.nonzero(view.jitter & (adjustment == kind))[0]
            factor[rows, slot[rows]] = view.jitter_factors[rows, kind]
            if degenerate is not None:
                degenerate[rows, slot[rows]] = 1
    hue = view.jitter_factors[:, HUE].astype(np.float64)
    shift = np.mod(np.trunc(hue * 255), 256).astype(np.float32)
    return factor, grey, mean, shift, view.jitter.astype(np.float32)


def _slot(view: ViewParams, s: int, size: tuple[int, int]) -> SlotParams:
    params = SlotParams.identity(view.batch_size)
    for op_id, op in enumerate(RAND_OPS):
        rows = np.nonzero(view.op_applied[:, s] & (view.op_id[:, s] == op_id))[0]
        if len(rows):
            values = op.value(view.op_magnitude[rows, s], view.op_sign[rows, s])
            op.slot(params, rows, values, view.op_aux[rows, s], size)
    return params


def _select_slot(slot: SlotParams, rows: slice | np.ndarray) -> SlotParams:
    return SlotParams(*(a[rows] for a in slot.arrays()))
