"""bcl-dali: Boosted Contrastive Learning (ICML 2022) with its augmentation in an NVIDIA DALI pipeline.

The library's face. In a loop of your own, `BoostedAugmentation` gives each epoch's boosted views
and takes each step's per-sample losses; the pieces it is made of, the per-sample NT-Xent and the
evaluation of any backbone are here too. Names are imported when first used, so `import bcl_dali`
costs nothing until then (DALI alone takes seconds).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bcl_dali.version import __version__

_CHECKOUT = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "pipelines").is_dir() and (_CHECKOUT / "pipelines").is_dir():
    # A checkout keeps pipelines/, models/, split/ and benchmarks/ beside bcl_dali/; an install puts
    # them inside it (pyproject.toml's package-dir), so that bcl_dali is its only import root.
    __path__.append(str(_CHECKOUT))


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
