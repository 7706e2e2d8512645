"""Index files: int64 .npy arrays of indices into a dataset's training pool (the reference's format).

A wrong split file silently trains on the wrong data, so every way a file can be wrong is refused
with its own message that names the file, the problem and the fix.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bcl_dali.split.errors import SplitError


def load_index_file(path: str | os.PathLike, pool_size: int) -> np.ndarray:
    """The file's indices as int64, after checking they can index a pool of `pool_size` items."""
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"index file {path} does not exist; check the path (an index file is an int64 .npy array)")
    try:
        with open(path, "rb") as file:
            indices = np.lib.format.read_array(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SplitError(f"index file {path} is not a readable .npy array ({error}); "
                        "write it with numpy.save or `cli.py splits make`") from None
    if indices.ndim != 1:
        raise SplitError(f"index file {path} holds an array of shape {indices.shape}, expected a 1-D array of indices; "
                        "flatten it (e.g. numpy.save(path, a.ravel()))")
    if not np.issubdtype(indices.dtype, np.integer):
        raise SplitError(f"index file {path} holds {indices.dtype} values, expected integers; "
                        "save the indices with an integer dtype (int64)")
    if indices.size == 0:
        raise SplitError(f"index file {path} is empty; it must list at least one index")
    bad = (indices < 0) | (indices >= pool_size)
    if bad.any():
        raise SplitError(f"index file {path} holds index {indices[bad][0]}, outside the valid range "
                        f"[0, {pool_size}) of this dataset's training pool; use a split made for this dataset")
    unique, counts = np.unique(indices, return_counts=True)
    if len(unique) < len(indices):
        repeated = unique[counts > 1]
        raise SplitError(f"index file {path} repeats {len(indices) - len(unique)} indices (e.g. {repeated[0]}, "
                        f"{counts[counts > 1][0]} times); an index may appear once, remove the repeats")
    return indices.astype(np.int64)

