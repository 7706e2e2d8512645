"""Long-tailed profiles, index files (the reference's and bad ones), few-shot subsets and class groups."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bcl_dali.data import save_index_file
from bcl_dali.errors import UserError
from bcl_dali.split import (SplitError, class_groups, describe_split, few_shot_subset, find_reference_files, group_accuracy,
                   load_index_file, long_tail_counts, long_tailed_subset)
from tests.paths import REPO, SPLITS

CIFAR_POOL = 50_000


@pytest.fixture(scope="module")
def cifar_like_labels() -> np.ndarray:
    """500 images per class in a shuffled order, like CIFAR-100's training set."""
    return np.random.default_rng(0).permutation(np.repeat(np.arange(100), 500))


def test_cifar100_profile_matches_the_reference_files() -> None:
    counts = long_tail_counts(100, 450, 100)
    assert counts.sum() == 9754
    assert (counts[0], counts[-1]) == (450, 4)
    assert np.all(np.diff(counts) <= 0)


def test_generated_subset_follows_the_profile_and_its_seed(cifar_like_labels: np.ndarray) -> None:
    subset = long_tailed_subset(cifar_like_labels, 100, seed=1)
    assert len(np.unique(subset)) == len(subset) == 9754
    np.testing.assert_array_equal(np.bincount(cifar_like_labels[subset], minlength=100),
                                  long_tail_counts(100, 450, 100))
    np.testing.assert_array_equal(subset, long_tailed_subset(cifar_like_labels, 100, seed=1))
    assert not np.array_equal(subset, long_tailed_subset(cifar_like_labels, 100, seed=2))


def test_generated_subset_with_another_ratio_and_head() -> None:
    labels = np.repeat(np.arange(10), 60)
    subset = long_tailed_subset(labels, 10, seed=0, max_per_class=50)
    np.testing.assert_array_equal(np.bincount(labels[subset]), long_tail_counts(10, 50, 10))
    assert np.bincount(labels[subset])[[0, -1]].tolist() == [50, 5]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"imbalance": 0.5}, "imbalance ratio must be >= 1"),
    ({"imbalance": 10, "max_per_class": 60}, "class 0 has 50 images but the long-tailed profile asks for 60"),
    ({"imbalance": 100, "max_per_class": 20}, "leaves the tail class with no images"),
])
def test_impossible_long_tailed_requests_are_refused(kwargs: dict, message: str) -> None:
    labels = np.repeat(np.arange(10), 50)
    with pytest.raises(SplitError, match=message):
        long_tailed_subset(labels, seed=0, **kwargs)


def test_a_class_without_images_is_refused() -> None:
    with pytest.raises(SplitError, match="class 2 has no images"):
        long_tailed_subset(np.repeat([0, 1, 3], 50), 10, seed=0)


def test_few_shot_subset_is_balanced_and_seeded(cifar_like_labels: np.ndarray) -> None:
    shots = few_shot_subset(cifar_like_labels, 10, seed=4)
    assert np.all(np.bincount(cifar_like_labels[shots]) == 10)
    np.testing.assert_array_equal(shots, few_shot_subset(cifar_like_labels, 10, seed=4))
    assert not np.array_equal(shots, few_shot_subset(cifar_like_labels, 10, seed=5))
    with pytest.raises(SplitError, match="fewer than 501 shots"):
        few_shot_subset(cifar_like_labels, 501, seed=0)


def _write(path: Path, content: object) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    return path


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    (b"not an array at all", "is not a readable .npy array"),
    (np.arange(6).reshape(2, 3), r"shape \(2, 3\), expected a 1-D array"),
    (np.arange(6, dtype=np.float64), "holds float64 values, expected integers"),
    (np.array([], np.int64), "is empty"),
    (np.array([0, 5, 10], np.int64), r"index 10, outside the valid range \[0, 10\)"),
    (np.array([-1, 2], np.int64), r"index -1, outside the valid range \[0, 10\)"),
    (np.array([3, 1, 3, 4, 4, 4], np.int64), r"repeats 3 indices \(e.g. 3, 2 times\)"),
])
def test_each_bad_index_file_gets_its_own_message(tmp_path: Path, content: object, message: str) -> None:
    path = _write(tmp_path / "bad.npy", content)
    with pytest.raises(SplitError, match=message) as raised:
        load_index_file(path, pool_size=10)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_good_index_file_loads_as_int64(tmp_path: Path) -> None:
    path = _write(tmp_path / "good.npy", np.array([4, 0, 9], np.int32))
    indices = load_index_file(path, pool_size=10)
    assert indices.dtype == np.int64 and indices.tolist() == [4, 0, 9]


def test_index_files_are_written_once_and_atomically(tmp_path: Path) -> None:
    path = tmp_path / "split.npy"
    save_index_file(path, np.array([2, 7, 1]))
    assert np.load(path).dtype == np.int64 and load_index_file(path, 8).tolist() == [2, 7, 1]
    with pytest.raises(UserError, match="already exists; choose another --out name"):
        save_index_file(path, np.array([0]))
    assert [p.name for p in tmp_path.iterdir()] == ["split.npy"]


