"""Files that do not decode: named with their list line and the way on, under --on-bad-image stop; left out, recorded and trained around under skip; found before any work by --verify-images."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bcl_dali.data import load_data
from bcl_dali.data.files import ImageFiles
from bcl_dali.data.folder import FolderLists
from tests.cli_support import assert_error_after_progress, assert_one_line_error, run
from tests.folders import copy_of, truncate_jpeg


def _list_flags(root: Path) -> tuple:
    return ("--dataset", "folder", "--data-dir", root, "--train-list", root / "train.txt", "--test-list",
            root / "test.txt", "--arch", "resnet18", "--width", "16", "--image-size", "16", "--batch-size", "32",
            "--device", "cpu", "--snapshot-every", "0")


def _line_of(root: Path, list_name: str, relative: str) -> int:
    lines = (root / list_name).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(relative + " "))


@pytest.fixture()
def truncated_train(tree, tmp_path) -> tuple[Path, str]:
    root = copy_of(tree, tmp_path)
    relative = "train/class02/00007.jpg"
    truncate_jpeg(root / relative)
    return root, relative


def test_a_truncated_training_jpeg_stops_the_run_in_one_line_with_its_checkpoint(tree, tmp_path, monkeypatch):
    """Its header passes the quick check; DALI's decoder fails (before: exit 1, a 60-line traceback
    naming 'sample #8'). Here the file breaks after epoch 1, as a disk might: one line naming the file
    and its list line, exit 2, last.pt holding epoch 1 (finished, not yet written: saved before
    stopping), and the way on. Mutations caught: the executor's DALI failure not explained (a
    traceback, exit 1); the last finished epoch not saved before stopping."""
    root = copy_of(tree, tmp_path)
    relative = "train/class02/00007.jpg"
    reads = []
    original = ImageFiles.read

    def breaking(files, index):
        data = original(files, index)
        if str(files.paths[index]) == relative:
            reads.append(index)
            if len(reads) > 1:
                scan = data.tobytes().index(b"\xff\xda")
                return data[: scan + (len(data) - scan) // 2]
        return data

    monkeypatch.setattr(ImageFiles, "read", breaking)
    out = tmp_path / "run"
    result = run("train", *_list_flags(root), "--epochs", "3", "--out", out)
    line = _line_of(root, "train.txt", relative)
    assert_error_after_progress(result, f"{root / relative} ({root / 'train.txt'} line {line}) cannot be decoded "
                                        "(image file is truncated")
    assert f"cli.py train --resume {out} --on-bad-image skip" in result.stderr
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1


def test_skip_leaves_the_file_out_records_it_and_trains_on(truncated_train, tmp_path):
    """--on-bad-image skip: the epoch starts again from the last checkpoint without the file, which is
    recorded in the run (left_out.json, metrics.jsonl) and never planned again; resumes keep it out.
    Mutations caught: the left-out sample still planned (the same failure again, forever); the record
    not written."""
    root, relative = truncated_train
    out = tmp_path / "run"
    result = run("train", *_list_flags(root), "--epochs", "2", "--on-bad-image", "skip", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"left out {relative}" in result.output
    (entry,) = json.loads((out / "left_out.json").read_text())
    assert entry["path"] == relative and "truncated" in entry["why"] and entry["found_in_epoch"] == 1
    assert entry["named_in"] == f"{root / 'train.txt'} line {_line_of(root, 'train.txt', relative)}"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"epoch": 0, "left_out": [relative]} in records
    assert [r["epoch"] for r in records if "loss" in r] == [1, 2]
    state = torch.load(out / "last.pt", weights_only=True)
    files = load_data("folder", data_dir=root, lists=FolderLists(str(root / "train.txt"), str(root / "test.txt")))
    assert [str(files.train.images.paths[i]) for i in state["left_out"]] == [relative]


def test_verify_images_finds_it_before_anything_is_written(truncated_train, tmp_path):
    """--verify-images decodes every file at the start: under stop, one line and nothing written; under
    skip, the file is left out from the first epoch. Mutation caught: the full decode dropped from the
    check."""
    root, relative = truncated_train
    refused = run("train", *_list_flags(root), "--verify-images", "--epochs", "1", "--out", tmp_path / "never")
    assert_one_line_error(refused, f"{root / relative} ({root / 'train.txt'} line "
                                   f"{_line_of(root, 'train.txt', relative)}) cannot be decoded")
    assert not (tmp_path / "never").exists()
    out = tmp_path / "run"
    result = run("train", *_list_flags(root), "--verify-images", "--on-bad-image", "skip", "--epochs", "1", "--out", out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "left_out.json").read_text())[0]["found_in_epoch"] == 1
    assert "starts again" not in result.output


def test_a_truncated_test_image_is_named_at_evaluation_and_by_verify(tree, tmp_path):
    """A bad file in the test list is found only when the run evaluates: the evaluation names it in one
    line (the run's checkpoint kept), and --verify-images refuses it before training. Mutation caught:
    the DataLoader worker's exception left to the user."""
    root = copy_of(tree, tmp_path)
    relative = "test/class01/00001.jpg"
    truncate_jpeg(root / relative)
    out = tmp_path / "run"
    result = run("train", *_list_flags(root), "--epochs", "1", "--out", out)
    assert_error_after_progress(result, f"{root / relative} ({root / 'test.txt'} line {_line_of(root, 'test.txt', relative)})"
                                  " (an evaluation image) cannot be decoded")
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    assert_error_after_progress(run("eval", out, "--shots", "full"), "an evaluation image) cannot be decoded",
                                progress=("evaluating ",))
    assert_one_line_error(run("train", *_list_flags(root), "--verify-images", "--out", tmp_path / "never"),
                          "1 evaluation image(s) cannot be decoded")
