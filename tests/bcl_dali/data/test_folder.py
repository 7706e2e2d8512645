"""Image folders: the data source and its checks, the decode-and-resize executor against the
PIL reference, the ImageNet stem and recipes, training, evaluation and resume on a generated JPEG folder."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bcl_dali.data import load_data
from bcl_dali.data.folder import FolderLists
from bcl_dali.data.generated_jpegs import write_jpeg_folder
from bcl_dali.training import probe_shot
from bcl_dali.split import class_groups
from tests.cli_support import assert_one_line_error, run
from tests.folders import LONG_TAILED_TREE, TEST_PER_CLASS, TRAIN_COUNTS, copy_of, list_flags, lists


def test_lists_give_the_train_list_as_the_training_set(folder):
    data = load_data("folder", data_dir=folder, lists=lists(folder))
    np.testing.assert_array_equal(data.train_class_counts, TRAIN_COUNTS)
    assert len(data.test) == TEST_PER_CLASS * len(TRAIN_COUNTS)
    files = data.train.images
    first = Image.open(folder / str(files.paths[0]))
    assert (files.heights[0], files.widths[0]) == (first.height, first.width)
    assert len(np.unique(files.heights)) > 10 and len(np.unique(files.widths)) > 10


def test_groups_follow_the_folder_thresholds(folder):
    groups = load_data("folder", data_dir=folder, lists=lists(folder)).class_groups()
    assert groups.many.tolist() == [0] and sorted(groups.medium.tolist()) == [1, 2]
    assert sorted(groups.few.tolist()) == [3, 4]


def test_group_thresholds_at_their_edges():
    """ImageNet-LT's rule: Many above 100 training images, Medium 20 to 100, Few below 20."""
    groups = class_groups(np.array([101, 100, 20, 19, 500, 1]), "counts")
    assert sorted(groups.many.tolist()) == [0, 4] and sorted(groups.medium.tolist()) == [1, 2]
    assert sorted(groups.few.tolist()) == [3, 5]


def test_a_folder_run_ends_with_the_papers_100_shot_probe_where_the_pool_allows(folder):
    data = load_data("folder", data_dir=folder, lists=lists(folder))
    assert probe_shot(data) == "full"  # its probe pool (the train list) has 6 images of the rarest class
    assert probe_shot(dataclasses.replace(data, shots={100: [np.arange(500)] * 5})) == "100"
    assert probe_shot(dataclasses.replace(data, name="cifar100-lt", shots={100: []})) == "full"


def test_the_probe_list_is_the_probe_pool(folder):
    data = load_data("folder", data_dir=folder, lists=lists(folder, probe=str(folder / "test.txt")))
    assert len(data.probe) == len(data.test)
    np.testing.assert_array_equal(data.probe.labels, data.test.labels)
    assert len(data.train) == sum(TRAIN_COUNTS)


def test_a_tree_keeps_each_class_first_files_by_name(tmp_path):
    """--imbalance on a balanced class-subfolder tree: class c keeps its first n_c files in sorted order,
    n_c from CIFAR-LT's profile with 90% of the smallest class at the head."""
    tree = write_jpeg_folder(tmp_path, [40] * 4, 2, sides=(16, 24))
    data = load_data("folder", data_dir=tree, imbalance=10.0)
    counts = data.train_class_counts
    np.testing.assert_array_equal(counts, [36, 16, 7, 3])
    assert len(data.probe) == 160 and len(data.test) == 8
    paths = data.train.images.paths
    for c, count in enumerate(counts):
        names = sorted(p.name for p in (tree / "train" / f"class{c:02d}").iterdir())
        assert [Path(p).name for p, label in zip(paths, data.train.labels) if label == c] == names[:count]


@pytest.mark.parametrize("damage, fragment", [
    ("missing", "2 of 273 images are missing; the first is"),
    ("unreadable", "1 of 273 images are unreadable"),
    ("out of range", "has label 5, out of range"),
    ("empty", "is empty"),
    ("malformed", "must be \"relative/path.jpg label\""),
])
def test_data_that_is_not_all_there_is_refused_before_training(folder, tmp_path, damage, fragment):
    root = copy_of(folder, tmp_path)
    train, test = root / "train.txt", root / "test.txt"
    if damage == "missing":
        (root / "train/class00/00003.jpg").unlink()
        (root / "test/class04/00001.jpg").unlink()
    elif damage == "unreadable":
        (root / "train/class02/00004.jpg").write_bytes(b"not a jpeg at all")
    elif damage == "out of range":
        test.write_text(test.read_text().replace(" 4\n", " 5\n", 1))
    elif damage == "empty":
        test.write_text("\n")
    else:
        train.write_text("train/class00/00000.jpg\n" + train.read_text())
    out = tmp_path / "never"
    result = run("train", *list_flags(root), "--out", out, "--epochs", "1")
    assert_one_line_error(result, fragment)
    assert not out.exists()
    if damage == "missing":
        assert "train/class00/00003.jpg" in result.stderr


def test_a_long_tailed_tree_trains_on_all_its_images(tree, tmp_path):
    """Without --imbalance a tree is used as it is: 120 down to 4 per class, 237 images, none cut to a
    generated profile. Mutation caught: the tree subsampled at an imbalance of 100 when none is given."""
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
    """Accepted, they would be recorded in config.json as if they had acted. Mutation caught:
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
