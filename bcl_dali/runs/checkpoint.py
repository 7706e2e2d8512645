"""Checkpoints: written atomically, read with `weights_only=True`.

A checkpoint is a plain dict of tensors and Python primitives (model, optimiser, momentum state,
RNG states, config), so loading it never executes pickled code, and a crash while writing never
damages the last good one (temp file in the same directory, then an atomic rename).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bcl_dali.atomic import atomic_path
from bcl_dali.errors import UserError


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Serialised in memory first, then written with Python's file API, so that a full disk is an
    OSError the atomic writer reports (torch's own writer reports it as a generic failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as temp:
        temp.write_bytes(buffer.getbuffer())


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; point to a run directory or a .pt file written by `train`")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise UserError(f"cannot read checkpoint {path} ({type(error).__name__}); "
                        "it is damaged or not a bcl-dali checkpoint") from None


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """Every random stream of a run, so a resumed run continues bit for bit."""
    state: dict[str, Any] = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
