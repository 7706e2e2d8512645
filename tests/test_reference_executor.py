"""The reference executor against direct PIL/torchvision calls written as the reference code writes them."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode

from bcl_dali.policy import BoostPolicy
from pipelines.normalize import MEAN, STD
from pipelines.ops import OP_INDEX, cutout_centre
from pipelines.params import AugParams, ViewParams
from pipelines.plan import EpochPlan
from pipelines.reference import ReferenceExecutor, augment_view

SIZE = 32
CUTOUT_AUX = (0.7, 0.2)


def smooth_noisy_image(seed: int, size: int = SIZE) -> np.ndarray:
    """A gradient plus noise inside 30..220, so every op (autocontrast included) changes it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    channels = np.stack([x, y, (x + y) / 2], axis=-1) * 150 + 50
    return np.clip(channels + rng.normal(0, 12, channels.shape), 30, 220).astype(np.uint8)


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray(smooth_noisy_image(0))


def view_params(*, crop: tuple[int, int, int, int] = (0, 0, SIZE, SIZE), flip: bool = False,
                jitter: bool = False, factors: tuple[float, ...] = (1.0, 1.0, 1.0, 0.0),
                order: tuple[int, ...] = (0, 1, 2, 3), grayscale: bool = False,
                slots: tuple[tuple[str, bool, int, float], ...] = ()) -> ViewParams:
    """One sample's parameters; defaults are the identity base chain. A slot is (op, applied, sign, m)."""
    k = len(slots)
    return ViewParams(
        crop=np.array([crop], np.int32), flip=np.array([flip]), jitter=np.array([jitter]),
        jitter_factors=np.array([factors], np.float32), jitter_order=np.array([order], np.int8),
        grayscale=np.array([grayscale]),
        op_id=np.array([[OP_INDEX[s[0]] for s in slots]], np.int16).reshape(1, k),
        op_applied=np.array([[s[1] for s in slots]], bool).reshape(1, k),
        op_sign=np.array([[s[2] for s in slots]], np.int8).reshape(1, k),
        op_magnitude=np.array([[s[3] for s in slots]], np.float32).reshape(1, k),
        op_aux=np.tile(np.array(CUTOUT_AUX, np.float32), (1, k, 1)),
    )


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


# The reference code's ops, written out directly; (min, max, signed, op) as in REFERENCE.md's table.
def _numpy_uniform(low: float, u: float, high: float = 1.0) -> float:
    """numpy's uniform(low, high) from its underlying draw u in [0, 1): low + (high - low) u."""
    return low + (high - low) * u


def _cutout(img: Image.Image, v: float) -> Image.Image:
    """The reference's CutoutAbs, its centre drawn by np.random.uniform(w), i.e. uniform(low=w, high=1)."""
    w, h = img.size
    v = v * w
    x0 = int(max(0, _numpy_uniform(w, CUTOUT_AUX[0]) - v / 2.0))
    y0 = int(max(0, _numpy_uniform(h, CUTOUT_AUX[1]) - v / 2.0))
    img = img.copy()
    ImageDraw.Draw(img).rectangle((x0, y0, min(w, x0 + v), min(h, y0 + v)), (125, 123, 114))
    return img


REFERENCE_OPS = {
    "ShearX": (0, 0.6, True, lambda img, v: img.transform(img.size, Image.AFFINE, (1, v, 0, 0, 1, 0))),
    "ShearY": (0, 0.6, True, lambda img, v: img.transform(img.size, Image.AFFINE, (1, 0, 0, v, 1, 0))),
    "TranslateX": (0, 0.66, True,
                   lambda img, v: img.transform(img.size, Image.AFFINE, (1, 0, v * img.size[0], 0, 1, 0))),
    "TranslateY": (0, 0.66, True,
                   lambda img, v: img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, v * img.size[1]))),
    "Rotate": (0, 60, True, lambda img, v: img.rotate(v)),
    "AutoContrast": (0, 1, False, lambda img, v: ImageOps.autocontrast(img)),
    "Invert": (0, 1, False, lambda img, v: ImageOps.invert(img)),
    "Equalize": (0, 1, False, lambda img, v: ImageOps.equalize(img)),
    "Solarize": (0, 110, False, lambda img, v: ImageOps.solarize(img, v)),
    "Posterize": (4, 8, False, lambda img, v: ImageOps.posterize(img, max(1, int(v)))),
    "Contrast": (0.1, 1.9, False, lambda img, v: ImageEnhance.Contrast(img).enhance(v)),
    "Color": (0.1, 1.9, False, lambda img, v: ImageEnhance.Color(img).enhance(v)),
    "Brightness": (0.1, 1.9, False, lambda img, v: ImageEnhance.Brightness(img).enhance(v)),
    "Sharpness": (0.1, 1.9, False, lambda img, v: ImageEnhance.Sharpness(img).enhance(v)),
    "Cutout": (0, 0.4, False, _cutout),
}
OP_CASES = [(name, m, sign) for name, (_, _, signed, _) in REFERENCE_OPS.items()
            for m in (5, 17, 30) for sign in ((1, -1) if signed else (1,))]


