"""Defects a review found in how runs are configured and recorded, each with the test that would
have caught it: the data's seed, mismatched flags, machine settings in the config, paths, file
modes, the probe at intermediate stops."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bcl_dali import atomic
from bcl_dali.config import TrainConfig
from bcl_dali.train.schedule import lr_at
from tests.cli_support import assert_one_line_error, run

TINY = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64", "--device", "cpu",
        "--workers", "1")


def _data(**fields) -> np.ndarray:
    return TrainConfig(dataset="synthetic-lt", num_classes=3, **fields).resolve().load_data().train.images.pixels


def test_the_training_seed_does_not_change_the_built_in_data() -> None:
    """Fails if synthetic-lt is drawn from --seed again: a seed study would compare different data."""
    assert np.array_equal(_data(seed=1), _data(seed=2))
    assert not np.array_equal(_data(seed=1, data_seed=0), _data(seed=1, data_seed=1))


def test_rand_k_that_contradicts_the_method_is_refused(tmp_path: Path) -> None:
    """SimCLR with boosted RandAugment is BCL-I under another name."""
    assert_one_line_error(run("train", "--method", "simclr", "--rand-k", "2", "--out", tmp_path / "r", *TINY),
                          "--rand-k")
    assert not (tmp_path / "r").exists()


def test_warm_up_always_leaves_epochs_for_the_decay() -> None:
    """A default warm-up as long as a short run would ramp the learning rate up for the whole run."""
    config = TrainConfig(dataset="cifar100-lt", epochs=3).resolve()
    assert config.warmup_epochs == 2
    steps = 10
    assert lr_at(3 * steps - 1, 1.0, 3 * steps, config.warmup_epochs * steps) < 0.01


@pytest.mark.parametrize("warmup,epochs", [("3", "3"), ("5", "3")])
def test_a_warm_up_without_decay_is_refused(tmp_path: Path, warmup: str, epochs: str) -> None:
    assert_one_line_error(run("train", "--warmup-epochs", warmup, "--epochs", epochs, "--out", tmp_path / "r", *TINY),
                          "never decay")


def test_the_machine_s_worker_count_stays_out_of_the_config(tmp_path: Path) -> None:
    """A resume on another machine must use that machine's cores, not the first one's."""
    out = tmp_path / "r"
    args = [a for a in TINY if a not in ("--workers", "1")]
    assert run("train", "--epochs", "0", "--out", out, *args).exit_code == 0
    assert json.loads((out / "config.json").read_text())["workers"] is None


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int) -> None:
    """Shared runs must be readable by others when the umask says so (they were always 0600)."""
    monkeypatch.setattr(atomic, "UMASK", umask)
    atomic.write_text_atomic(tmp_path / "f.json", "{}")
    assert os.stat(tmp_path / "f.json").st_mode & 0o777 == 0o666 & ~umask


def test_bare_bench_shows_its_help() -> None:
    result = run("bench")
    assert result.exit_code == 0 and "pipeline" in result.output and "train" in result.output


def test_data_the_evaluation_cannot_group_is_refused_before_training(tmp_path: Path) -> None:
    """A 2-class npz used to train every epoch and then fail in the probe."""
    npz = tmp_path / "two.npz"
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    images = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    np.savez(npz, x_train=images, y_train=labels, x_test=images, y_test=labels)
    result = run("train", "--dataset", "npz", "--data-dir", npz, "--imbalance", "1", "--width", "16", "--batch-size",
                 "8", "--device", "cpu", "--epochs", "1", "--out", tmp_path / "r")
    assert_one_line_error(result, "at least 3 classes")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_probe_only_at_the_end_and_a_relative_split_from_anywhere(tmp_path: Path, monkeypatch) -> None:
    """--probe --stop-after 1 of 2 epochs: no probe at the stop, one at the end. The run was started
    with a relative --split; it resumes from another directory given the same split by its
    absolute path. Fails if the probe runs at every stop, or if paths are stored as typed."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert run("splits", "make", "--dataset", "synthetic-lt", "--num-classes", "3", "--out", "split.npy").exit_code == 0
    out = tmp_path / "run"
    first = run("train", "--probe", "--epochs", "2", "--stop-after", "1", "--split", "split.npy", "--out", out, *TINY)
    assert first.exit_code == 0, first.output
    assert "probe_full_top1" not in json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "full-shot probe" not in first.stdout  # nor in the stop's summary
    assert json.loads((out / "config.json").read_text())["split"] == str(work / "split.npy")
    monkeypatch.chdir(tmp_path)
    second = run("train", "--resume", out, "--split", work / "split.npy")
    assert second.exit_code == 0, second.output
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 2 and "probe_full_top1" in last and "full-shot probe" in second.stdout


@pytest.mark.parametrize("args,fragment", [
    (("train", "--split-seed", "-3"), "--split-seed must be an integer in [0, 4294967295]"),
    (("show", "--out", "/proc/views.png"), "cannot write /proc/views.png"),
    (("show", "--out", "/nonexistent-folder/views.png"), "folder /nonexistent-folder does not exist"),
])
def test_seeds_and_unwritable_pictures_are_one_line(tmp_path: Path, monkeypatch, args, fragment) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run(*args), fragment)
    assert list(tmp_path.iterdir()) == []
