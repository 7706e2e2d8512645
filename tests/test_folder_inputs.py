"""Image folders as users have them (issue L): trees that are already long-tailed, hidden entries,
lists with a byte-order mark, 16-bit images, test trees missing a class, and flags the data would
ignore. Each test names the defect it catches."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.folder_memory import compare
from bcl_dali.data import load_data
from bcl_dali.data.files import ImageFiles
from bcl_dali.data.folder import FolderLists
from bcl_dali.data.generated_jpegs import write_jpeg_folder
from tests.cli_support import assert_error_after_progress, assert_one_line_error, run

LONG_TAILED_TREE = [120, 60, 30, 15, 8, 4]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A class-subfolder tree that is already long-tailed: 120 down to 4 images per class."""
    return write_jpeg_folder(tmp_path_factory.mktemp("tree"), LONG_TAILED_TREE, 2, sides=(16, 24))


def copy_of(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "copy"))


def test_a_long_tailed_tree_trains_on_all_its_images(tree, tmp_path):
    """Without --imbalance a tree is used as it is: 120 down to 4 per class, 237 images (before, the
    head was cut to 90% of the smallest class and this tree was refused). Mutation caught: the tree
    subsampled at an imbalance of 100 when none is given."""
    data = load_data("folder", data_dir=tree)
    np.testing.assert_array_equal(data.train_class_counts, LONG_TAILED_TREE)
    out = tmp_path / "run"
    result = run("train", "--dataset", "folder", "--data-dir", tree, "--arch", "resnet18", "--width", "16",
                 "--image-size", "16", "--batch-size", "32", "--epochs", "1", "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "classes.json").read_text())["train_class_counts"] == LONG_TAILED_TREE
    assert json.loads((out / "config.json").read_text())["imbalance"] is None
    assert f"{sum(LONG_TAILED_TREE)} images" in result.output


def test_imbalance_on_a_tree_too_small_for_it_says_what_to_do(tree):
    """--imbalance on an imbalanced tree asks for more than the tail has: the message names train's own
    flags (there is no --max-per-class in `train`)."""
    with pytest.raises(Exception, match="lower --imbalance, or drop it to train on the tree as it is"):
        load_data("folder", data_dir=tree, imbalance=100.0)


def test_hidden_entries_are_neither_classes_nor_images(tree, tmp_path):
    """Jupyter's .ipynb_checkpoints/ and macOS's ._x.jpg resource forks and .DS_Store. Mutation caught:
    every directory entry taken (a 7th class, and ._x.jpg 'unreadable')."""
    root = copy_of(tree, tmp_path)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "class00" / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (root / "test" / "class01" / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (root / "train" / ".DS_Store").write_bytes(b"\x00")
    data = load_data("folder", data_dir=root)
    assert data.num_classes == len(LONG_TAILED_TREE)
    np.testing.assert_array_equal(data.train_class_counts, LONG_TAILED_TREE)


def test_a_bad_file_in_a_tree_is_named_by_its_real_path(tree, tmp_path):
    """Mutation caught: the path built as ROOT/train/train/class02/... (a path that does not exist)."""
    root = copy_of(tree, tmp_path)
    (root / "train" / "class02" / "00004.jpg").write_bytes(b"not a jpeg at all")
    result = run("train", "--dataset", "folder", "--data-dir", root, "--out", tmp_path / "never")
    assert_one_line_error(result, "1 of 249 images are unreadable")
    named = [Path(word.strip("();,")) for word in result.stderr.split() if word.strip("();,").startswith("/")]
    assert named and all(path.exists() for path in named), result.stderr
    assert str(named[0]).endswith("train/class02/00004.jpg")
    assert not (tmp_path / "never").exists()


def test_a_test_tree_missing_a_class_is_refused(tree, tmp_path):
    """A class with training images but no test images would drop out of every accuracy silently.
    Mutation caught: the check limited to the train tree."""
    root = copy_of(tree, tmp_path)
    shutil.rmtree(root / "test" / "class03")
    (root / "test" / "class03").mkdir()
    assert_one_line_error(run("train", "--dataset", "folder", "--data-dir", root, "--out", tmp_path / "never"),
                          "test/class03 holds no images")


def test_a_list_with_a_byte_order_mark_reads_as_without(tree, tmp_path):
    """Editors on Windows save UTF-8 lists with a BOM. Mutation caught: the list read as plain UTF-8
    (its first path starts with U+FEFF and is 'missing')."""
    root = copy_of(tree, tmp_path)
    for name in ("train.txt", "test.txt"):
        (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    data = load_data("folder", data_dir=root, lists=FolderLists(str(root / "train.txt"), str(root / "test.txt")))
    assert str(data.train.images.paths[0]) == "train/class00/00000.jpg"


def test_a_16_bit_image_is_refused_before_training(tree, tmp_path):
    """DALI scales 16-bit PNGs to 8 bits, PIL clips them: the two executors would see other pixels.
    Mutation caught: the bit-depth check dropped."""
    root = copy_of(tree, tmp_path)
    deep = np.random.default_rng(0).integers(0, 65535, (20, 20), dtype=np.uint16)
    Image.fromarray(deep).save(root / "train" / "class01" / "deep.png")
    result = run("train", "--dataset", "folder", "--data-dir", root, "--out", tmp_path / "never")
    assert_one_line_error(result, "1 of 250 images are 16-bit")
    assert "save it with 8 bits per channel" in result.stderr


@pytest.mark.parametrize("flags, fragment", [
    (("--probe-list", "test.txt"), "--probe-list does not apply here (a class-folder tree is its own probe pool)"),
    (("--val-list", "missing.txt"), "--val-list does not apply here"),
    (("--split-seed", "3"), "--split-seed does not apply here"),
    (("--num-classes", "5"), "--num-classes does not apply here"),
])
def test_flags_a_tree_would_ignore_are_refused(tree, tmp_path, flags, fragment):
    """Before, they were accepted and recorded in config.json as if they had acted. Mutation caught:
    TrainConfig._check_data_flags skipped."""
    flags = tuple(tree / flag if flag.endswith(".txt") else flag for flag in flags)
    result = run("train", "--dataset", "folder", "--data-dir", tree, *flags, "--out", tmp_path / "never")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("flags, fragment", [
    (("--imbalance", "10"), "--imbalance does not apply here (--train-list is the training set as it is)"),
    (("--split-seed", "1"), "--split-seed does not apply here"),
])
def test_flags_a_list_would_ignore_are_refused(tree, tmp_path, flags, fragment):
    result = run("train", "--dataset", "folder", "--data-dir", tree, "--train-list", tree / "train.txt",
                 "--test-list", tree / "test.txt", *flags, "--out", tmp_path / "never")
    assert_one_line_error(result, fragment)


def test_a_split_file_with_imbalance_is_refused(tmp_path):
    split = tmp_path / "split.npy"
    np.save(split, np.arange(300, dtype=np.int64))
    assert_one_line_error(run("train", "--split", split, "--imbalance", "10", "--out", tmp_path / "never"),
                          "--imbalance does not apply here (the --split file fixes the training set)")


def test_a_list_runs_config_records_no_imbalance(tree, tmp_path):
    """`report` showed 'imbalance 100.0' for a list run: the value was recorded although it never acted."""
    out = tmp_path / "run"
    result = run("train", "--dataset", "folder", "--data-dir", tree, "--train-list", tree / "train.txt",
                 "--test-list", tree / "test.txt", "--arch", "resnet18", "--width", "16", "--image-size", "16",
                 "--batch-size", "32", "--epochs", "0", "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["imbalance"], config["split_seed"], config["num_classes"]) == (None, None, None)


def test_an_old_list_runs_config_resumes(tree, tmp_path):
    """A run recorded before the flags were checked (imbalance 100, split seed 0, 100 classes for a list
    run) still resumes: what never acted is dropped when the config is read."""
    out = tmp_path / "run"
    args = ("--dataset", "folder", "--data-dir", tree, "--train-list", tree / "train.txt", "--test-list",
            tree / "test.txt", "--arch", "resnet18", "--width", "16", "--image-size", "16", "--batch-size", "32",
            "--device", "cpu")
    assert run("train", *args, "--epochs", "1", "--stop-after", "1", "--out", out).exit_code == 0
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(config | {"imbalance": 100.0, "split_seed": 0, "num_classes": 100}))
    result = run("train", "--resume", out, "--epochs", "1")
    assert result.exit_code == 0, result.output


def _truncate(path: Path) -> None:
    """Cut a JPEG half-way through its compressed data: its header reads, its decode fails."""
    data = path.read_bytes()
    scan = data.index(b"\xff\xda")
    path.write_bytes(data[: scan + (len(data) - scan) // 2])


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
    _truncate(root / relative)
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
    """In the test list it used to let the whole run train, then crash at the final kNN (and `eval` too).
    Now the evaluation names the file in one line (the run's checkpoint kept), and --verify-images
    refuses it before training. Mutation caught: the DataLoader worker's exception left to the user."""
    root = copy_of(tree, tmp_path)
    relative = "test/class01/00001.jpg"
    _truncate(root / relative)
    out = tmp_path / "run"
    result = run("train", *_list_flags(root), "--epochs", "1", "--out", out)
    assert_error_after_progress(result, f"{root / relative} ({root / 'test.txt'} line {_line_of(root, 'test.txt', relative)})"
                                  " (an evaluation image) cannot be decoded")
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    assert_error_after_progress(run("eval", out, "--shots", "full"), "an evaluation image) cannot be decoded",
                                progress=("evaluating ",))
    assert_one_line_error(run("train", *_list_flags(root), "--verify-images", "--out", tmp_path / "never"),
                          "1 evaluation image(s) cannot be decoded")


@pytest.mark.slow
def test_one_huge_image_costs_its_own_pixels_not_every_crops(tmp_path):
    """One 6000 x 6000 JPEG among 16 of 256 to 500 pixels, one DALI iteration to 224-pixel views on the
    CPU: the process's peak memory within 1.5x of the same iteration without it (before: crops padded to
    the largest, 6x here and 13 GB instead of 1 with 343 files). Mutation caught: one chunk for the
    whole iteration (the CPU's budget made unbounded)."""
    result = compare(tmp_path, 224, torch.device("cpu"))
    assert result["ratio"] <= 1.5, result
