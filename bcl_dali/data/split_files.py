"""`splits make` and `splits show`: index files of a source's training pool, written and described."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bcl_dali.data.load import DEFAULT_IMBALANCE, load_pool, save_index_file
from bcl_dali.data.synthetic import DEFAULT_CLASSES
from bcl_dali.errors import UserError
from bcl_dali.split import describe_split, few_shot_subset, load_index_file, long_tailed_subset


def make_split(dataset: str, out: Path, *, data_dir: str | os.PathLike | None = None, download: bool = False,
               imbalance: float | None = None, max_per_class: int | None = None, shots: int | None = None,
               num_classes: int | None = None, seed: int = 0) -> str:
    """Write a long-tailed split (class 0 the head) or, with `shots`, a few-shot subset of the probe
    pool, as int64 indices into the training pool; returns what was written, in one line."""
    if shots is not None and (imbalance is not None or max_per_class is not None):
        raise UserError("--shots draws a balanced few-shot subset; --imbalance and --max-per-class "
                        "apply only to long-tailed splits, drop them")
    pool = load_pool(dataset, data_dir=data_dir, download=download, num_classes=_classes(dataset, num_classes))
    if shots is None:
        indices = long_tailed_subset(pool.labels, DEFAULT_IMBALANCE if imbalance is None else imbalance, seed,
                                     max_per_class=max_per_class, num_classes=pool.num_classes)
    else:
        probe_labels = pool.labels[pool.probe_indices]
        indices = pool.probe_indices[few_shot_subset(probe_labels, shots, seed, num_classes=pool.num_classes)]
    save_index_file(out, indices)
    counts = np.bincount(pool.labels[indices], minlength=pool.num_classes)
    return (f"wrote {len(indices)} indices into the {dataset} training pool ({counts.max()}..{counts.min()} "
            f"per class) to {out}")


def show_split(file: Path, dataset: str, *, data_dir: str | os.PathLike | None = None, download: bool = False,
               num_classes: int | None = None) -> str:
    """A split's class histogram, total, imbalance ratio and Many / Medium / Few groups."""
    pool = load_pool(dataset, data_dir=data_dir, download=download, num_classes=_classes(dataset, num_classes))
    indices = load_index_file(file, len(pool.labels))
    return describe_split(np.bincount(pool.labels[indices], minlength=pool.num_classes))


def _classes(dataset: str, num_classes: int | None) -> int:
    """synthetic-lt's class count; the other sources have theirs in their files."""
    if num_classes is not None and dataset != "synthetic-lt":
        raise UserError(f"--num-classes shapes synthetic-lt only; {dataset} has the classes its files hold, drop it")
    return DEFAULT_CLASSES if num_classes is None else num_classes
