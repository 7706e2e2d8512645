"""TrainConfig in sections: each field belongs to one section, which checks it and gives its rule on
resume; a resume is refused, allowed or recorded by that rule alone."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bcl_dali.config import ADJUSTABLE, FIXED, OPERATIONAL, SECTIONS, TrainConfig, read_settings
from bcl_dali.errors import UserError
from bcl_dali.train.schedule import lr_at
from tests.cli_support import assert_one_line_error, run

TINY = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64", "--device", "cpu",
        "--workers", "1")


def test_every_setting_lives_in_exactly_one_section_with_a_rule_on_resume():
    owners = {}
    for section in SECTIONS:
        for field in dataclasses.fields(section):
            assert field.name not in owners, f"{field.name} in {owners.get(field.name)} and {section.__name__}"
            owners[field.name] = section.__name__
            assert field.metadata["resume"] in (FIXED, ADJUSTABLE, OPERATIONAL)
    assert set(owners) == {field.name for field in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: section.__name__)
def test_each_section_checks_its_own_fields(section):
    """A section's check refuses a bad value of one of its fields, whatever the other sections hold."""
    bad = {"ModelSettings": {"width": 8}, "DataSettings": {"num_classes": 2},
           "AugmentationSettings": {"crop_scale": 1.5}, "ObjectiveSettings": {"beta": 1.0},
           "OptimisationSettings": {"lr": -1.0}, "MachineSettings": {"workers": -1},
           "RecordSettings": {"eval_every": -1}}[section.__name__]
    with pytest.raises(UserError):
        section.check(section(**bad))
    section.check(section())


