"""The DALI graphs of the augmentation: a fixed, branch-free chain of stages over the whole batch.

Two graphs: `crop_resize_flip` makes each view's crop, one DALI sample per view (crops differ in
size); `augment` runs everything else on the views as frames of a few long sequences (FHWC), so
each operator is one launch over the batch, not one per sample: per-sample work in DALI costs on
the order of a microsecond per operator, and a batch holds a thousand views.

Every stage runs on every frame with per-frame parameters that are the identity where the view
does not use it (principle 2 of DESIGN.md), so the graph has no conditionals and its size does not
grow with the number of ops. Stages follow PIL's integer arithmetic: ImageEnhance blends in
float32 and truncates, grey is PIL's rounded fixed-point L, point maps are one table lookup, and
the hue adjustment is PIL's 8-bit HSV round trip with PIL's float32 / float64 rounding steps.
Every rounding is written out (floor, then an exact cast), since DALI's casts round ties away from
zero on the CPU but to even on the GPU. The same definitions build for "cpu" and "gpu".
"""
from __future__ import annotations

import numpy as np
import nvidia.dali.math as dmath
from nvidia.dali import fn, types
from nvidia.dali.data_node import DataNode

from pipelines.dali_params import JITTER_SLOTS, PRE_HUE_SLOTS
from pipelines.normalize import MEAN, STD
from pipelines.ops import CUTOUT_FILL
from pipelines.slot import LUMA, lut_tables

LUMA_ROW = [float(w) for w in LUMA]
SMOOTH_KERNEL = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13
"""PIL's ImageFilter.SMOOTH, the degenerate image of ImageEnhance.Sharpness."""
LUT_VALUES = [float(v) for v in lut_tables()]
LUT_KEYS = list(range(len(LUT_VALUES)))


class GraphInputs:
    """The parameter nodes: CPU for named arguments (DALI accepts only CPU data there; per-frame in
    the augment graph), the pipeline's device for arithmetic operands."""

    def __init__(self, nodes: dict[str, DataNode], device: str, per_frame: bool) -> None:
        self._nodes = nodes
        self._device = device
        self._per_frame = per_frame
        self._on_device: dict[str, DataNode] = {}

    def arg(self, name: str) -> DataNode:
        return fn.per_frame(self._nodes[name]) if self._per_frame else self._nodes[name]

    def tensor(self, name: str) -> DataNode:
        if self._device == "cpu":
            return self._nodes[name]
        if name not in self._on_device:
            self._on_device[name] = self._nodes[name].gpu()
        return self._on_device[name]

    def constant(self, values: np.ndarray) -> DataNode:
        """A constant array operand, placed on the pipeline's device (no per-iteration copy)."""
        return types.Constant(values, device=self._device)


def augment(frames: DataNode, inputs: GraphInputs, size: int, num_slots: int) -> DataNode:
    """uint8 FHWC crops -> the augmented, normalised float16 FHWC views."""
    x = frames
    for j in range(JITTER_SLOTS):
        if j == PRE_HUE_SLOTS:
            x = hue(x, inputs.tensor("hue_shift"), inputs.tensor("hue_active"), inputs)
        x = _truncate(blend(x, inputs.tensor(f"jitter_factor{j}"), inputs.tensor(f"jitter_grey{j}"),
                            inputs.tensor(f"jitter_mean{j}")))
    x = _round(fn.coord_transform(x, M=inputs.arg("grayscale")))
    frame = _Frame(inputs, size)
    for s in range(num_slots):
        x = rand_augment_slot(x, inputs, f"slot{s}_", frame)
    return fn.crop_mirror_normalize(x, mean=[255 * m for m in MEAN], std=[255 * s for s in STD],
                                    dtype=types.FLOAT16, output_layout="FHWC")


