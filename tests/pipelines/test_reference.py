"""The reference executor: each RandAugment op against its output computed in numpy from the op's
definition, the base chain against torchvision's functional calls, and the batch executor."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

from bcl_dali.data import ArrayImages
from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.normalize import MEAN, STD
from bcl_dali.pipelines.ops import OP_INDEX, cutout_centre
from bcl_dali.pipelines.params import AugParams, ViewParams
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import ReferenceExecutor, augment_view

SIZE = 32
CUTOUT_AUX = (0.7, 0.2)

RAMP = (np.arange(SIZE * SIZE * 3) % 256).astype(np.uint8).reshape(SIZE, SIZE, 3)
"""Every 8-bit value, in every channel."""
OPS_COVERED: set[str] = set()


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


# Each op of the table (pipelines/ops.py) against its output computed here in numpy from the op's
# definition, on small hand-made images. An op's value is m / 30 * (high - low) + low; the values
# used below are worked out by hand from the ranges: ShearX/Y 0..0.6, TranslateX/Y 0..0.66 of the
# image side, Rotate 0..60 degrees, Solarize 0..110, Posterize 4..8 bits, Contrast / Color /
# Brightness / Sharpness factors 0.1..1.9, Cutout side 0..0.4 of the image side.


def quadrants() -> np.ndarray:
    """Four flat colours whose luma L = 0.299 R + 0.587 G + 0.114 B is 124.2, 130.65, 255 and 61
    (rounded: 124, 131, 255, 61; mean 142.75, rounded 143)."""
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    image[:16, :16], image[:16, 16:] = (200, 100, 50), (10, 200, 90)
    image[16:, :16], image[16:, 16:] = (255, 255, 255), (61, 61, 61)
    return image


def apply_op(image: np.ndarray, name: str, magnitude: float, sign: int = 1,
             aux: tuple[float, float] = CUTOUT_AUX) -> np.ndarray:
    """One applied slot after the identity base chain, as int pixels."""
    params = replace(view_params(slots=((name, True, sign, magnitude),)), op_aux=np.array([[aux]], np.float32))
    return pixels(augment_view(Image.fromarray(image), params, 0, SIZE)).astype(int)


def blend(degenerate: np.ndarray, image: np.ndarray, factor: float) -> np.ndarray:
    """ImageEnhance's Image.blend(degenerate, image, factor) = D + factor (x - D), truncated to
    0..255 (PIL casts the float to an integer, it does not round)."""
    return np.clip(np.floor(degenerate + factor * (image.astype(int) - degenerate)), 0, 255).astype(int)


def nearest_warp(image: np.ndarray, source_x, source_y) -> np.ndarray:
    """out[y, x] = image at the pixel holding the source point of output pixel centre (x + 1/2, y + 1/2),
    black where that point is outside the image (PIL's AFFINE transform with NEAREST)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    sx, sy = np.floor(source_x(x, y)).astype(int), np.floor(source_y(x, y)).astype(int)
    inside = (sx >= 0) & (sx < SIZE) & (sy >= 0) & (sy < SIZE)
    out = np.zeros(image.shape, int)
    out[inside] = image[sy[inside], sx[inside]]
    return out


def covers(*names: str):
    """Marks a test as checking the named ops (see test_every_op_of_the_table_is_covered)."""
    OPS_COVERED.update(names)
    return lambda test: test


@covers("Invert")
def test_invert_is_255_minus_x() -> None:
    """Invert ignores magnitude and sign. Fails if Invert is not 255 - x (mutation tried: Invert's
    PIL function made ImageOps.solarize(img, 128))."""
    for magnitude, sign in ((0, 1), (30, -1)):
        np.testing.assert_array_equal(apply_op(RAMP, "Invert", magnitude, sign), 255 - RAMP.astype(int))


@pytest.mark.parametrize(("magnitude", "threshold"), [(0, 0), (15, 55), (30, 110)])
@covers("Solarize")
def test_solarize_inverts_from_the_threshold_up(magnitude: int, threshold: int) -> None:
    """x < t stays, x >= t becomes 255 - x, t = m / 30 * 110. Fails if the threshold range is not
    0..110 (mutation tried: SOLARIZE_RANGE = (0, 100))."""
    x = RAMP.astype(int)
    np.testing.assert_array_equal(apply_op(RAMP, "Solarize", magnitude), np.where(x < threshold, x, 255 - x))


@pytest.mark.parametrize(("magnitude", "mask"), [(0, 0xF0), (14, 0xF8), (15, 0xFC), (30, 0xFF)])
@covers("Posterize")
def test_posterize_keeps_the_top_bits(magnitude: int, mask: int) -> None:
    """Bits kept = int(m / 30 * 4 + 4): m 0 -> 4, 14 -> 5 (5.87 truncated), 15 -> 6, 30 -> 8 (the
    identity). Fails if the bit count is rounded instead of truncated (mutation tried: round(v))."""
    np.testing.assert_array_equal(apply_op(RAMP, "Posterize", magnitude), RAMP.astype(int) & mask)


@pytest.mark.parametrize(("magnitude", "factor"), [(5, 0.4), (25, 1.6)])
@covers("Brightness")
def test_brightness_scales_towards_black(magnitude: int, factor: float) -> None:
    """Degenerate image black: floor(f x), clipped at 255. Fails if Brightness blends with another
    degenerate image (mutation tried: Brightness given ImageEnhance.Contrast)."""
    np.testing.assert_array_equal(apply_op(RAMP, "Brightness", magnitude), blend(0, RAMP, factor))
    assert apply_op(RAMP, "Brightness", 15).tolist() == RAMP.tolist()  # m 15 is factor 1


@pytest.mark.parametrize(("magnitude", "factor", "first_colour"), [(5, 0.4, (165, 125, 105)),
                                                                  (25, 1.6, (234, 74, 0))])
@covers("Contrast")
def test_contrast_blends_with_the_rounded_mean_luma(magnitude: int, factor: float,
                                                      first_colour: tuple[int, ...]) -> None:
    """Degenerate image: flat grey at the image's mean luma, rounded (143 for `quadrants`), e.g.
    200 -> 143 + 0.4 (200 - 143) = 165.8 -> 165. Fails if the grey is not the image-wide mean
    (mutation tried: Contrast given ImageEnhance.Color, a per-pixel grey)."""
    actual = apply_op(quadrants(), "Contrast", magnitude)
    np.testing.assert_array_equal(actual, blend(143, quadrants(), factor))
    assert tuple(actual[0, 0]) == first_colour


@pytest.mark.parametrize(("magnitude", "factor", "first_colour"), [(5, 0.4, (154, 114, 94)),
                                                                  (25, 1.6, (245, 85, 5))])
@covers("Color")
def test_color_blends_with_each_pixels_own_luma(magnitude: int, factor: float, first_colour: tuple[int, ...]) -> None:
    """Degenerate image: each pixel's rounded luma (124, 131, 255, 61 for `quadrants`), e.g.
    200 -> 124 + 0.4 (200 - 124) = 154.4 -> 154; grey pixels stay. Fails if the grey is the image's
    mean (mutation tried: Color given ImageEnhance.Contrast)."""
    image = quadrants().astype(float)
    luma = np.floor(image @ [0.299, 0.587, 0.114] + 0.5)[..., None]
    assert sorted(np.unique(luma)) == [61, 124, 131, 255]
    actual = apply_op(quadrants(), "Color", magnitude)
    np.testing.assert_array_equal(actual, blend(luma, quadrants(), factor))
    assert tuple(actual[0, 0]) == first_colour


@pytest.mark.parametrize(("magnitude", "centre", "ring"), [(5, 90, 6), (25, 195, 0)])
@covers("Sharpness")
def test_sharpness_blends_with_the_smoothed_image(magnitude: int, centre: int, ring: int) -> None:
    """Degenerate image: PIL's SMOOTH filter, kernel [[1 1 1] [1 5 1] [1 1 1]] / 13. A lone pixel of
    143 on black smooths to 55 with 11 around it, so factor 0.4 gives 55 + 0.4 * 88 = 90.2 -> 90
    and 11 - 0.4 * 11 = 6.6 -> 6, factor 1.6 gives 195.8 -> 195 and below zero -> 0. Fails if
    Sharpness blends with another image (mutation tried: Sharpness given ImageEnhance.Brightness)."""
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[16, 16] = 143
    expected = np.zeros(image.shape, int)
    expected[15:18, 15:18], expected[16, 16] = ring, centre
    np.testing.assert_array_equal(apply_op(image, "Sharpness", magnitude), expected)


@covers("AutoContrast")
def test_autocontrast_stretches_each_channel_to_0_255() -> None:
    """Per channel (x - lo) * 255 / (hi - lo): red 40..125 -> 3 (x - 40), green 100..151 -> 5 (x - 100),
    a flat blue channel is left alone. Fails if the stretch is not per channel (mutation tried:
    ImageOps.autocontrast(img, preserve_tone=True), one range from the luma)."""
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    counter = np.arange(SIZE * SIZE).reshape(SIZE, SIZE)
    image[..., 0], image[..., 1], image[..., 2] = 40 + counter % 86, 100 + counter * 7 % 52, 77
    x = image.astype(int)
    expected = np.stack([3 * (x[..., 0] - 40), 5 * (x[..., 1] - 100), x[..., 2]], -1)
    actual = apply_op(image, "AutoContrast", 0)
    np.testing.assert_array_equal(actual, expected)
    assert actual[..., :2].min() == 0 and actual[..., :2].max() == 255


@covers("Equalize")
def test_equalize_maps_cumulative_counts() -> None:
    """PIL's equalisation per channel: step = (pixels - count of the top value) // 255, value v ->
    (step // 2 + pixels below v) // step, at most 255. Red: 512 tens, 256 twenties, 256 thirties:
    step (1024 - 256) // 255 = 3, so 10 -> 1 // 3 = 0, 20 -> 513 // 3 = 171, 30 -> 769 // 3 -> 255.
    Green: 768 fifties, 256 nineties: 50 -> 0, 90 -> 255. A flat blue is left alone. Fails if
    Equalize is a linear stretch (mutation tried: Equalize given ImageOps.autocontrast)."""
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    image[:16, :, 0], image[16:24, :, 0], image[24:, :, 0] = 10, 20, 30
    image[:24, :, 1], image[24:, :, 1] = 50, 90
    image[..., 2] = 7
    lut = {0: {10: 0, 20: 171, 30: 255}, 1: {50: 0, 90: 255}, 2: {7: 7}}
    expected = np.stack([np.vectorize(lut[c].get)(image[..., c]) for c in range(3)], -1)
    np.testing.assert_array_equal(apply_op(image, "Equalize", 0), expected)


@pytest.mark.parametrize("sign", [1, -1])
@covers("TranslateX", "TranslateY")
def test_translate_moves_the_content_by_the_rounded_shift(sign: int) -> None:
    """m 15: 0.33 * 32 = 10.56 pixels, so output pixel x shows input pixel x + 11 (x - 11 for the
    negative sign): the content moves left (up) for +, right (down) for -, black fills. Fails if
    the shift is not v * image side (mutation tried: v * side / 2)."""
    image = np.random.default_rng(3).integers(1, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    shifted_x, shifted_y = np.zeros(image.shape, int), np.zeros(image.shape, int)
    if sign > 0:
        shifted_x[:, :21], shifted_y[:21] = image[:, 11:], image[11:]
    else:
        shifted_x[:, 11:], shifted_y[11:] = image[:, :21], image[:21]
    np.testing.assert_array_equal(apply_op(image, "TranslateX", 15, sign), shifted_x)
    np.testing.assert_array_equal(apply_op(image, "TranslateY", 15, sign), shifted_y)


@pytest.mark.parametrize(("magnitude", "shear"), [(15, 0.3), (25, 0.5)])
@pytest.mark.parametrize("sign", [1, -1])
@covers("ShearX", "ShearY")
def test_shear_samples_the_sheared_source_point(magnitude: int, shear: float, sign: int) -> None:
    """ShearX: output (x, y) takes input (x + v y, y); ShearY: (x, y + v x), v = sign * m / 30 * 0.6,
    nearest pixel. Fails if the shear's direction is flipped (mutation tried: ShearX with -v)."""
    image = np.random.default_rng(4).integers(1, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    v = sign * shear
    np.testing.assert_array_equal(apply_op(image, "ShearX", magnitude, sign),
                                  nearest_warp(image, lambda x, y: x + v * y, lambda x, y: y))
    np.testing.assert_array_equal(apply_op(image, "ShearY", magnitude, sign),
                                  nearest_warp(image, lambda x, y: x, lambda x, y: y + v * x))


@pytest.mark.parametrize(("sign", "lands_at"), [(1, (8, 20)), (-1, (23, 19))])
@covers("Rotate")
def test_rotate_turns_about_the_centre_counterclockwise(sign: int, lands_at: tuple[int, int]) -> None:
    """m 30 is 60 degrees. A lone pixel at row 16, column 24 (centre (24.5, 16.5), 8.5 right of and
    0.5 below the image centre (16, 16)) turns counterclockwise (on screen, y down) to about
    (16 + 8.5 cos 60 + 0.5 sin 60, 16 - 8.5 sin 60 + 0.5 cos 60) = (20.7, 8.9): row 8, column 20;
    clockwise for the negative sign to (19.8, 23.6): row 23, column 19. Fails if the rotation runs
    the other way (mutation tried: img.rotate(-v))."""
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[16, 24] = 255
    actual = apply_op(image, "Rotate", 30, sign)
    assert [tuple(p) for p in np.argwhere(actual[..., 0])] == [lands_at]
    assert (actual[lands_at] == 255).all()


@pytest.mark.parametrize(("magnitude", "aux", "rows", "columns"), [
    (15, (0.7, 0.2), (22, 29), (7, 14)),  # side 6.4, centre (32 - 31 * 0.7, 32 - 31 * 0.2) = (10.3, 25.8)
    (30, (0.0, 0.0), (25, 32), (25, 32)),  # side 12.8 at centre (32, 32): clipped at the image edge
    (0, (0.5, 0.5), (0, 0), (0, 0)),  # side 0: nothing
])
@covers("Cutout")
def test_cutout_fills_its_box_with_the_mean_colour(magnitude: int, aux: tuple[float, float],
                                                   rows: tuple[int, int], columns: tuple[int, int]) -> None:
    """Side s = m / 30 * 0.4 * 32, centre c = 32 - 31 u (numpy's uniform(low=32, high=1)), corner
    int(c - s / 2), box up to corner + s inclusive, clipped; filled with (125, 123, 114), the rest
    untouched. Fails if the centre is drawn in [0, 32) (mutation tried: cutout_centre = length * aux)."""
    image = np.full((SIZE, SIZE, 3), 9, np.uint8)
    expected = image.astype(int)
    expected[rows[0]:rows[1], columns[0]:columns[1]] = (125, 123, 114)
    np.testing.assert_array_equal(apply_op(image, "Cutout", magnitude, aux=aux), expected)


def test_every_op_of_the_table_is_covered() -> None:
    assert OPS_COVERED == set(OP_INDEX)


def test_cutout_centre_is_numpys_uniform_with_the_image_size_as_low() -> None:
    """The reference's np.random.uniform(w) is uniform(low=w, high=1): the same numbers, from the same
    draws, and a centre in (1, w], never at 0."""
    reference, ours = np.random.RandomState(7), np.random.RandomState(7)
    centres = np.array([cutout_centre(ours.random_sample(), 32) for _ in range(2000)])
    np.testing.assert_array_equal(centres, [reference.uniform(32) for _ in range(2000)])
    assert centres.min() > 1.0 and centres.max() <= 32.0 and centres.max() > 31.9


def test_identity_base_chain_is_exact(image: Image.Image) -> None:
    assert np.array_equal(pixels(augment_view(image, view_params(), 0, SIZE)), pixels(image))


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


def test_only_applied_slots_run_in_slot_order() -> None:
    """Invert, then an unapplied Rotate, then Cutout (m 15, aux (0.7, 0.2): rows 22..28, columns 7..13):
    the inverted image with the box in Cutout's own colour, not in the inverted one (130, 132, 141),
    and nothing rotated. Fails if the slots run in reverse order or an unapplied slot runs (mutations
    tried: the slots reversed; `if applied` made `if True`)."""
    slots = (("Invert", True, 1, 30), ("Rotate", False, -1, 30), ("Cutout", True, 1, 15))
    expected = 255 - RAMP.astype(int)
    expected[22:29, 7:14] = (125, 123, 114)
    actual = pixels(augment_view(Image.fromarray(RAMP), view_params(slots=slots), 0, SIZE))
    np.testing.assert_array_equal(actual, expected)


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
    grey = pixels(expected.convert("L").convert("RGB")).astype(int)
    threshold = 17 / 30 * 110  # 62.33: Solarize inverts from 63 up
    assert np.array_equal(pixels(augment_view(image, params, 0, SIZE)), np.where(grey < threshold, grey, 255 - grey))


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
    batches = list(ReferenceExecutor(ArrayImages(images)).epoch(plan))
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
    in_process = list(ReferenceExecutor(ArrayImages(images), workers=0).epoch(plan))
    in_workers = list(ReferenceExecutor(ArrayImages(images), workers=2).epoch(plan))
    assert len(in_process) == len(in_workers) == plan.num_batches
    for a, b in zip(in_process, in_workers):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_output_size_follows_the_executor_size(images: np.ndarray, plan: EpochPlan) -> None:
    _, views = next(ReferenceExecutor(ArrayImages(images), size=16).epoch(plan))
    assert views.shape == (8, 3, 16, 16)


def test_in_memory_images_must_be_uint8_nhwc(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        ArrayImages(images.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        ArrayImages(images[..., 0])


def test_boosted_policy_runs_end_to_end_with_every_op_applied(images: np.ndarray) -> None:
    plan = policy_plan(len(images), 8, BoostPolicy(k=1), np.ones(len(images)))
    assert plan.params.view1.op_applied.all() and plan.params.view2.op_applied.all()
    unapplied = AugParams(*(replace(v, op_applied=np.zeros_like(v.op_applied)) for v in plan.params.views))
    plain = EpochPlan(plan.order, plan.batch_size, unapplied)
    executor = ReferenceExecutor(ArrayImages(images))
    seen = []
    for (indices, views), (_, plain_views) in zip(executor.epoch(plan), executor.epoch(plain)):
        seen += indices.tolist()
        for view, plain_view in zip(views.chunk(2), plain_views.chunk(2)):
            assert torch.isfinite(view).all()
            assert view.min() >= -MEAN[0] / STD[0] - 1e-4 and view.max() <= (1 - MEAN[2]) / STD[2] + 1e-4
            assert not torch.equal(view, plain_view)
    assert sorted(seen) == list(range(len(images)))
