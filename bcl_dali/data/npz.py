"""`npz`: any labelled image dataset saved as one .npz (x_train, y_train, x_test, y_test).

The whole of x_train is the pool and the probe pool; labels must be 0..C-1 with every class present.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bcl_dali.data.arrays import ArrayImages
from bcl_dali.data.sets import ImageSet, TrainPool, count_classes
from bcl_dali.errors import UserError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def npz_pool(data_dir: str | os.PathLike | None) -> TrainPool:
    if data_dir is None:
        raise UserError(f"the npz dataset needs --data-dir FILE.npz holding {', '.join(KEYS)}")
    arrays = _read(Path(data_dir))
    x_train, y_train, x_test, y_test = (arrays[key] for key in KEYS)
    num_classes = count_classes(y_train, str(data_dir), " in y_train")
    if y_test.max() >= num_classes:
        raise UserError(f"{data_dir}: y_test holds label {y_test.max()}, but y_train has only classes "
                        f"0..{num_classes - 1}; relabel so both use the same classes")
    return TrainPool(name="npz", num_classes=num_classes, labels=y_train,
                     probe_indices=np.arange(len(y_train), dtype=np.int64),
                     images=lambda indices: ArrayImages(x_train[indices]), test=lambda: ImageSet(ArrayImages(x_test), y_test))


def _read(path: Path) -> dict[str, np.ndarray]:
    """The four arrays, checked: (N, H, W, 3) uint8 images and (N,) non-negative integer labels."""
    if path.is_dir():
        raise UserError(f"--data-dir {path} is a directory; the npz dataset needs --data-dir FILE.npz")
    if not path.is_file():
        raise UserError(f"npz dataset {path} does not exist; pass --data-dir FILE.npz")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is not a readable .npz archive ({error}); write it with numpy.savez") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{path} holds a single array, not an .npz archive with {', '.join(KEYS)}; "
                        "write it with numpy.savez")
    with archive:
        missing = [key for key in KEYS if key not in archive.files]
        if missing:
            raise UserError(f"{path} lacks {', '.join(missing)}; it must hold {', '.join(KEYS)}")
        try:
            arrays = {key: archive[key] for key in KEYS}
        except ValueError as error:
            raise UserError(f"{path}: cannot read its arrays ({error}); save plain numeric arrays") from None

    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
            raise UserError(f"{path}: x_{part} is {images.dtype} with shape {images.shape}; "
                            "expected (N, H, W, 3) uint8 images with N > 0")
        if not np.issubdtype(labels.dtype, np.integer) or labels.shape != images.shape[:1]:
            raise UserError(f"{path}: y_{part} is {labels.dtype} with shape {labels.shape}; "
                            f"expected ({len(images)},) integer labels, one per image of x_{part}")
        if labels.min() < 0:
            raise UserError(f"{path}: y_{part} holds label {labels.min()}; labels must be 0..C-1")
        arrays[f"x_{part}"] = np.ascontiguousarray(images)
        arrays[f"y_{part}"] = labels.astype(np.int64)
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise UserError(f"{path}: x_train images are {arrays['x_train'].shape[1:3]} but x_test images are "
                        f"{arrays['x_test'].shape[1:3]}; both need the same size")
    return arrays
