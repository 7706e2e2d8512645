"""Image folders (issue J): the data source and its checks, the decode-and-resize executor against the
PIL reference, the ImageNet stem and recipes, training, evaluation and resume on a generated JPEG folder."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter
from torchvision.transforms import InterpolationMode

from bcl_dali.runs.checkpoint import load_checkpoint
from bcl_dali.config import TrainConfig
from bcl_dali.data import load_data
from bcl_dali.data.folder import FolderLists
from bcl_dali.data.generated_jpegs import write_jpeg_folder
from bcl_dali.policy import BoostPolicy
from bcl_dali.training import probe_shot
from models.resnet import resnet
from pipelines.blur import SIGMA_RANGE, box_weights, gaussian_blur
from pipelines.dali_executor import DaliExecutor
from pipelines.inputs import FileInput
from pipelines.iteration import upload_indices
from pipelines.normalize import MEAN, STD
from pipelines.plan import EpochPlan
from pipelines.reference import ReferenceExecutor
from pipelines.resize import plan_resize, resize_views, vertical_first
from split import class_groups
from tests.cli_support import assert_one_line_error, run

TRAIN_COUNTS = [130, 60, 25, 12, 6]
"""Many (> 100), two Medium (20 to 100) and two Few (< 20) classes."""
TEST_PER_CLASS = 8
SIZE = 32
MEAN_TOLERANCE, FAR_TOLERANCE = 1.0, 0.02
"""F's parity tolerance: mean difference at most 1 level, at most 2% of values more than 8 levels off."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Long-tailed JPEGs of 20 to 72 pixels a side, every aspect ratio in between."""
    return write_jpeg_folder(tmp_path_factory.mktemp("jpegs"), TRAIN_COUNTS, TEST_PER_CLASS, sides=(20, 72))


def lists(root: Path, **extra: str) -> FolderLists:
    return FolderLists(str(root / "train.txt"), str(root / "test.txt"), **extra)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def list_flags(root: Path) -> tuple:
    return ("--dataset", "folder", "--data-dir", root, "--train-list", root / "train.txt", "--test-list",
            root / "test.txt")


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


def test_pil_resize_of_boxes_inside_crops_of_any_size():
    """Two boxes inside each decoded crop, resized as the executor plans it, against PIL's bicubic
    resize of each box (and torchvision's flip): bit for bit for every view whose pass order is PIL's
    first choice, within F's tolerance for those this module starts vertically; the same views whether
    every crop is a chunk of its own or all share one."""
    rng = np.random.default_rng(3)
    n, out = 60, 24
    heights, widths = rng.integers(3, 100, n), rng.integers(3, 100, n)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in zip(heights, widths)]
    tops, lefts = (rng.integers(0, side, (2, n)) for side in (heights, widths))
    boxes = np.stack([tops, lefts, rng.integers(1, heights - tops + 1), rng.integers(1, widths - lefts + 1)], -1)
    boxes = boxes.transpose(1, 0, 2).reshape(2 * n, 4)
    sample_of_view = np.repeat(np.arange(n), 2)
    flips = rng.random(2 * n) < 0.5
    expected = []
    for (top, left, h, w), s, flip in zip(boxes, sample_of_view, flips):
        view = F.resize(Image.fromarray(crops[s][top:top + h, left:left + w]), [out, out], InterpolationMode.BICUBIC,
                        antialias=True)
        expected.append(np.asarray(F.hflip(view) if flip else view))
    expected = np.stack(expected)
    at_origin = np.stack([np.zeros(n), np.zeros(n), heights, widths], 1).astype(np.int64)

    def resized(budget: int) -> tuple[np.ndarray, int]:
        plan = upload_indices(plan_resize(boxes, sample_of_view, at_origin, out, budget), torch.device("cpu"))
        views = resize_views([torch.as_tensor(c) for c in crops], plan, torch.as_tensor(flips), out, 2 * n)
        return views.numpy(), len(plan.chunks)

    (alone, chunks_alone), (together, chunks_together) = resized(1), resized(1 << 40)
    assert (chunks_alone, chunks_together) == (n, 1)
    np.testing.assert_array_equal(alone, together)
    later = vertical_first(boxes[:, 2], boxes[:, 3], out)
    assert 0 < later.sum() < 2 * n
    np.testing.assert_array_equal(alone[~later], expected[~later])
    difference = np.abs(alone[later].astype(int) - expected[later])
    assert difference.mean() <= MEAN_TOLERANCE and (difference > 8).mean() <= FAR_TOLERANCE


