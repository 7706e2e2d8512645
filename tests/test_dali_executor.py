"""The DALI executor against the PIL reference executor, op by op, and its batching contract."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from nvidia.dali import fn, pipeline_def
from nvidia.dali.ops import _registry

from bcl_dali.policy import BoostPolicy, crop_boxes
from pipelines.dali_executor import DaliExecutor
from pipelines.dali_graph import GraphInputs, augment, crop_resize_flip
from pipelines.dali_params import CROP_FIELDS, frame_input_names
from pipelines.ops import OP_INDEX, RAND_OPS
from pipelines.params import AugParams, ViewParams
from pipelines.plan import EpochPlan
from tests.augmentation_cases import dali_views, natural_images, plain_view, reference_views

MAGNITUDES = (5.0, 17.0, 30.0)
IMAGES_PER_CASE = 4


@pytest.fixture(scope="module")
def every_op_case():
    """One batch holding every op at three magnitudes and both signs, run through both executors."""
    cases = list(itertools.product(range(len(RAND_OPS)), MAGNITUDES, (1, -1)))
    n = len(cases) * IMAGES_PER_CASE
    images = natural_images(n, seed=1)
    fields = plain_view(n, 1, seed=1)
    for c, (op_id, magnitude, sign) in enumerate(cases):
        rows = slice(c * IMAGES_PER_CASE, (c + 1) * IMAGES_PER_CASE)
        fields["op_id"][rows], fields["op_magnitude"][rows], fields["op_sign"][rows] = op_id, magnitude, sign
    fields["op_applied"][:] = True
    view = ViewParams(**fields)
    return cases, images, dali_views(images, view), reference_views(images, view)


def _case(every_op_case, name: str):
    cases, images, dali, reference = every_op_case
    for c, (op_id, magnitude, sign) in enumerate(cases):
        if RAND_OPS[op_id].name == name:
            rows = slice(c * IMAGES_PER_CASE, (c + 1) * IMAGES_PER_CASE)
            yield magnitude, sign, images[rows], dali[rows].astype(int), reference[rows].astype(int)


EXACT_OPS = ["TranslateX", "TranslateY", "Rotate", "AutoContrast", "Invert", "Solarize", "Posterize",
             "Contrast", "Color", "Brightness", "Sharpness", "Cutout"]


@pytest.mark.parametrize("name", EXACT_OPS)
def test_op_is_bit_exact(every_op_case, name):
    """These ops reproduce PIL's arithmetic step for step (see pipelines/dali_graph.py)."""
    for magnitude, sign, images, dali, reference in _case(every_op_case, name):
        assert not np.array_equal(reference, images) or name == "Posterize" and magnitude == 30
        np.testing.assert_array_equal(dali, reference, err_msg=f"{name} m={magnitude} sign={sign}")


@pytest.mark.parametrize("name,axis", [("ShearX", 0), ("ShearY", 1)])
def test_shear_differs_only_where_a_source_coordinate_is_a_pixel_boundary(every_op_case, name, axis):
    """Nearest-neighbour sampling floors the source coordinate. PIL accumulates it in float64,
    DALI computes it in float32: they can only disagree when the exact coordinate is an integer,
    i.e. in the rows (ShearX) or columns (ShearY) where value * (index + 1/2) + 1/2 is integral."""
    op = RAND_OPS[OP_INDEX[name]]
    for magnitude, sign, _, dali, reference in _case(every_op_case, name):
        value = float(op.value(np.float32(magnitude), sign))
        coordinate = value * (np.arange(32) + 0.5) + 0.5
        boundary = np.abs(coordinate - np.round(coordinate)) < 1e-9
        differs = (dali != reference).any(axis=(0, 3)).any(axis=1 - axis)
        assert not (differs & ~boundary).any(), f"{name} m={magnitude} sign={sign}"
        if not boundary.any():
            np.testing.assert_array_equal(dali, reference)


