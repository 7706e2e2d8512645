"""bcl-dali: Boosted Contrastive Learning (ICML 2022) with its augmentation in an NVIDIA DALI pipeline.

The library's face. In a loop of your own, `BoostedAugmentation` gives each epoch's boosted views
and takes each step's per-sample losses; the pieces it is made of, the per-sample NT-Xent and the
evaluation of any backbone are here too. Names are imported when first used, so `import bcl_dali`
costs nothing until then (DALI alone takes seconds).
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("bcl-dali")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "BoostedAugmentation": "bcl_dali.augmentation",
    "image_source": "bcl_dali.data.adapt",
    "ArrayImages": "bcl_dali.data",
    "ImageFiles": "bcl_dali.data",
    "ImageSource": "bcl_dali.data",
    "LongTailedData": "bcl_dali.data",
    "load_data": "bcl_dali.data",
    "MomentumLoss": "bcl_dali.train.momentum",
    "EpochPlanner": "bcl_dali.train.planner",
    "BoostPolicy": "bcl_dali.policy",
    "nt_xent_per_sample": "bcl_dali.methods.ntxent",
    "evaluate_backbone": "bcl_dali.eval.protocol",
    "extract_features": "bcl_dali.eval.features",
    "linear_probe": "bcl_dali.eval.probe",
    "knn_predict": "bcl_dali.eval.knn",
    "Evaluation": "bcl_dali.eval.result",
    "TrainConfig": "bcl_dali.config",
    "UserError": "bcl_dali.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bcl_dali' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
