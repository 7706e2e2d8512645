"""Encoded images that do not decode in full: how to tell, and how an executor reports them.

A JPEG's header can be intact and the rest cut off: its size reads, the file opens, and only the
decoder fails, in the middle of an epoch. PIL's full decode is the reference's (torchvision's
ImageFolder loads with it), so it is the judge of which files are bad.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


class UndecodableFiles(Exception):
    """Files of the executor's image set that do not decode: their indices into it, and PIL's reasons."""

    def __init__(self, indices: np.ndarray, reasons: list[str]) -> None:
        super().__init__(f"{len(indices)} file(s) do not decode, the first (index {indices[0]}): {reasons[0]}")
        self.indices = indices
        self.reasons = reasons


def decode_problem(data: bytes) -> str | None:
    """Why an encoded image does not decode in full (PIL's words), or None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as error:
        return str(error) or type(error).__name__
    return None