def test_a_resume_follows_each_field_s_rule():
    stored = TrainConfig(dataset="synthetic-lt", num_classes=3, epochs=4).resolve()
    moved = dataclasses.replace(stored, workers=3, device="cpu", eval_every=2)
    moved.check_resumable_as(stored)
    assert moved.adjustments_from(stored) == {}
    remedied = dataclasses.replace(stored, lr=0.1, epochs=6)
    remedied.check_resumable_as(stored)
    assert remedied.adjustments_from(stored) == {"epochs": [4, 6], "lr": [stored.lr, 0.1]}
    with pytest.raises(UserError, match="batch_size"):
        dataclasses.replace(stored, batch_size=stored.batch_size // 2).check_resumable_as(stored)


def _data(**fields) -> np.ndarray:
    return TrainConfig(dataset="synthetic-lt", num_classes=3, **fields).resolve().load_data().train.images.pixels


def test_the_training_seed_does_not_change_the_built_in_data() -> None:
    """Fails if synthetic-lt is drawn from --seed again: a seed study would compare different data."""
    assert np.array_equal(_data(seed=1), _data(seed=2))
    assert not np.array_equal(_data(seed=1, data_seed=0), _data(seed=1, data_seed=1))


def test_boost_is_a_setting_of_every_method_and_the_paper_s_names_stay() -> None:
    """simclr with --boost 1 is BCL-I and sdclr with --boost 2 BCL-D (so named in run directories,
    summaries and evaluations); any other method or boost is named after its base method."""
    labels = {(method, boost): TrainConfig(method=method, boost=boost).resolve().label
              for method, boost in [("simclr", 0), ("simclr", 1), ("simclr", 2), ("bcl-i", None), ("bcl-i", 0),
                                    ("sdclr", 2), ("bcl-d", None), ("moco", 1), ("byol", None)]}
    assert labels == {("simclr", 0): "simclr", ("simclr", 1): "bcl-i", ("simclr", 2): "simclr-boost2",
                      ("bcl-i", None): "bcl-i", ("bcl-i", 0): "simclr", ("sdclr", 2): "bcl-d", ("bcl-d", None): "bcl-d",
                      ("moco", 1): "moco-boost1", ("byol", None): "byol"}
    assert TrainConfig(method="byol", boost=2).resolve().boost_policy().k == 2
    assert TrainConfig(method="simclr", boost=1, weight_norm="rank").resolve().label == "bcl-i-rank"


def test_a_config_from_before_boost_was_a_setting_reads_its_rand_k(tmp_path: Path) -> None:
    """As a resume reads it, and through `train --config` (which checks the keys first)."""
    stored = json.loads(TrainConfig(method="bcl-d").resolve().to_json())
    stored["rand_k"] = stored.pop("boost")
    del stored["weight_norm"], stored["queue_size"], stored["target_momentum"]
    config = TrainConfig.from_dict(stored)
    assert (config.boost, config.weight_norm, config.label) == (2, "paper", "bcl-d")
    (tmp_path / "config.json").write_text(json.dumps(stored))
    assert read_settings(tmp_path / "config.json")["boost"] == 2


def test_the_weight_normalisation_is_a_checked_setting() -> None:
    assert TrainConfig(weight_norm="rank").resolve().weight_norm == "rank"
    with pytest.raises(UserError, match="unknown --weight-norm 'median'; choose one of paper, rank"):
        TrainConfig(weight_norm="median").resolve()


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


@pytest.mark.slow
def test_a_runs_config_json_runs_it_again(tmp_path):
    """`train --config RUN/config.json` is the run again: the same weights bit for bit on the CPU, and
    the same config.json. Mutation caught: the file read but not passed on (the run is the default one)."""
    first = tmp_path / "first"
    assert run("train", *TINY, "--epochs", "1", "--seed", "4", "--out", first).exit_code == 0
    again = tmp_path / "again"
    result = run("train", "--config", first / "config.json", "--out", again)
    assert result.exit_code == 0, result.output
    assert json.loads((again / "config.json").read_text()) == json.loads((first / "config.json").read_text())
    import torch
    a, b = (torch.load(path / "last.pt", weights_only=True)["model"] for path in (first, again))
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_flags_override_a_toml_file_of_the_same_keys(tmp_path):
    """Mutation caught: the file's settings given after the flags (its seed 2 wins over --seed 7)."""
    settings = tmp_path / "tiny.toml"
    settings.write_text('# a comment\nmethod = "simclr"\ndataset = "synthetic-lt"\nnum-classes = 3\nwidth = 16\n'
                        'batch_size = 64\nepochs = 1\ndevice = "cpu"\nworkers = 1\nseed = 2\n')
    out = tmp_path / "run"
    result = run("train", "--config", settings, "--seed", "7", "--out", out)
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "config.json").read_text())
    assert (recorded["method"], recorded["num_classes"], recorded["epochs"], recorded["seed"]) == ("simclr", 3, 1, 7)


@pytest.mark.parametrize("content, name, fragment", [
    ('method = "bcl-i"\nbatch = 64\n', "x.toml", "has unknown settings ['batch']"),
    ('method = "bcl-i\n', "x.toml", "is not valid TOML"),
    ('{"method": ', "x.json", "is not valid JSON"),
    ('[1, 2]', "x.json", "holds a list"),
    ('epochs = "100"\n', "x.toml", "epochs = '100' has the wrong type (it takes int | None)"),
    ('probe = 1\n', "x.toml", "probe = 1 has the wrong type (it takes bool)"),
    (None, "missing.toml", "cannot read --config"),
])
def test_a_bad_config_file_is_one_line(tmp_path, content, name, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert_one_line_error(run("train", "--config", path, "--out", tmp_path / "never"), fragment)
    assert not (tmp_path / "never").exists()


def test_config_with_resume_is_refused(tmp_path):
    (tmp_path / "c.toml").write_text('method = "bcl-i"\n')
    assert_one_line_error(run("train", "--resume", tmp_path, "--config", tmp_path / "c.toml"), "drop --config")


def test_the_old_name_of_boost_is_one_line_naming_the_new_one(tmp_path: Path) -> None:
    assert_one_line_error(run("train", "--rand-k", "1", "--out", tmp_path / "r", *TINY), "--rand-k is now --boost")
    assert not (tmp_path / "r").exists()