def levels(views: torch.Tensor) -> np.ndarray:
    """Normalised float32 views back to 8-bit levels."""
    std, mean = torch.tensor(STD).view(1, 3, 1, 1), torch.tensor(MEAN).view(1, 3, 1, 1)
    return torch.round((views.float() * std + mean) * 255).numpy().astype(int)


def test_gaussian_blur_is_pils():
    """PIL's ImageFilter.GaussianBlur (three box passes each way, 8.24 fixed point), bit for bit,
    over the recipe's sigma range, on views of odd sizes."""
    rng = np.random.default_rng(5)
    n = 150
    images = np.clip(np.cumsum(rng.integers(-40, 41, (n, 19, 26, 3)), axis=2) + 128, 0, 255).astype(np.uint8)
    sigma = rng.uniform(*SIGMA_RANGE, n).astype(np.float32)
    expected = np.stack([np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=float(s))))
                         for image, s in zip(images, sigma)])
    radius, ww, fw = box_weights(sigma)
    assert set(radius.tolist()) == {0, 1}
    got = gaussian_blur(*(torch.as_tensor(a) for a in (images, radius, ww, fw))).numpy()
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got, images)


@pytest.mark.parametrize("k", [0, 2])
def test_dali_decodes_and_augments_as_the_pil_reference(folder, k):
    """The same plan, with the recipe's crop scale and blur, through both executors: the same samples
    in the same order, and views within F's tolerance; with no RandAugment op, views whose resize
    starts horizontally are PIL's exactly."""
    files = load_data("folder", data_dir=folder, lists=lists(folder)).train.images
    rng = np.random.default_rng(k)
    order = rng.permutation(len(files))[:96]
    params = BoostPolicy(k, crop_scale=(0.08, 1.0), blur=True).sample(rng.random(len(order)), rng,
                                                                      (files.heights[order], files.widths[order]))
    assert 0.3 < (params.view1.blur > 0).mean() < 0.7
    plan = EpochPlan(order, 48, params)
    dali = DaliExecutor(FileInput(files), size=SIZE, num_slots=k, batch_size=48, device=torch.device("cpu"), threads=2,
                              dtype=torch.float32, blur=True)
    reference = ReferenceExecutor(files, size=SIZE)
    batches = 0
    for (dali_indices, dali_views), (reference_indices, reference_views) in zip(dali.epoch(plan), reference.epoch(plan)):
        np.testing.assert_array_equal(np.asarray(dali_indices), np.asarray(reference_indices))
        ours, theirs = levels(dali_views), levels(reference_views)
        difference = np.abs(ours - theirs)
        assert difference.mean() <= MEAN_TOLERANCE and (difference > 8).mean() <= FAR_TOLERANCE
        if k == 0:
            rows = np.asarray(dali_indices)
            crops = np.concatenate([params.view1.crop, params.view2.crop])
            position = {sample: r for r, sample in enumerate(order)}
            box = np.stack([crops[position[s] + offset * len(order)] for offset in (0, 1) for s in rows])
            exact = ~vertical_first(box[:, 2], box[:, 3], SIZE)
            assert exact.sum() > len(exact) // 2
            np.testing.assert_array_equal(ours[exact], theirs[exact])
        batches += 1
    assert batches == 2


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


def test_the_recipe_is_the_papers_imagenet_lt_setting():
    config = TrainConfig(dataset="folder", data_dir="/data", recipe="places-lt").resolve()
    assert (config.arch, config.stem, config.image_size, config.crop_scale, config.blur) == (
        "resnet50", "imagenet", 224, 0.08, True)
    assert (config.epochs, config.batch_size, config.lr, config.temperature) == (500, 256, 0.5, 0.2)
    assert TrainConfig(dataset="folder", data_dir="/data").resolve().recipe == "imagenet-lt"
    small = TrainConfig(dataset="folder", data_dir="/data", arch="resnet18", image_size=32).resolve()
    assert (small.arch, small.image_size, small.stem) == ("resnet18", 32, "imagenet")
    cifar = TrainConfig().resolve()
    assert (cifar.stem, cifar.crop_scale, cifar.blur) == ("cifar", 0.1, False)


