"""`cifar100-lt` / `cifar10-lt`: the CIFAR training set as the pool, read by torchvision from `data_dir`."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bcl_dali.data.arrays import ArrayImages
from bcl_dali.data.sets import ImageSet, TrainPool
from bcl_dali.errors import UserError

CIFAR = {"cifar100-lt": "CIFAR100", "cifar10-lt": "CIFAR10"}
"""torchvision's class of each source, imported when one is read (torchvision takes seconds to import)."""


def cifar_pool(dataset: str, data_dir: str | os.PathLike | None, download: bool) -> TrainPool:
    """The whole training set is the pool and, unless a reference layout says otherwise, the probe pool."""
    import torchvision.datasets

    kind = getattr(torchvision.datasets, CIFAR[dataset])
    if data_dir is None:
        raise UserError(f"{dataset} needs --data-dir DIR, the folder that holds {kind.base_folder}/ "
                        "(add --download to fetch it there)")
    train = _open(kind, Path(data_dir), train=True, download=download)
    labels = np.asarray(train.targets, np.int64)

    def test() -> ImageSet:
        data = _open(kind, Path(data_dir), train=False, download=False)
        return ImageSet(ArrayImages(data.data), np.asarray(data.targets, np.int64))

    return TrainPool(name=dataset, num_classes=len(train.classes), labels=labels,
                     probe_indices=np.arange(len(labels), dtype=np.int64),
                     images=lambda indices: ArrayImages(train.data[indices]), test=test)


def _open(kind: type, root: Path, *, train: bool, download: bool):
    try:
        return kind(root, train=train, download=download)
    except RuntimeError:
        files = ", ".join(name for name, _ in kind.train_list + kind.test_list) + ", " + kind.meta["filename"]
        raise UserError(f"no intact {kind.__name__} in {root / kind.base_folder} (looked for {files}, checked by md5); "
                        f"pass --data-dir with the folder that holds {kind.base_folder}/, or add --download") from None
    except OSError as error:
        if download:
            raise UserError(f"could not download {kind.__name__} into {root} ({error}); download it on a machine "
                            "with internet access and pass --data-dir") from None
        raise UserError(f"could not read {kind.__name__} in {root} ({error}); check the folder's permissions") from None