@pytest.mark.skipif(not SPLITS.is_dir(), reason="the reference's split files are not beside the repository")
def test_reference_files_load_and_fit_together() -> None:
    probe = load_index_file(SPLITS / "cifar100" / "cifar100_trainIdxList.npy", CIFAR_POOL)
    held_out = load_index_file(SPLITS / "cifar100" / "cifar100_valIdxList.npy", CIFAR_POOL)
    assert (len(probe), len(held_out)) == (40_000, 5_000)
    assert len(np.intersect1d(probe, held_out)) == 0
    folder = SPLITS / "cifar100_imbSub_with_subsets"
    for k in range(1, 6):
        split = folder / f"cifar100_split{k}_D_i.npy"
        assert len(load_index_file(split, CIFAR_POOL)) == 9754
        reference = find_reference_files(split)
        assert reference is not None and reference.probe == SPLITS / "cifar100" / "cifar100_trainIdxList.npy"
        assert {size: len(files) for size, files in reference.shots.items()} == {100: 5, 50: 5, 10: 5}
        for size in (100, 50, 10):
            shots = load_index_file(folder / f"cifar100_split{k}_test_{size}shot.npy", CIFAR_POOL)
            assert len(shots) == 100 * size and np.isin(shots, probe).all()


def test_split_outside_the_reference_layout_brings_nothing_along(tmp_path: Path) -> None:
    assert find_reference_files(tmp_path / "cifar100_split1_D_i.npy") is None
    folder = tmp_path / "cifar100_imbSub_with_subsets"
    folder.mkdir()
    assert find_reference_files(folder / "cifar100_split1_D_i.npy") is None


def test_groups_of_the_cifar100_profile_are_33_33_34() -> None:
    counts = long_tail_counts(100, 450, 100)
    groups = class_groups(counts)
    assert (len(groups.many), len(groups.medium), len(groups.few)) == (34, 33, 33)
    few, medium, many = counts[groups.few], counts[groups.medium], counts[groups.many]
    assert few.max() <= medium.min() <= medium.max() <= many.min()
    np.testing.assert_array_equal(np.sort(np.concatenate([groups.many, groups.medium, groups.few])), np.arange(100))


def test_group_ties_are_broken_by_class_id() -> None:
    counts = np.random.default_rng(0).integers(0, 3, 40)
    groups = class_groups(counts)
    ranked = sorted(range(40), key=lambda c: (counts[c], c))
    assert groups.few.tolist() == ranked[:13] and groups.medium.tolist() == ranked[13:26]
    assert groups.many.tolist() == ranked[26:]


def test_groups_and_their_std_on_a_hand_computed_example() -> None:
    counts = np.array([3, 1, 3, 3, 9, 2])
    groups = class_groups(counts)
    # ascending, ties by class id: 1 (1), 5 (2), 0 (3), 2 (3), 3 (3), 4 (9)
    assert groups.few.tolist() == [1, 5] and groups.medium.tolist() == [0, 2] and groups.many.tolist() == [3, 4]
    accuracy = group_accuracy(np.array([50.0, 10.0, 40.0, 60.0, 90.0, 20.0]), groups)
    assert (accuracy.many, accuracy.medium, accuracy.few) == (75.0, 45.0, 15.0)
    assert accuracy.std == pytest.approx(np.sqrt(600.0))
    assert group_accuracy(np.array([0.5, 0.1, 0.4, 0.6, 0.9, 0.2]), groups).std == pytest.approx(np.sqrt(0.06))


def test_description_names_total_ratio_empty_classes_and_groups() -> None:
    text = describe_split(long_tail_counts(100, 450, 100))
    assert "total: 9754 images in 100 of 100 classes" in text
    assert "imbalance ratio: 112.5 (largest class 450 / smallest non-empty class 4)" in text
    assert "Many   34 classes, 96..450" in text and "Few    33 classes, 4..19" in text
    assert len(text.splitlines()) == 100 + 2 + 4
    sparse = describe_split(np.array([6, 0, 3, 0, 2]))
    assert "classes with no images: 2 (1, 3)" in sparse and "imbalance ratio: 3.0" in sparse


def test_split_imports_nothing_of_the_rest_of_the_project() -> None:
    """bcl_dali.split sits below the rest (layer 0 of ARCHITECTURE.md) and needs no torch: a script
    that reads split files imports it alone. Fails if a split module imports another room again."""
    import subprocess
    import sys
    probe = ("import sys, bcl_dali.split; import bcl_dali.split.groups, bcl_dali.split.index_file, "
             "bcl_dali.split.long_tail, bcl_dali.split.reference_layout, bcl_dali.split.summary; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('bcl_dali', 'torch') "
             "and m not in ('bcl_dali', 'bcl_dali.version') and not m.startswith('bcl_dali.split')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout
    assert out.strip() == "[]"
