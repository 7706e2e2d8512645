"""Data sources: the built-in synthetic-lt set, torchvision-format CIFAR folders and .npz files."""
from __future__ import annotations

import hashlib
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets import CIFAR10, CIFAR100

from bcl_dali.data import LongTailedData, load_data, load_pool
from bcl_dali.errors import UserError
from bcl_dali.split import SplitError
from bcl_dali.split import long_tail_counts

GENERATION_LIMIT_S = 20.0


@pytest.fixture(scope="module")
def synthetic() -> LongTailedData:
    start = time.perf_counter()
    data = load_data("synthetic-lt")
    elapsed = time.perf_counter() - start
    print(f"\nsynthetic-lt at its defaults: {len(data.train) + len(data.probe) + len(data.test)} images "
          f"in {elapsed:.2f} s")
    assert elapsed < GENERATION_LIMIT_S
    return data


def test_synthetic_training_set_follows_the_cifar100_lt_profile(synthetic: LongTailedData) -> None:
    np.testing.assert_array_equal(synthetic.train_class_counts, long_tail_counts(100, 450, 100))
    assert len(synthetic.train) == len(synthetic.train_indices) == 9754
    pool = load_pool("synthetic-lt")
    np.testing.assert_array_equal(synthetic.train.labels, pool.labels[synthetic.train_indices])
    assert synthetic.train.images.pixels.shape == (9754, 32, 32, 3) and synthetic.train.images.pixels.dtype == np.uint8


def test_synthetic_probe_and_test_sets_are_balanced(synthetic: LongTailedData) -> None:
    assert np.all(np.bincount(synthetic.probe.labels) == 200)
    assert np.all(np.bincount(synthetic.test.labels) == 100)
    assert {size: len(subsets) for size, subsets in synthetic.shots.items()} == {100: 5, 50: 5, 10: 5}
    for size, subsets in synthetic.shots.items():
        for positions in subsets:
            assert np.all(np.bincount(synthetic.probe.labels[positions], minlength=100) == size)
    assert not np.array_equal(synthetic.shots[100][0], synthetic.shots[100][1])


def test_synthetic_pixels_depend_only_on_seed_and_index() -> None:
    pool = load_pool("synthetic-lt", seed=7)
    first, second = pool.images(np.arange(0, 600)).pixels, pool.images(np.arange(300, 900)).pixels
    np.testing.assert_array_equal(first[300:], second[:300])
    np.testing.assert_array_equal(pool.images(np.array([599, 2, 450])).pixels[[2, 0]], first[[450, 599]])
    np.testing.assert_array_equal(load_pool("synthetic-lt", seed=7).images(np.arange(600)).pixels, first)
    other = load_pool("synthetic-lt", seed=8).images(np.arange(600)).pixels
    assert np.mean(other != first) > 0.5


def test_synthetic_data_is_byte_identical_for_a_seed() -> None:
    one, two = (load_data("synthetic-lt", num_classes=10, seed=3) for _ in range(2))
    for part in ("train", "probe", "test"):
        assert getattr(one, part).images.pixels.tobytes() == getattr(two, part).images.pixels.tobytes()
    assert all(np.array_equal(a, b) for size in one.shots for a, b in zip(one.shots[size], two.shots[size]))
    reseeded = load_data("synthetic-lt", num_classes=10, seed=4)
    np.testing.assert_array_equal(reseeded.train_indices, one.train_indices)
    assert reseeded.train.images.pixels.tobytes() != one.train.images.pixels.tobytes()


def test_synthetic_classes_are_not_separable_by_pixels_or_colour(synthetic: LongTailedData) -> None:
    """Nearest class mean on raw pixels and on mean colour stay near chance (1%): a network has to learn
    shape and texture (that contrastive training does is shown by the evaluation tests)."""
    def nearest_mean_accuracy(train: np.ndarray, test: np.ndarray) -> float:
        means = np.stack([train[synthetic.probe.labels == c].mean(0) for c in range(100)])
        distance = (test ** 2).sum(1)[:, None] - 2 * test @ means.T + (means ** 2).sum(1)[None]
        return float(np.mean(distance.argmin(1) == synthetic.test.labels))

    def flat(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float32) / 255

    def mean_colour(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1, 3).mean(1)

    pixels = nearest_mean_accuracy(flat(synthetic.probe.images.pixels), flat(synthetic.test.images.pixels))
    colour = nearest_mean_accuracy(mean_colour(synthetic.probe.images.pixels), mean_colour(synthetic.test.images.pixels))
    assert pixels < 0.05
    assert colour < 0.03


def test_synthetic_class_count_is_bounded() -> None:
    with pytest.raises(UserError, match="synthetic-lt has between 2 and 100 classes"):
        load_pool("synthetic-lt", num_classes=101)


