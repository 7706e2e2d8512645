"""Throughput measurements (pipeline, step, train), the census of a GPU iteration, and the GPU check."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def child_environment() -> dict[str, str]:
    """The environment of a Python process this package starts (`-m bcl_dali ...`): the folder that
    holds bcl_dali on its path, whether that is a checkout or site-packages, whatever the working folder."""
    holder = str(Path(importlib.util.find_spec("bcl_dali").origin).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [holder, os.environ.get("PYTHONPATH")]))}