def crop_resize_flip(images: DataNode, inputs: GraphInputs, size: int) -> DataNode:
    """RandomResizedCrop (crop first, as PIL sees only the crop) and the flip, via a reversed ROI.

    DALI's cubic filter is PIL's (Keys, a = -1/2) but replicates the crop's edge pixels where PIL
    renormalises the truncated kernel, so pixels within ~2 source pixels of the crop edge differ.
    """
    crop = fn.slice(images, inputs.arg("crop_anchor"), inputs.arg("crop_shape"), axis_names="HW",
                    normalized_anchor=False, normalized_shape=False)
    return fn.resize(crop, size=(size, size), roi_start=inputs.arg("flip_start"), roi_end=inputs.arg("flip_end"),
                     roi_relative=True, interp_type=types.INTERP_CUBIC, antialias=True)


def blend(x: DataNode, factor: DataNode, grey: DataNode, mean: DataNode,
          extra_degenerate: DataNode | None = None) -> DataNode:
    """PIL's ImageEnhance before truncation: D + f (x - D) in float32, D the degenerate image.

    D = grey * L + mean * round(mean(L)) (+ extra): black for Brightness (all weights 0), the grey
    image L for Color / saturation, its rounded mean for Contrast, the smoothed image for Sharpness.
    """
    luma = _round(fn.coord_transform(x, M=LUMA_ROW))
    mean_grey = _round(fn.reductions.mean(luma, axis_names="HW", keep_dims=True))
    degenerate = luma * grey + mean_grey * mean
    if extra_degenerate is not None:
        degenerate = degenerate + extra_degenerate
    return degenerate + factor * (x - degenerate)


def _truncate(y: DataNode) -> DataNode:
    """PIL's blend result: truncated towards zero and clipped to [0, 255] (the cast saturates)."""
    return fn.cast(dmath.floor(y), dtype=types.UINT8)


def _round(y: DataNode) -> DataNode:
    """Round half up to uint8, as PIL's fixed-point grey (+ 0x8000 >> 16), int(mean + 0.5) and C's
    round() of non-negative values do."""
    return fn.cast(dmath.floor(y + 0.5), dtype=types.UINT8)


def hue(x: DataNode, shift: DataNode, active: DataNode, inputs: GraphInputs) -> DataNode:
    """torchvision's adjust_hue on PIL: RGB -> 8-bit HSV, H += shift (mod 256), back to RGB.

    PIL's rgb2hsv / hsv2rgb (Convert.c) mix float32 variables with float64 literals; the casts
    below (and the precomputed tables) round exactly where PIL does, so the result is PIL's bit
    for bit. The forward transform works on single-channel planes to keep the work small.
    """
    value = fn.reductions.max(x, axis_names="C", keep_dims=True)
    chroma = value - fn.reductions.min(x, axis_names="C", keep_dims=True)
    saturation = fn.lookup_table(fn.cast(chroma, dtype=types.UINT16) * 256 + value, keys=SATURATION_KEYS,
                                 values=SATURATION_VALUES, dtype=types.FLOAT)

    # h = offset + q(plus) - q(minus), q(c) = (v - c) / chroma in float32, by the first maximal channel
    red, green, blue = x[:, :, :, 0:1], x[:, :, :, 1:2], x[:, :, :, 2:3]
    red_max = fn.cast(red == value, dtype=types.FLOAT)
    green_max = fn.cast(green == value, dtype=types.FLOAT) * (1.0 - red_max)
    blue_max = 1.0 - red_max - green_max
    plus = blue * red_max + red * green_max + green * blue_max
    minus = green * red_max + blue * green_max + red * blue_max
    divisor = dmath.max(fn.cast(chroma, dtype=types.FLOAT), 1.0)
    hue6 = fn.cast(_f64((value - plus) / divisor) - _f64((value - minus) / divisor)
                   + (2.0 * green_max + 4.0 * blue_max), dtype=types.FLOAT)
    wrapped = fn.cast(_fraction(_f64(hue6) / 6.0 + 1.0), dtype=types.FLOAT)
    shifted = dmath.floor(_f64(wrapped) * 255.0) + shift
    shifted = shifted - 256.0 * dmath.floor(shifted / 256.0)

    # hsv2rgb: channel = round(v * (1 - P)), P = s * A (float64) + s * B (float32), per sector table
    key = fn.cast(shifted, dtype=types.UINT16) + inputs.constant(np.array([0, 256, 512], np.uint16))
    exact = fn.lookup_table(key, keys=HSV_KEYS, values=HSV_FLOAT64_WEIGHTS, dtype=types.FLOAT64)
    rounded = fn.lookup_table(key, keys=HSV_KEYS, values=HSV_FLOAT32_WEIGHTS, dtype=types.FLOAT)
    product = _f64(saturation) * exact + _f64(saturation * rounded)
    converted = _f64(fn.cast(value, dtype=types.FLOAT)) * (1.0 - product)
    return _round(converted * active + x * (1.0 - active))