@pytest.mark.parametrize("flags, fragment", [
    (("--recipe", "imagenet-lt"), "--recipe imagenet-lt is a setting for image folders"),
    (("--image-size", "64"), "--image-size applies to --dataset folder only"),
])
def test_folder_settings_on_other_data_are_refused(tmp_path, flags, fragment):
    assert_one_line_error(run("train", *flags, "--out", tmp_path / "never"), fragment)


def test_the_imagenet_stem_is_torchvisions_resnet50():
    """Independently built: torchvision's ResNet-50 without its classifier has the same parameters."""
    ours = resnet("resnet50", 64, stem="imagenet")
    theirs = torchvision.models.resnet50()
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for name, p in theirs.named_parameters() if not name.startswith("fc."))
    assert ours(torch.zeros(1, 3, 64, 64)).shape == (1, 2048)
    assert ours.stem(torch.zeros(1, 3, 64, 64)).shape == (1, 64, 16, 16)  # 7x7 stride 2, then the max-pool


SMALL = ("--arch", "resnet18", "--width", "16", "--image-size", str(SIZE), "--batch-size", "64", "--workers", "2")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["simclr", "bcl-i", "sdclr", "bcl-d"])
def test_each_method_trains_on_a_folder(folder, tmp_path, method):
    out = tmp_path / method
    result = run("train", *list_flags(folder), *SMALL, "--method", method, "--epochs", "2", "--out", out)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(np.isfinite(r["loss"]) for r in records)
    assert json.loads((out / "classes.json").read_text()) == {"train_class_counts": TRAIN_COUNTS, "grouping": "counts"}


@pytest.mark.slow
def test_eval_and_resume_on_a_folder(folder, tmp_path):
    """A run stopped after epoch 1 and resumed ends where the straight run ends; eval groups its classes
    as the folder thresholds say."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = (*list_flags(folder), *SMALL, "--method", "bcl-d", "--epochs", "2")
    assert run("train", *args, "--out", straight).exit_code == 0
    assert run("train", *args, "--stop-after", "1", "--out", split).exit_code == 0
    resumed = run("train", "--resume", split)
    assert resumed.exit_code == 0, resumed.output
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(split / "last.pt")
    torch.testing.assert_close(a["momentum"]["ema"], b["momentum"]["ema"], rtol=0, atol=1e-6)
    evaluated = run("eval", straight, "--shots", "full", "--json", tmp_path / "eval.json")
    assert evaluated.exit_code == 0, evaluated.output
    assert "Many > 100, Medium 20-100, Few < 20 training images (1 / 2 / 2 classes)" in evaluated.stdout
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["groups"] == {"many": [0], "medium": [2, 1], "few": [4, 3]}
    per_class = np.array(result["shots"]["full"]["per_class"])
    assert result["shots"]["full"]["few"] == pytest.approx(per_class[[3, 4]].mean())


@pytest.mark.slow
def test_resume_refuses_changed_files(folder, tmp_path):
    root = copy_of(folder, tmp_path)
    out = tmp_path / "run"
    assert run("train", *list_flags(root), *SMALL, "--epochs", "2", "--stop-after", "1", "--out", out).exit_code == 0
    image = root / "train/class01/00002.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    assert_one_line_error(run("train", "--resume", out), "train/class01/00002.jpg changed since the run started (")


def test_an_epoch_left_early_keeps_no_files_lent(folder):
    """DALI reads each iteration's encoded files without a copy, so the executor keeps them until DALI
    hands the iteration out; an epoch left early is run out before the next, and its files go then.
    Mutation caught: the run-out counted from iteration 0 (its files kept under keys the next epoch
    may never reach)."""
    files = load_data("folder", data_dir=folder, lists=lists(folder)).train.images
    rng = np.random.default_rng(0)
    order = rng.permutation(len(files))[:64]
    plan = EpochPlan(order, 8, BoostPolicy(0, crop_scale=(0.08, 1.0), blur=True).sample(
        rng.random(len(order)), rng, (files.heights[order], files.widths[order])))
    executor = DaliExecutor(FileInput(files), size=SIZE, num_slots=0, batch_size=8, device=torch.device("cpu"), threads=2,
                                  blur=True)
    batches = executor.epoch(plan)
    for _ in range(3):
        next(batches)
    batches.close()
    short = EpochPlan(order[:16], 8, plan.params.select(slice(0, 16)))
    assert len(list(executor.epoch(short))) == 2
    assert executor.input._lent == {}
