"""What a run knows of its files: a resume after the data was touched, copied or moved goes on, reading only what changed; a file whose bytes changed is named."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bcl_dali.data import load_data
from bcl_dali.data.generated_jpegs import write_jpeg_folder
from tests.cli_support import assert_one_line_error, run
from tests.folders import SIZE, copy_of, list_flags, lists

SMALL = ("--arch", "resnet18", "--width", "16", "--image-size", str(SIZE), "--batch-size", "64", "--workers", "2")


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path]:
    """A folder run stopped after 1 of 2 epochs, and its data (list files)."""
    root = tmp_path_factory.mktemp("resume")
    data = write_jpeg_folder(root / "data", [30, 20, 10], 2, sides=(16, 24))
    out = root / "run"
    result = run("train", *_folder_flags(data), "--epochs", "2", "--stop-after", "1", "--out", out)
    assert result.exit_code == 0, result.output
    return data, out


def _folder_flags(data: Path) -> tuple:
    return ("--dataset", "folder", "--data-dir", data, "--train-list", data / "train.txt", "--test-list",
            data / "test.txt", "--arch", "resnet18", "--width", "16", "--image-size", "16", "--batch-size", "20",
            "--device", "cpu")


def _copy_run(folder_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    import shutil
    data, out = folder_run
    return Path(shutil.copytree(data, tmp_path / "data", copy_function=shutil.copy)), Path(
        shutil.copytree(out, tmp_path / "run"))


def test_a_resume_after_touching_or_copying_the_data_goes_on(folder_run, tmp_path):
    """Times changed (`touch`, a `cp -r` without -p, here the data copied elsewhere with its lists):
    the resume re-reads only those files, finds the same bytes, and goes on. Mutation caught: the time
    part of the identity (data compared by paths, sizes and times)."""
    data, out = _copy_run(folder_run, tmp_path)
    for image in data.rglob("*.jpg"):
        os.utime(image, None)
    for name in ("train.txt", "test.txt"):
        (data / name).write_text((folder_run[0] / name).read_text())
    result = run("train", "--resume", out, "--data-dir", data, "--train-list", data / "train.txt",
                 "--test-list", data / "test.txt")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)] == [1, 2]


def test_a_resume_names_the_file_whose_bytes_changed(folder_run, tmp_path):
    """A file with the same size and other bytes: the resume names it and says how it changed.
    Mutation caught: content hashes left out of the comparison."""
    data, out = _copy_run(folder_run, tmp_path)
    victim = data / "train" / "class01" / "00003.jpg"
    payload = bytearray(victim.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    victim.write_bytes(bytes(payload))
    result = run("train", "--resume", out, "--data-dir", data, "--train-list", data / "train.txt",
                 "--test-list", data / "test.txt")
    assert_one_line_error(result, "train/class01/00003.jpg changed since the run started (same size, other bytes")


def test_a_resume_of_untouched_data_reads_no_file(folder_run, tmp_path, monkeypatch):
    """Sizes and times as recorded: the recorded hashes stand, nothing is read. Mutation caught: every
    file re-hashed on resume."""
    data, out = _copy_run(folder_run, tmp_path)
    import bcl_dali.data.files as files

    def refuse(path):
        raise AssertionError(f"{path} was read")

    result = run("train", "--resume", out, "--data-dir", folder_run[0], "--stop-after", "1")
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(files, "_content_hash", refuse)
    result = run("train", "--resume", out, "--data-dir", folder_run[0])
    assert result.exit_code == 0, result.output


def test_the_fingerprint_reads_no_pixels(folder, monkeypatch):
    """Resume identifies a folder by its files' paths, sizes and times: nothing is opened or read."""
    data = load_data("folder", data_dir=folder, lists=lists(folder))
    files = data.train.images

    def refuse(*_):
        raise AssertionError("the fingerprint read a file")

    monkeypatch.setattr(type(files), "open", refuse)
    monkeypatch.setattr(type(files), "read", refuse)
    before = files.identity()
    changed = type(files)(files.root, files.paths, files.heights, files.widths, files.bytes,
                          files.mtimes + np.eye(1, len(files), 7, dtype=np.int64)[0])
    assert changed.identity() != before


@pytest.mark.slow
def test_resume_refuses_changed_files(folder, tmp_path):
    root = copy_of(folder, tmp_path)
    out = tmp_path / "run"
    assert run("train", *list_flags(root), *SMALL, "--epochs", "2", "--stop-after", "1", "--out", out).exit_code == 0
    image = root / "train/class01/00002.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    assert_one_line_error(run("train", "--resume", out), "train/class01/00002.jpg changed since the run started (")