def _saturation_table() -> np.ndarray:
    """PIL's s = chroma / v (float32), us = int(s * 255.0), fs = us / 255.0 (float32), by 256 * chroma + v."""
    chroma, value = np.divmod(np.arange(65536), 256)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(value > 0, chroma.astype(np.float32) / value.astype(np.float32), np.float32(0))
    us = np.trunc(s.astype(np.float64) * 255.0)
    return np.where(chroma <= value, (us / 255.0).astype(np.float32), 0).astype(np.float64)


def _hsv_weights() -> tuple[np.ndarray, np.ndarray]:
    """hsv2rgb per (channel, 8-bit hue): the channel is v (weight 0), p = v(1 - s), q = v(1 - s f)
    with s f a float32 product, or t = v(1 - s (1 - f)) in float64. Returned as the float64 weight
    A (1 for p, 1 - f for t) and the float32 weight B (f for q), keyed 256 * channel + hue."""
    hue = np.arange(256)
    sector = hue * 6.0 / 255.0
    whole = np.floor(sector)
    fraction = (sector - whole).astype(np.float32).astype(np.float64)
    roles = ["vtp", "qvp", "pvt", "pqv", "tpv", "vpq"]
    exact, rounded = np.zeros((3, 256)), np.zeros((3, 256))
    for h in hue:
        for channel, role in enumerate(roles[int(whole[h]) % 6]):
            if role == "p":
                exact[channel, h] = 1.0
            elif role == "t":
                exact[channel, h] = 1.0 - fraction[h]
            elif role == "q":
                rounded[channel, h] = fraction[h]
    return exact.ravel(), rounded.ravel()


SATURATION_VALUES = [float(v) for v in _saturation_table()]
SATURATION_KEYS = list(range(len(SATURATION_VALUES)))
HSV_FLOAT64_WEIGHTS, HSV_FLOAT32_WEIGHTS = ([float(v) for v in w] for w in _hsv_weights())
HSV_KEYS = list(range(768))


class _Frame:
    """Constants over a frame's pixels, made once per graph: the 1-pixel border (PIL's filter
    copies it) and the row and column indices (for Cutout's box)."""

    def __init__(self, inputs: GraphInputs, size: int) -> None:
        interior = np.zeros((size, size, 1), np.float32)
        interior[1:-1, 1:-1] = 1
        self.interior = inputs.constant(interior)
        self.rows = inputs.constant(np.arange(size, dtype=np.float32).reshape(size, 1, 1))
        self.columns = inputs.constant(np.arange(size, dtype=np.float32).reshape(1, size, 1))
        self.pixels = float(size * size)
        self.fill = inputs.constant(np.array(CUTOUT_FILL, np.float32))


