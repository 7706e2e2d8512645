"""The sampler's distributions against their formulas: crop boxes as torchvision's RandomResizedCrop
draws them, flip / jitter / grayscale at SimCLR's rates, k op slots per view each applied with
probability w (the sample's weight), ops uniform over the fifteen, fair signs, and the magnitude
m = 10 + 20 w (k = 1) or m = 5 + 25 w u with u ~ U(0, 1) once per sample (k >= 2), mapped to each op's
value by value = m / 30 * (high - low) + low."""
import math

import numpy as np
import pytest
import torch
from torchvision.transforms import RandomResizedCrop

from bcl_dali.policy import BoostPolicy, crop_boxes
from bcl_dali.pipelines.ops import RAND_OPS

# chi-square critical values at p = 0.001 (a correct sampler fails one of these 1 time in 1000)
CHI2_CRIT_001 = {1: 10.828, 2: 13.816, 14: 36.123}

OP_VALUES_AT_0_10_15_30 = {
    # value = m / 30 * (high - low) + low, worked out by hand for m = 0, 10, 15, 30 from each op's range
    # (the reference code's augment_list): shears 0..0.6, translations 0..0.66 of the side, Rotate
    # 0..60 degrees, Solarize 0..110, Posterize 4..8 bits, enhancement factors 0.1..1.9, Cutout 0..0.4.
    "ShearX": (0.0, 0.2, 0.3, 0.6), "ShearY": (0.0, 0.2, 0.3, 0.6),
    "TranslateX": (0.0, 0.22, 0.33, 0.66), "TranslateY": (0.0, 0.22, 0.33, 0.66),
    "Rotate": (0.0, 20.0, 30.0, 60.0),
    "AutoContrast": (0.0, 1 / 3, 0.5, 1.0), "Invert": (0.0, 1 / 3, 0.5, 1.0), "Equalize": (0.0, 1 / 3, 0.5, 1.0),
    "Solarize": (0.0, 110 / 3, 55.0, 110.0), "Posterize": (4.0, 16 / 3, 6.0, 8.0),
    "Contrast": (0.1, 0.7, 1.0, 1.9), "Color": (0.1, 0.7, 1.0, 1.9),
    "Brightness": (0.1, 0.7, 1.0, 1.9), "Sharpness": (0.1, 0.7, 1.0, 1.9),
    "Cutout": (0.0, 0.4 / 3, 0.2, 0.4),
}
SIGNED_OPS = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}


