"""Writing files so that a crash never leaves a half-written one where a good one was."""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bcl_dali.errors import UserError

TEMP_PREFIX = ".tmp-"
"""Temporary files are hidden: `.tmp-NAME.XXXX.SUFFIX` beside the file they will replace."""
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
"""No space left, or the user's quota spent: either way the file was not written."""


def _read_umask() -> int:
    """Read once, at import: setting the umask briefly to read it races with other threads."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` to write; flushed to disk and renamed onto `path` when the
    block succeeds, removed when it fails. The suffix is kept, so writers that infer the format
    from it (PIL, numpy) work unchanged; the file gets the mode the umask gives new files. A full
    disk or a folder that refuses writing is a one-line error, and `path` keeps what it held."""
    try:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.",
                                        suffix=path.suffix or ".tmp")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}; choose a writable place") from None
    os.close(handle)
    try:
        os.chmod(temp, 0o666 & ~UMASK)
        yield Path(temp)
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        if error.errno in FULL_DISK:
            raise UserError(f"the disk is full: {path} was not written and keeps what it held; free space and "
                            "run again (a training run continues with --resume)") from None
        raise
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as temp:
        temp.write_text(text)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed writer left in `folder`."""
    for stale in folder.glob(f"{TEMP_PREFIX}*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)