def test_cutout_centre_is_numpys_uniform_with_the_image_size_as_low() -> None:
    """The reference's np.random.uniform(w) is uniform(low=w, high=1): the same numbers, from the same
    draws, and a centre in (1, w], never at 0."""
    reference, ours = np.random.RandomState(7), np.random.RandomState(7)
    centres = np.array([cutout_centre(ours.random_sample(), 32) for _ in range(2000)])
    np.testing.assert_array_equal(centres, [reference.uniform(32) for _ in range(2000)])
    assert centres.min() > 1.0 and centres.max() <= 32.0 and centres.max() > 31.9


def test_every_op_of_the_table_is_covered() -> None:
    assert set(REFERENCE_OPS) == set(OP_INDEX)


def test_identity_base_chain_is_exact(image: Image.Image) -> None:
    assert np.array_equal(pixels(augment_view(image, view_params(), 0, SIZE)), pixels(image))


@pytest.mark.parametrize(("name", "magnitude", "sign"), OP_CASES)
def test_op_matches_direct_pil_call(image: Image.Image, name: str, magnitude: int, sign: int) -> None:
    low, high, signed, reference = REFERENCE_OPS[name]
    value = magnitude / 30 * (high - low) + low
    expected = pixels(reference(image, sign * value if signed else value))
    actual = pixels(augment_view(image, view_params(slots=((name, True, sign, magnitude),)), 0, SIZE))
    assert np.array_equal(actual, expected)
    if not (name == "Posterize" and magnitude == 30):  # 8 bits kept is the identity
        assert not np.array_equal(actual, pixels(image)), "the test image should be changed by the op"


def test_signed_ops_honour_the_sign(image: Image.Image) -> None:
    for name in ("ShearX", "TranslateY", "Rotate"):
        plus, minus = (pixels(augment_view(image, view_params(slots=((name, True, s, 20),)), 0, SIZE))
                       for s in (1, -1))
        assert not np.array_equal(plus, minus), name


def test_slots_not_applied_leave_the_base_chain_output(image: Image.Image) -> None:
    base = dict(crop=(2, 3, 25, 21), flip=True, jitter=True, factors=(1.2, 0.8, 1.3, 0.05))
    unapplied = (("Invert", False, 1, 30), ("Rotate", False, -1, 30), ("Cutout", False, 1, 30))
    expected = pixels(augment_view(image, view_params(**base), 0, SIZE))
    assert np.array_equal(pixels(augment_view(image, view_params(**base, slots=unapplied), 0, SIZE)), expected)


def test_only_applied_slots_run_in_slot_order(image: Image.Image) -> None:
    slots = (("Rotate", True, -1, 20), ("Invert", False, 1, 30), ("Cutout", True, 1, 30))
    rotated = REFERENCE_OPS["Rotate"][3](image, -20 / 30 * 60)
    expected = pixels(_cutout(rotated, 0.4))
    assert np.array_equal(pixels(augment_view(image, view_params(slots=slots), 0, SIZE)), expected)


def test_crop_is_torchvisions_bicubic_resized_crop(image: Image.Image) -> None:
    top, left, height, width = 3, 5, 20, 17
    actual = pixels(augment_view(image, view_params(crop=(top, left, height, width)), 0, SIZE))
    expected = F.resized_crop(image, top, left, height, width, [SIZE, SIZE], InterpolationMode.BICUBIC)
    assert np.array_equal(actual, pixels(expected))
    by_hand = image.crop((left, top, left + width, top + height)).resize((SIZE, SIZE), Image.BICUBIC)
    assert np.array_equal(actual, pixels(by_hand))


def test_output_size_is_the_requested_size(image: Image.Image) -> None:
    assert augment_view(image, view_params(crop=(4, 4, 10, 12)), 0, 16).size == (16, 16)


def test_flip_mirrors(image: Image.Image) -> None:
    actual = pixels(augment_view(image, view_params(flip=True), 0, SIZE))
    assert np.array_equal(actual, pixels(image)[:, ::-1])


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0)])
def test_jitter_runs_in_the_given_order(image: Image.Image, order: tuple[int, ...]) -> None:
    brightness, contrast, saturation, hue = 1.3, 0.7, 1.4, 0.08
    adjust = {0: lambda im: F.adjust_brightness(im, brightness), 1: lambda im: F.adjust_contrast(im, contrast),
              2: lambda im: F.adjust_saturation(im, saturation), 3: lambda im: F.adjust_hue(im, hue)}
    expected = image
    for fn_id in order:
        expected = adjust[fn_id](expected)
    params = view_params(jitter=True, factors=(brightness, contrast, saturation, hue), order=order)
    assert np.array_equal(pixels(augment_view(image, params, 0, SIZE)), pixels(expected))


def test_jitter_order_changes_the_image(image: Image.Image) -> None:
    factors = (1.3, 0.7, 1.4, 0.08)
    forward, backward = (pixels(augment_view(image, view_params(jitter=True, factors=factors, order=o), 0, SIZE))
                         for o in ((0, 1, 2, 3), (3, 2, 1, 0)))
    assert not np.array_equal(forward, backward)