def chi_square(observed: np.ndarray, expected: np.ndarray) -> float:
    keep = expected > 0
    return float(((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum())


def sample(k: int, weights: np.ndarray, seed: int = 0, hw=(32, 32)):
    return BoostPolicy(k).sample(weights, np.random.default_rng(seed), hw)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("w", [0.0, 0.3, 0.75, 1.0])
def test_applied_op_counts_are_binomial(k, w):
    n = 20000
    params = sample(k, np.full(n, w))
    for view in params.views:
        counts = np.bincount(view.op_applied.sum(axis=1), minlength=k + 1)
        pmf = np.array([math.comb(k, j) * w ** j * (1 - w) ** (k - j) for j in range(k + 1)])
        if w in (0.0, 1.0):
            assert counts[int(w) * k] == n  # degenerate: never / always
        else:
            assert chi_square(counts, n * pmf) < CHI2_CRIT_001[k]


def test_op_ids_uniform_over_the_fifteen_ops():
    params = sample(2, np.full(20000, 0.5))
    ids = np.concatenate([v.op_id.ravel() for v in params.views])
    counts = np.bincount(ids, minlength=len(RAND_OPS))
    assert len(counts) == 15
    assert chi_square(counts, np.full(15, len(ids) / 15)) < CHI2_CRIT_001[14]


def test_k1_magnitude_is_linear_in_weight_and_shared_by_views():
    w = np.linspace(0, 1, 101)
    params = sample(1, w)
    for view in params.views:
        np.testing.assert_allclose(view.op_magnitude[:, 0], 10 + 20 * w, rtol=1e-6)


def test_k2_magnitude_is_uniform_times_weight_and_shared_by_views():
    n = 20000
    params = sample(2, np.ones(n))
    m1, m2 = params.view1.op_magnitude, params.view2.op_magnitude
    np.testing.assert_array_equal(m1, m2)  # u drawn once per sample
    np.testing.assert_array_equal(m1[:, 0], m1[:, 1])  # one m per view, both slots
    # at w = 1: m = 5 + 25 u, u ~ U(0,1): Kolmogorov-Smirnov against the uniform CDF (alpha 0.001: 1.95/sqrt n)
    u = np.sort((m1[:, 0] - 5) / 25)
    ks = np.max(np.abs(np.arange(1, n + 1) / n - u))
    assert u.min() >= 0 and u.max() <= 1 and ks < 1.95 / math.sqrt(n)
    half = sample(2, np.full(n, 0.4)).view1.op_magnitude[:, 0]
    assert half.min() >= 5 and half.max() <= 5 + 25 * 0.4 + 1e-5
    assert abs(half.mean() - (5 + 25 * 0.4 / 2)) < 4 * (25 * 0.4 / math.sqrt(12)) / math.sqrt(n)


def test_strength_sets_the_magnitude_at_weight_one():
    params = BoostPolicy(1, strength=20).sample(np.array([0.0, 1.0]), np.random.default_rng(0), (32, 32))
    np.testing.assert_allclose(params.view1.op_magnitude[:, 0], [10, 20])
    with pytest.raises(ValueError):
        BoostPolicy(1, strength=8)


def test_op_values_follow_the_magnitude_formula():
    """Each op's value at m = 0, 10, 15, 30 equals the hand-computed number above, negated by a
    negative sign for the five geometric ops only. Fails if an op's range in pipelines/ops.py
    changes (mutation tried: TranslateX's high 0.66 made 0.45) or the sign reaches an unsigned op."""
    assert [op.name for op in RAND_OPS] == list(OP_VALUES_AT_0_10_15_30)
    m = np.array([0.0, 10.0, 15.0, 30.0])
    for op in RAND_OPS:
        expected = np.array(OP_VALUES_AT_0_10_15_30[op.name])
        np.testing.assert_allclose(op.value(m, np.ones(4)), expected, rtol=1e-12, atol=1e-12, err_msg=op.name)
        negated = -expected if op.name in SIGNED_OPS else expected
        np.testing.assert_allclose(op.value(m, -np.ones(4)), negated, rtol=1e-12, atol=1e-12, err_msg=op.name)
    assert {op.name for op in RAND_OPS if op.signed} == SIGNED_OPS


def test_weights_give_the_hand_computed_magnitudes_and_op_values():
    """BCL-I (k = 1): m = 10 + 20 w, so weights 0, 0.25, 1 give m = 10, 15, 30, i.e. a Rotate of
    20, 30, 60 degrees and a Posterize to int(5.33) = 5, 6, 8 bits. Fails if the magnitude's floor or
    slope changes (mutation tried: SINGLE_OP_FLOOR 10 made 5)."""
    view = sample(1, np.array([0.0, 0.25, 1.0])).view1
    np.testing.assert_allclose(view.op_magnitude[:, 0], [10.0, 15.0, 30.0])
    rotate, posterize = (RAND_OPS[[op.name for op in RAND_OPS].index(name)] for name in ("Rotate", "Posterize"))
    np.testing.assert_allclose(rotate.value(view.op_magnitude[:, 0], np.ones(3)), [20.0, 30.0, 60.0], rtol=1e-6)
    assert posterize.value(view.op_magnitude[:, 0], np.ones(3)).astype(int).tolist() == [5, 6, 8]


def test_signs_are_fair_coins():
    view = sample(1, np.ones(20000)).view1
    plus = int((view.op_sign == 1).sum())
    assert set(np.unique(view.op_sign)) == {-1, 1}
    assert chi_square(np.array([plus, 20000 - plus]), np.array([10000, 10000])) < CHI2_CRIT_001[1]


def test_base_parameters_follow_the_simclr_recipe():
    n = 20000
    view = sample(0, np.zeros(n)).view1
    assert view.op_id.shape == (n, 0)
    for flags, p in ((view.flip, 0.5), (view.jitter, 0.8), (view.grayscale, 0.2)):
        hits = int(flags.sum())
        assert chi_square(np.array([hits, n - hits]), np.array([n * p, n * (1 - p)])) < CHI2_CRIT_001[1]
    f = view.jitter_factors
    for column, (lo, hi) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]):
        assert f[:, column].min() >= lo and f[:, column].max() <= hi
        assert abs(f[:, column].mean() - (lo + hi) / 2) < 4 * (hi - lo) / math.sqrt(12 * n)
    assert (np.sort(view.jitter_order, axis=1) == np.arange(4)).all()
    first = np.bincount(view.jitter_order[:, 0], minlength=4)
    assert chi_square(first, np.full(4, n / 4)) < 16.27  # df 3, p 0.001


def test_crop_boxes_inside_image_and_within_torchvision_ranges():
    boxes = crop_boxes(np.random.default_rng(0), 20000, 32, 32)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 32).all()
    area = h * w / 1024
    # rounding w and h to pixels moves area and aspect a little outside (0.1, 1) and (3/4, 4/3)
    assert area.min() >= 0.08 and area.max() <= 1
    ratio = w / h
    assert ratio.min() >= 0.6 and ratio.max() <= 1.67


def test_crop_boxes_match_torchvision_get_params_in_distribution():
    torch.manual_seed(0)
    image = torch.zeros(3, 32, 32)
    n = 8000
    tv = np.array([RandomResizedCrop.get_params(image, [0.1, 1.0], [3 / 4, 4 / 3]) for _ in range(n)])
    ours = crop_boxes(np.random.default_rng(1), n, 32, 32)
    for column in (2, 3):  # h, w: two-sample chi-square over pixel sizes
        a, b = np.bincount(tv[:, column], minlength=33), np.bincount(ours[:, column], minlength=33)
        keep = (a + b) >= 10
        statistic = float(((a[keep] - b[keep]) ** 2 / (a[keep] + b[keep])).sum())
        assert statistic < 64.0  # df ~ 30, p 0.001 critical value is 59.7 at df 30, 62.0 at df 32
    for column in (0, 1):  # positions given size are uniform: mean offset is (32 - size) / 2
        size = ours[:, column + 2]
        assert abs((ours[:, column] - (32 - size) / 2).mean()) < 0.2


def test_fallback_central_crop_for_extreme_aspect():
    boxes = crop_boxes(np.random.default_rng(0), 50, 4, 64)  # very wide image: many attempts fail
    assert (boxes[:, 2] <= 4).all() and (boxes[:, 3] <= 64).all()


def test_same_seed_same_parameters():
    a, b = sample(2, np.full(100, 0.5), seed=3), sample(2, np.full(100, 0.5), seed=3)
    c = sample(2, np.full(100, 0.5), seed=4)
    for name in ("crop", "op_id", "op_applied", "jitter_factors", "op_aux"):
        assert np.array_equal(getattr(a.view1, name), getattr(b.view1, name))
    assert not np.array_equal(a.view1.crop, c.view1.crop)
