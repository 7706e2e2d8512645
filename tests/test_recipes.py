"""The recipes in recipes/: each is a `train --config` file that resolves, and the CIFAR-100-LT ones
are the paper's defaults written out (so a preset that moves shows here)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bcl_dali.config import TrainConfig, read_settings
from tests.paths import REPO

RECIPES = sorted((REPO / "recipes").glob("*.toml"))


def test_there_is_a_recipe_for_each_method_and_data_set():
    assert [path.stem for path in RECIPES] == ["cifar100-lt-bcl-d", "cifar100-lt-bcl-i", "cifar100-lt-byol",
                                              "cifar100-lt-moco", "cifar100-lt-sdclr", "cifar100-lt-simclr",
                                              "imagenet-lt", "large-batch-4096", "places-lt"]


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
def test_each_recipe_resolves(path):
    settings = read_settings(path)
    config = TrainConfig(**settings | ({"data_dir": "/data"} if settings["dataset"] == "folder" else {})).resolve()
    assert config.device == "cuda" and config.method == settings["method"]


@pytest.mark.parametrize("method", ["simclr", "bcl-i", "sdclr", "bcl-d", "moco", "byol"])
def test_the_cifar_recipes_are_the_papers_defaults(method):
    """MoCo's and BYOL's are their defaults boosted once."""
    recipe = TrainConfig(**read_settings(REPO / "recipes" / f"cifar100-lt-{method}.toml")).resolve()
    boost = {"boost": 1} if method in ("moco", "byol") else {}
    defaults = TrainConfig(method=method, dataset="cifar100-lt", device="cuda", **boost).resolve()
    assert dataclasses.asdict(recipe) == dataclasses.asdict(defaults)


def test_the_large_batch_recipe_scales_the_rate_linearly():
    config = TrainConfig(**read_settings(REPO / "recipes" / "large-batch-4096.toml")).resolve()
    assert (config.batch_size, config.optimizer, config.lr_scale) == (4096, "lars", "linear")


@pytest.mark.slow
def test_a_recipe_with_the_built_in_datas_overrides_trains_through_the_console_command(tmp_path):
    """What a user types after `pip install`: `bcl-dali train --config RECIPE` and flags over it."""
    out = tmp_path / "run"
    done = subprocess.run([str(Path(sys.executable).parent / "bcl-dali"), "train", "--config",
                           "recipes/cifar100-lt-bcl-i.toml", "--dataset", "synthetic-lt", "--num-classes", "3",
                           "--width", "16", "--batch-size", "64", "--epochs", "1", "--warmup-epochs", "0", "--device",
                           "cpu", "--workers", "1", "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = json.loads((out / "config.json").read_text())
    assert (recorded["method"], recorded["boost"], recorded["temperature"], recorded["dataset"]) == \
        ("bcl-i", 1, 0.2, "synthetic-lt")
