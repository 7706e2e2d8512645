"""Files written whole or not at all, with the permissions the umask gives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bcl_dali import atomic


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int) -> None:
    """Shared runs must be readable by others when the umask says so (they were always 0600)."""
    monkeypatch.setattr(atomic, "UMASK", umask)
    atomic.write_text_atomic(tmp_path / "f.json", "{}")
    assert os.stat(tmp_path / "f.json").st_mode & 0o777 == 0o666 & ~umask