def _reference_layout(root: Path, probe: np.ndarray, shots: list[np.ndarray], split: np.ndarray) -> Path:
    """The reference's folder layout under `root` for a dataset called `toy`; returns the split's path."""
    (root / "toy").mkdir()
    (root / "toy_imbSub_with_subsets").mkdir()
    np.save(root / "toy" / "toy_trainIdxList.npy", probe)
    for k, subset in enumerate(shots, start=1):
        np.save(root / "toy_imbSub_with_subsets" / f"toy_split{k}_test_10shot.npy", subset)
    np.save(root / "toy_imbSub_with_subsets" / "toy_split1_D_i.npy", split)
    return root / "toy_imbSub_with_subsets" / "toy_split1_D_i.npy"


def test_split_in_the_reference_layout_brings_its_probe_pool_and_shots(tmp_path: Path) -> None:
    labels = load_pool("synthetic-lt", num_classes=10).labels
    probe = np.flatnonzero(np.arange(len(labels)) % 3 == 0)[::-1].copy()
    shots = [np.concatenate([probe[labels[probe] == c][k:k + 10] for c in range(10)]) for k in (0, 10)]
    split = _reference_layout(tmp_path, probe, shots, np.arange(100, 400))
    data = load_data("synthetic-lt", num_classes=10, split=split)
    np.testing.assert_array_equal(data.train_indices, np.arange(100, 400))
    np.testing.assert_array_equal(data.probe_indices, probe)
    assert list(data.shots) == [10] and len(data.shots[10]) == 2
    for subset, positions in zip(shots, data.shots[10]):
        np.testing.assert_array_equal(np.sort(data.probe_indices[positions]), np.sort(subset))
    probe_pool = load_pool("synthetic-lt", num_classes=10).images(probe[:5])
    np.testing.assert_array_equal(data.probe.images[:5], probe_pool)


def test_reference_shots_outside_the_probe_pool_are_refused(tmp_path: Path) -> None:
    split = _reference_layout(tmp_path, np.arange(0, 1000), [np.arange(990, 1010)], np.arange(50))
    with pytest.raises(UserError, match=r"toy_split1_test_10shot.npy holds index 1000, which is not in the probe pool"):
        load_data("synthetic-lt", num_classes=10, split=split)


def test_split_outside_the_layout_keeps_the_source_probe_pool(tmp_path: Path) -> None:
    np.save(tmp_path / "mine.npy", np.arange(0, 5000, 7))
    data = load_data("synthetic-lt", num_classes=10, split=tmp_path / "mine.npy")
    assert len(data.train) == len(np.arange(0, 5000, 7))
    np.testing.assert_array_equal(data.probe_indices, np.arange(2000))
    assert sorted(data.shots) == [10, 50, 100]


def _write_fake_cifar(root: Path, kind: type[CIFAR10], num_classes: int, per_class: int,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, np.ndarray]:
    """Pickles in torchvision's CIFAR layout; their md5s replace the real ones that torchvision checks."""
    rng = np.random.default_rng(0)
    folder = root / kind.base_folder
    folder.mkdir(parents=True)
    label_key = "fine_labels" if kind is CIFAR100 else "labels"
    labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
    data = rng.integers(0, 256, (len(labels), 3 * 32 * 32), dtype=np.uint8)
    parts = np.array_split(np.arange(len(labels)), len(kind.train_list))
    files = {name: {"data": data[rows], label_key: labels[rows].tolist()}
             for (name, _), rows in zip(kind.train_list, parts)}
    files[kind.test_list[0][0]] = {"data": data[:num_classes * 2], label_key: labels[:num_classes * 2].tolist()}
    files[kind.meta["filename"]] = {kind.meta["key"]: [f"class{c}" for c in range(num_classes)]}
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content))

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(kind, "train_list", [[name, md5(name)] for name, _ in kind.train_list])
    monkeypatch.setattr(kind, "test_list", [[name, md5(name)] for name, _ in kind.test_list])
    monkeypatch.setattr(kind, "meta", {**kind.meta, "md5": md5(kind.meta["filename"])})
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@pytest.mark.parametrize(("dataset", "kind", "num_classes"),
                         [("cifar100-lt", CIFAR100, 100), ("cifar10-lt", CIFAR10, 10)])