def test_jitter_off_ignores_the_factors(image: Image.Image) -> None:
    params = view_params(jitter=False, factors=(1.3, 0.7, 1.4, 0.08))
    assert np.array_equal(pixels(augment_view(image, params, 0, SIZE)), pixels(image))


def test_grayscale_keeps_three_equal_channels(image: Image.Image) -> None:
    actual = pixels(augment_view(image, view_params(grayscale=True), 0, SIZE))
    assert actual.shape == (SIZE, SIZE, 3)
    assert np.array_equal(actual[..., 0], actual[..., 1]) and np.array_equal(actual[..., 0], actual[..., 2])
    assert np.array_equal(actual[..., 0], pixels(image.convert("L")))


def test_full_chain_runs_crop_flip_jitter_grayscale_then_ops(image: Image.Image) -> None:
    crop, factors, order = (1, 2, 24, 28), (0.8, 1.3, 0.6, -0.05), (2, 0, 3, 1)
    params = view_params(crop=crop, flip=True, jitter=True, factors=factors, order=order, grayscale=True,
                         slots=(("Solarize", True, 1, 17),))
    expected = F.resized_crop(image, *crop, [SIZE, SIZE], InterpolationMode.BICUBIC).transpose(
        Image.FLIP_LEFT_RIGHT)
    adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
    for fn_id in order:
        expected = adjust[fn_id](expected, factors[fn_id])
    expected = ImageOps.solarize(expected.convert("L").convert("RGB"), 17 / 30 * 110)
    assert np.array_equal(pixels(augment_view(image, params, 0, SIZE)), pixels(expected))


# The batch executor.

def dataset(n: int) -> np.ndarray:
    return np.stack([smooth_noisy_image(seed) for seed in range(n)])


def policy_plan(n: int, batch_size: int, policy: BoostPolicy, weights: np.ndarray, seed: int = 1) -> EpochPlan:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    return EpochPlan(order, batch_size, policy.sample(weights[order], rng, (SIZE, SIZE)))


def expected_views(images: np.ndarray, params: ViewParams) -> torch.Tensor:
    """ToTensor then Normalize per sample, as the reference's transform and model would."""
    return torch.stack([
        F.normalize(F.to_tensor(augment_view(Image.fromarray(image), params, row, SIZE)), MEAN, STD)
        for row, image in enumerate(images)
    ])


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return dataset(10)


@pytest.fixture(scope="module")
def plan(images: np.ndarray) -> EpochPlan:
    return policy_plan(len(images), 4, BoostPolicy(k=2), np.random.default_rng(2).random(len(images)))


def test_batches_follow_the_plan(images: np.ndarray, plan: EpochPlan) -> None:
    batches = list(ReferenceExecutor(images).epoch(plan))
    assert [len(indices) for indices, _ in batches] == [4, 4, 2]
    for b, (indices, views) in enumerate(batches):
        view1, view2 = views.chunk(2)
        order, params = plan.batch(b)
        assert indices.dtype == torch.int64 and indices.tolist() == order.tolist()
        for view, view_params in zip((view1, view2), params.views):
            assert view.dtype == torch.float32 and view.shape == (len(order), 3, SIZE, SIZE)
            assert torch.equal(view, expected_views(images[order], view_params))
        assert views.is_contiguous() and not torch.equal(view1, view2)


def test_worker_processes_give_identical_batches(images: np.ndarray, plan: EpochPlan) -> None:
    in_process = list(ReferenceExecutor(images, workers=0).epoch(plan))
    in_workers = list(ReferenceExecutor(images, workers=2).epoch(plan))
    assert len(in_process) == len(in_workers) == plan.num_batches
    for a, b in zip(in_process, in_workers):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_output_size_follows_the_executor_size(images: np.ndarray, plan: EpochPlan) -> None:
    _, views = next(ReferenceExecutor(images, size=16).epoch(plan))
    assert views.shape == (8, 3, 16, 16)


def test_rejects_images_that_are_not_uint8_nhwc(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        ReferenceExecutor(images.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        ReferenceExecutor(images[..., 0])


def test_boosted_policy_runs_end_to_end_with_every_op_applied(images: np.ndarray) -> None:
    plan = policy_plan(len(images), 8, BoostPolicy(k=1), np.ones(len(images)))
    assert plan.params.view1.op_applied.all() and plan.params.view2.op_applied.all()
    unapplied = AugParams(*(replace(v, op_applied=np.zeros_like(v.op_applied)) for v in plan.params.views))
    plain = EpochPlan(plan.order, plan.batch_size, unapplied)
    executor = ReferenceExecutor(images)
    seen = []
    for (indices, views), (_, plain_views) in zip(executor.epoch(plan), executor.epoch(plain)):
        seen += indices.tolist()
        for view, plain_view in zip(views.chunk(2), plain_views.chunk(2)):
            assert torch.isfinite(view).all()
            assert view.min() >= -MEAN[0] / STD[0] - 1e-4 and view.max() <= (1 - MEAN[2]) / STD[2] + 1e-4
            assert not torch.equal(view, plain_view)
    assert sorted(seen) == list(range(len(images)))