def test_equalize_within_one_level(every_op_case):
    """PIL's equalize is rebuilt from DALI's OpenCV-style one (see `_equalize`): it recovers the
    count of darker pixels up to the rounding of that equalisation, hence at most 1 level off."""
    for magnitude, sign, images, dali, reference in _case(every_op_case, "Equalize"):
        assert np.abs(dali - reference).max() <= 1
        assert np.abs(dali - images.astype(int)).mean() > 10 * np.abs(dali - reference).mean()


def _jittered(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    fields = plain_view(n, 0, seed)
    fields["jitter"][:] = True
    fields["jitter_factors"] = np.stack([rng.uniform(0.6, 1.4, n), rng.uniform(0.6, 1.4, n),
                                         rng.uniform(0.6, 1.4, n), rng.uniform(-0.1, 0.1, n)], 1).astype(np.float32)
    fields["jitter_order"] = np.argsort(rng.random((n, 4)), axis=1).astype(np.int8)
    return fields


def test_color_jitter_in_every_order_is_bit_exact():
    """Brightness, contrast, saturation and the 8-bit HSV hue shift, each of the 24 orders."""
    images = natural_images(96, seed=2)
    fields = _jittered(96, seed=2)
    fields["jitter_order"] = np.array(list(itertools.permutations(range(4))) * 4, np.int8)
    view = ViewParams(**fields)
    np.testing.assert_array_equal(dali_views(images, view), reference_views(images, view))


def test_flip_and_grayscale_are_bit_exact():
    images = natural_images(16, seed=3)
    fields = plain_view(16, 0)
    fields["flip"][::2] = True
    fields["grayscale"][1::2] = True
    view = ViewParams(**fields)
    np.testing.assert_array_equal(dali_views(images, view), reference_views(images, view))


def test_resized_crop_matches_pil_bicubic_inside_the_crop():
    """DALI's cubic resampling is PIL's kernel (Keys, a = -1/2); PIL renormalises the kernel where it
    leaves the crop, DALI repeats the edge pixel. Where the 4-tap support lies inside the crop the
    two agree up to rounding: PIL rounds to uint8 between its horizontal and vertical passes, one
    level each; near the crop's edge they differ a little more."""
    n = 64
    images = natural_images(n, seed=4)
    fields = plain_view(n, 0)
    fields["crop"] = crop_boxes(np.random.default_rng(4), n, 32, 32)
    view = ViewParams(**fields)
    difference = np.abs(dali_views(images, view).astype(int) - reference_views(images, view).astype(int))
    assert difference.mean() < 0.5
    for i, (top, left, height, width) in enumerate(fields["crop"]):
        inside_rows = _support_inside(height)
        inside_cols = _support_inside(width)
        assert difference[i][np.ix_(inside_rows, inside_cols)].max() <= 2


def _support_inside(length: int, size: int = 32) -> np.ndarray:
    centre = (np.arange(size) + 0.5) * length / size
    return np.nonzero((centre - 2 >= 0) & (centre + 2 <= length))[0]


def test_full_policy_close_to_reference():
    """Random crops, jitter, grayscale and two ops per view: the crop's edge resampling and
    Equalize's one level are the only sources of difference, and ops downstream can amplify them."""
    n = 96
    rng = np.random.default_rng(5)
    images = natural_images(n, seed=5)
    view = BoostPolicy(2).sample(rng.random(n), rng, (32, 32)).view1
    difference = np.abs(dali_views(images, view).astype(int) - reference_views(images, view).astype(int))
    assert difference.mean() < 0.5


def test_unapplied_slots_are_an_exact_identity():
    """Weight 0 means no op is applied: the k = 2 graph then equals the k = 0 graph bit for bit."""
    n = 32
    rng = np.random.default_rng(6)
    images = natural_images(n, seed=6)
    with_slots = BoostPolicy(2).sample(np.zeros(n), rng, (32, 32)).view1
    assert not with_slots.op_applied.any()
    without = ViewParams(**{**vars(with_slots), "op_id": np.zeros((n, 0), np.int16),
                            "op_applied": np.zeros((n, 0), bool), "op_sign": np.zeros((n, 0), np.int8),
                            "op_magnitude": np.zeros((n, 0), np.float32), "op_aux": np.zeros((n, 0, 2), np.float32)})
    np.testing.assert_array_equal(dali_views(images, with_slots), dali_views(images, without))


def _plan(order: np.ndarray, batch: int, weights: float, seed: int) -> EpochPlan:
    params = BoostPolicy(1).sample(np.full(len(order), weights), np.random.default_rng(seed), (32, 32))
    return EpochPlan(order, batch, params)


def test_batches_follow_the_plan_across_epochs_and_a_short_last_batch():
    """Each epoch yields its plan's batches in order; the first batches of epoch 2 come from the
    epoch-2 plan even though DALI prefetches (they equal a fresh executor's output for that plan)."""
    images = natural_images(20, seed=7)
    executor = DaliExecutor(images, size=32, num_slots=1, batch_size=8, device=torch.device("cpu"), threads=2)
    first = _plan(np.random.default_rng(0).permutation(20), 8, 0.0, seed=1)
    second = _plan(np.random.default_rng(1).permutation(20), 8, 1.0, seed=2)
    batches = list(executor.epoch(first))
    assert [(len(i), len(views)) for i, views in batches] == [(8, 16), (8, 16), (4, 8)]
    np.testing.assert_array_equal(torch.cat([i for i, _ in batches]).numpy(), first.order)
    again = [(i, views.clone()) for i, views in executor.epoch(second)]
    fresh = list(DaliExecutor(images, size=32, num_slots=1, batch_size=8, device=torch.device("cpu"),
                              threads=2).epoch(second))
    assert len(again) == len(fresh) == second.num_batches
    for (i, views), (j, expected) in zip(again, fresh):
        assert torch.equal(i, j) and torch.equal(views, expected)


def test_views_are_one_float16_channels_last_tensor():
    images = natural_images(6, seed=8)
    executor = DaliExecutor(images, size=32, num_slots=1, batch_size=6, device=torch.device("cpu"), threads=2)
    ((indices, views),) = list(executor.epoch(_plan(np.arange(6), 6, 0.5, seed=3)))
    assert views.shape == (12, 3, 32, 32) and views.dtype == torch.float16
    assert views.is_contiguous(memory_format=torch.channels_last)  # NHWC memory, no permute copy
    view1, view2 = views.chunk(2)
    assert not torch.equal(view1, view2)  # two independent draws of the recipe


def _operators(device: str, slots: int) -> set[tuple[str, str]]:
    names = frame_input_names(slots)

    @pipeline_def(batch_size=2, num_threads=1, device_id=0 if device == "gpu" else None)
    def crops():
        images = fn.external_source(name="images", device=device, layout="HWC")
        params = fn.external_source(source=lambda: None, num_outputs=len(CROP_FIELDS))
        return crop_resize_flip(images, GraphInputs(dict(zip(CROP_FIELDS, params)), device, per_frame=False), 32)

    @pipeline_def(batch_size=1, num_threads=1, device_id=0 if device == "gpu" else None)
    def views():
        frames = fn.external_source(name="frames", device=device, layout="FHWC")
        params = fn.external_source(source=lambda: None, num_outputs=len(names))
        return augment(frames, GraphInputs(dict(zip(names, params)), device, per_frame=True), 32, slots)

    used = set()
    for graph in (crops, views):
        pipe = graph()
        pipe._build_graph()  # defines the graph without building it: no GPU is needed to inspect it
        used |= {(getattr(op._op, "schema_name", type(op._op).__name__), op._op.device) for op in pipe._ops}
    return used


def test_every_operator_of_the_gpu_graph_has_a_gpu_implementation():
    used = _operators("gpu", slots=2)
    on_gpu = {name for name, device in used if device == "gpu"}
    assert {"Resize", "WarpAffine", "Equalize", "LookupTable", "Filter", "CropMirrorNormalize"} <= on_gpu
    assert on_gpu <= set(_registry.gpu_ops()), on_gpu - set(_registry.gpu_ops())
    cpu_side = {name for name, device in used if device == "cpu"}
    assert cpu_side <= {"ExternalSource", "PerFrame"}, "only the parameters may stay on the CPU"