def rand_augment_slot(x: DataNode, inputs: GraphInputs, prefix: str, frame: _Frame) -> DataNode:
    """One RandAugment slot: every stage runs, each is the identity unless this sample's op uses it.

    At most one stage is active per sample, so their order does not matter, and the blend and the
    autocontrast share one truncation (each is exactly the identity where inactive)."""
    x = fn.warp_affine(x, matrix=inputs.arg(prefix + "affine"), fill_value=0, interp_type=types.INTERP_NN)
    smoothed = _smoothed(x, frame.interior) * inputs.tensor(prefix + "smooth")
    y = blend(x, inputs.tensor(prefix + "factor"), inputs.tensor(prefix + "grey"), inputs.tensor(prefix + "mean"),
              smoothed)
    x = _truncate(_auto_contrast(x, y, inputs.tensor(prefix + "autocontrast")))
    x = fn.lookup_table(x + inputs.tensor(prefix + "lut"), keys=LUT_KEYS, values=LUT_VALUES, dtype=types.UINT8)
    y = _equalize(x, inputs.tensor(prefix + "equalize"), frame.pixels)
    return fn.cast(_cutout(y, inputs, prefix, frame), dtype=types.UINT8)


def _cutout(y: DataNode, inputs: GraphInputs, prefix: str, frame: _Frame) -> DataNode:
    """Fill the frame's box [top, bottom) x [left, right) with the reference's grey (empty: nothing)."""
    inside = ((frame.rows >= inputs.tensor(prefix + "cutout_top")) & (frame.rows < inputs.tensor(prefix + "cutout_bottom"))
              & (frame.columns >= inputs.tensor(prefix + "cutout_left"))
              & (frame.columns < inputs.tensor(prefix + "cutout_right")))
    return y + inside * (frame.fill - y)


def _smoothed(x: DataNode, interior: DataNode) -> DataNode:
    """PIL's x.filter(SMOOTH): the 3x3 kernel rounded to uint8 inside, the 1-pixel border copied."""
    xf = fn.cast(x, dtype=types.FLOAT)
    return xf + (fn.filter(x, SMOOTH_KERNEL) - xf) * interior


def _auto_contrast(x: DataNode, y: DataNode, active: DataNode) -> DataNode:
    """PIL's autocontrast (cutoff 0) of image x applied to y (= x where active), before truncation:
    i * scale + offset per channel, in float64 like PIL, scale = 255 / (max - min), offset = -min * scale."""
    low = fn.reductions.min(x, axis_names="HW", keep_dims=True)
    spread = fn.reductions.max(x, axis_names="HW", keep_dims=True) - low
    stretch = (spread > 0) * active
    scale = 255.0 / _f64(dmath.max(spread, 1))
    return y * (scale * stretch + (1.0 - stretch)) - low * scale * stretch


def _equalize(x: DataNode, active: DataNode, pixels: float) -> DataNode:
    """PIL's ImageOps.equalize from DALI's (OpenCV's) histogram equalisation, within 1 level.

    PIL maps a pixel of value v to min(255, (step // 2 + n_below(v)) // step), where n_below
    counts the channel's pixels below v and step = (N - n_at_top) // 255 (identity when step is
    0). OpenCV's equalisation of the inverted image gives round(n_below * 255 / (N - n_at_top)),
    from which n_below is recovered up to its rounding.
    """
    inverted_rank = 255.0 - fn.equalize(types.Constant(255, dtype=types.UINT8) - x)
    top = fn.reductions.max(x, axis_names="HW", keep_dims=True)
    below_top = pixels - fn.reductions.sum(fn.cast(x == top, dtype=types.FLOAT), axis_names="HW", keep_dims=True)
    step = dmath.floor(below_top / 255.0)
    n_below = inverted_rank * (below_top / 255.0)
    equalized = dmath.min(dmath.floor((dmath.floor(step / 2.0) + n_below) / dmath.max(step, 1.0)), 255.0)
    use = (step > 0) * active
    return equalized * use + x * (1.0 - use)


def _fraction(t: DataNode) -> DataNode:
    """fmod(t, 1) for t >= 0, exactly; DALI's GPU `%` on float64 is wrong, so it is not used."""
    return t - dmath.floor(t)


def _f64(node: DataNode) -> DataNode:
    return fn.cast(node, dtype=types.FLOAT64)