def test_cifar_folder_loads_as_a_long_tailed_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str,
                                                 kind: type[CIFAR10], num_classes: int) -> None:
    images, labels = _write_fake_cifar(tmp_path, kind, num_classes, 12, monkeypatch)
    data = load_data(dataset, data_dir=tmp_path, imbalance=5)
    assert data.num_classes == num_classes
    np.testing.assert_array_equal(data.train_class_counts, long_tail_counts(num_classes, 10, 5))
    np.testing.assert_array_equal(data.train.images, images[data.train_indices])
    np.testing.assert_array_equal(data.train.labels, labels[data.train_indices])
    np.testing.assert_array_equal(data.probe.images, images)
    assert list(data.shots) == [10] and len(data.shots[10]) == 5
    np.testing.assert_array_equal(data.test.images, images[:num_classes * 2])
    assert data.test.images.pixels.flags.c_contiguous


def test_cifar_split_file_is_validated_against_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_fake_cifar(tmp_path, CIFAR100, 100, 12, monkeypatch)
    np.save(tmp_path / "split.npy", np.arange(0, 1200, 5))
    assert len(load_data("cifar100-lt", data_dir=tmp_path, split=tmp_path / "split.npy").train) == 240
    np.save(tmp_path / "wide.npy", np.arange(0, 50_000, 5))
    with pytest.raises(SplitError, match=r"outside the valid range \[0, 1200\)"):
        load_data("cifar100-lt", data_dir=tmp_path, split=tmp_path / "wide.npy")


def test_cifar_without_a_folder_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="cifar100-lt needs --data-dir DIR"):
        load_pool("cifar100-lt")
    with pytest.raises(UserError, match=f"no intact CIFAR100 in {tmp_path / 'cifar-100-python'}.*--download"):
        load_pool("cifar100-lt", data_dir=tmp_path)
    _write_fake_cifar(tmp_path, CIFAR100, 100, 2, monkeypatch)
    with open(tmp_path / "cifar-100-python" / "train", "ab") as file:
        file.write(b"corrupt")
    with pytest.raises(UserError, match="no intact CIFAR100"):
        load_pool("cifar100-lt", data_dir=tmp_path)


def _npz_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (100, 8, 8, 3), dtype=np.uint8), "y_train": np.repeat(np.arange(5), 20),
            "x_test": rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8), "y_test": np.repeat(np.arange(5), 4)}


def test_npz_loads_as_a_long_tailed_set(tmp_path: Path) -> None:
    arrays = _npz_arrays()
    np.savez(tmp_path / "toy.npz", **arrays)
    data = load_data("npz", data_dir=tmp_path / "toy.npz", imbalance=4)
    assert data.train_class_counts.tolist() == [18, 12, 9, 6, 4]
    np.testing.assert_array_equal(data.train.images, arrays["x_train"][data.train_indices])
    np.testing.assert_array_equal(data.probe.images, arrays["x_train"])
    np.testing.assert_array_equal(data.test.labels, arrays["y_test"])
    assert list(data.shots) == [10]


@pytest.mark.parametrize(("change", "message"), [
    ({"x_train": None}, "lacks x_train; it must hold x_train, y_train, x_test, y_test"),
    ({"x_train": np.zeros((100, 8, 8, 3), np.float32)}, r"x_train is float32 with shape \(100, 8, 8, 3\)"),
    ({"x_test": np.zeros((20, 8, 8), np.uint8)}, r"x_test is uint8 with shape \(20, 8, 8\)"),
    ({"y_train": np.zeros(99, np.int64)}, r"y_train is int64 with shape \(99,\); expected \(100,\)"),
    ({"y_test": np.zeros(20, np.float64)}, "y_test is float64"),
    ({"y_train": np.repeat(np.arange(-1, 4), 20)}, "y_train holds label -1"),
    ({"y_train": np.repeat([0, 1, 3, 4, 4], 20)}, "class 2 has no images in y_train"),
    ({"y_test": np.repeat(np.arange(5), 4) + 1}, "y_test holds label 5, but y_train has only classes 0..4"),
    ({"x_test": np.zeros((20, 9, 9, 3), np.uint8)}, r"x_train images are \(8, 8\) but x_test images are \(9, 9\)"),
])
def test_npz_problems_are_named(tmp_path: Path, change: dict, message: str) -> None:
    arrays = {key: value for key, value in {**_npz_arrays(), **change}.items() if value is not None}
    np.savez(tmp_path / "toy.npz", **arrays)
    with pytest.raises(UserError, match=message):
        load_data("npz", data_dir=tmp_path / "toy.npz", imbalance=4)


def test_npz_file_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs --data-dir FILE.npz"):
        load_pool("npz")
    with pytest.raises(UserError, match="does not exist"):
        load_pool("npz", data_dir=tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(UserError, match="is not a readable .npz archive"):
        load_pool("npz", data_dir=tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(UserError, match="holds a single array, not an .npz archive"):
        load_pool("npz", data_dir=tmp_path / "single.npy")


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(UserError, match="unknown dataset 'imagenet-lt'; choose one of synthetic-lt, cifar100-lt"):
        load_pool("imagenet-lt")
