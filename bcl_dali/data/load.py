"""One entry point from a dataset name to the long-tailed training set and its evaluation sets."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bcl_dali.data.cifar import CIFAR, cifar_pool
from bcl_dali.data.folder import FolderLists, folder_pool
from bcl_dali.data.npz import npz_pool
from bcl_dali.data.sets import ImageSet, LongTailedData, TrainPool
from bcl_dali.data.synthetic import synthetic_pool
from bcl_dali.atomic import atomic_path
from bcl_dali.errors import UserError
from bcl_dali.split import SHOT_SIZES, find_reference_files, few_shot_subset, load_index_file, long_tailed_subset

DATASETS = ("synthetic-lt", *CIFAR, "npz", "folder")
SHOT_SUBSETS = 5
"""Few-shot subsets per size, as in the reference (whose results average over five)."""
DEFAULT_IMBALANCE = 100.0
"""The head / tail ratio of a drawn split (CIFAR-LT's profile)."""


def load_pool(dataset: str, *, data_dir: str | os.PathLike | None = None, download: bool = False,
              num_classes: int = 100, seed: int = 0, lists: FolderLists = FolderLists(),
              imbalance: float | None = None, verify: bool = False) -> TrainPool:
    """A source's training pool; cheap for synthetic-lt, whose pixels are rendered on demand.

    `num_classes` and `seed` shape synthetic-lt only; `lists` and `imbalance` the folder source
    (a tree is used as it is, or cut to a long-tailed subset at `imbalance`, which is then part of its
    pool), and `verify` decodes every file of a folder in full; the other sources are what their files hold.
    """
    if dataset == "synthetic-lt":
        return synthetic_pool(num_classes, seed)
    if dataset in CIFAR:
        return cifar_pool(dataset, data_dir, download)
    if dataset == "npz":
        return npz_pool(data_dir)
    if dataset == "folder":
        return folder_pool(data_dir, lists, imbalance, verify)
    raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def load_data(dataset: str, *, data_dir: str | os.PathLike | None = None, split: str | os.PathLike | None = None,
              imbalance: float | None = None, split_seed: int = 0, download: bool = False, num_classes: int = 100,
              seed: int = 0, lists: FolderLists = FolderLists(), verify: bool = False,
              left_out: frozenset[str] = frozenset(), skip_undecodable: bool = False) -> LongTailedData:
    """The training subset comes from `split` (an index file), the source itself (image folders),
    or is drawn with `imbalance` and `split_seed`.

    A split in the reference's folder layout brings the reference's probe pool and few-shot files
    along; otherwise the source's probe pool is used and few-shot subsets are drawn with `seed`.
    `left_out`: an image folder's files that a run leaves out (they do not decode): not in the probe
    pool; the training set keeps their places, which the run never plans. `skip_undecodable`: the
    training files `verify` finds undecodable are left out too.
    """
    pool = load_pool(dataset, data_dir=data_dir, download=download, num_classes=num_classes, seed=seed,
                     lists=lists, imbalance=imbalance, verify=verify)
    if skip_undecodable and pool.undecodable:
        left_out = left_out | set(pool.images(np.array(sorted(pool.undecodable))).paths.tolist())
    if split is None and pool.train_indices is not None:
        train_indices = pool.train_indices
        reference = None
    elif split is None:
        train_indices = long_tailed_subset(pool.labels, DEFAULT_IMBALANCE if imbalance is None else imbalance,
                                           split_seed, num_classes=pool.num_classes)
        reference = None
    else:
        train_indices = load_index_file(split, len(pool.labels))
        reference = find_reference_files(Path(split))
    if reference is None:
        probe_indices = pool.probe_indices
        if left_out:
            probe_indices = probe_indices[~np.isin(pool.images(probe_indices).paths, list(left_out))]
        shots = _drawn_shots(pool.labels[probe_indices], pool.num_classes, seed)
    else:
        probe_indices = load_index_file(reference.probe, len(pool.labels))
        shots = {size: [_positions_in_probe(probe_indices, load_index_file(file, len(pool.labels)), file,
                                            reference.probe) for file in files]
                 for size, files in reference.shots.items()}

    needed = np.union1d(train_indices, probe_indices)
    pixels = pool.images(needed)

    def image_set(indices: np.ndarray) -> ImageSet:
        return ImageSet(pixels[np.searchsorted(needed, indices)], pool.labels[indices])

    train_position = {int(index): position for position, index in enumerate(train_indices)}
    return LongTailedData(name=pool.name, num_classes=pool.num_classes, train=image_set(train_indices),
                          train_indices=train_indices, probe=image_set(probe_indices), probe_indices=probe_indices,
                          test=pool.test(), shots=shots, grouping=pool.grouping,
                          undecodable={train_position[i]: why for i, why in pool.undecodable.items() if i in train_position})


def _drawn_shots(probe_labels: np.ndarray, num_classes: int, seed: int) -> dict[int, list[np.ndarray]]:
    """Five few-shot subsets (positions into the probe pool) for every size each class can supply."""
    rng = np.random.default_rng(seed)
    smallest = np.bincount(probe_labels, minlength=num_classes).min()
    return {size: [few_shot_subset(probe_labels, size, rng, num_classes=num_classes) for _ in range(SHOT_SUBSETS)]
            for size in SHOT_SIZES if size <= smallest}


def _positions_in_probe(probe_indices: np.ndarray, shot_indices: np.ndarray, shot_file: Path,
                        probe_file: Path) -> np.ndarray:
    order = np.argsort(probe_indices)
    positions = order[np.searchsorted(probe_indices, shot_indices, sorter=order).clip(max=len(order) - 1)]
    outside = probe_indices[positions] != shot_indices
    if outside.any():
        raise UserError(f"few-shot file {shot_file} holds index {shot_indices[outside][0]}, which is not in the "
                        f"probe pool {probe_file}; use the few-shot files made from that pool")
    return np.sort(positions)


def save_index_file(path: str | os.PathLike, indices: np.ndarray) -> None:
    """Write `indices` as an int64 .npy index file, atomically, never over an existing file."""
    path = Path(path)
    if path.exists():
        raise UserError(f"{path} already exists; choose another --out name (index files are never overwritten)")
    if not path.parent.is_dir():
        raise UserError(f"folder {path.parent} does not exist; create it or choose another --out path")
    with atomic_path(path) as temp:
        np.save(temp, np.asarray(indices, np.int64))
