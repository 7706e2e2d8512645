"""Writing results for people and programs."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from bcl_dali.atomic import write_text_atomic
from bcl_dali.errors import UserError


def check_output_path(path: Path | None, flag: str = "--json") -> None:
    """Refuse, before any work is done, an output path that could not be written."""
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise UserError(f"{flag} {path}: folder {path.parent} does not exist; create it or pick another path")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: folder {path.parent} is not writable; pick another path")


def make_folder(out: Path, what: str = "the folder") -> None:
    """An output folder (parents too), or a one-line error saying why not."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot make {what} {out}: {error.strerror}; choose another --out") from None


def write_json(result: dict, path: Path | None) -> None:
    """Write `result` atomically as strict JSON (a NaN is null); nothing when `path` is None."""
    if path is None:
        return
    check_output_path(path)
    write_text_atomic(path, json.dumps(without_nan(result), indent=2, sort_keys=True, allow_nan=False) + "\n")


def without_nan(value: Any) -> Any:
    """`value` with every float NaN replaced by None: JSON has no NaN, and strict parsers refuse it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(item) for item in value]
    return value
