"""`cli.py splits make` and `splits show`, and how the command line reports a user's mistake."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bcl_dali.split import long_tail_counts
from tests.cli_support import assert_one_line_error, run
from tests.paths import REPO, SPLITS


def test_make_then_show_a_long_tailed_split(tmp_path: Path) -> None:
    out = tmp_path / "lt.npy"
    made = run("splits", "make", "--dataset", "synthetic-lt", "--seed", "3", "--out", out)
    assert made.exit_code == 0, made.output
    assert "wrote 9754 indices" in made.stdout
    indices = np.load(out)
    assert indices.dtype == np.int64 and len(np.unique(indices)) == 9754
    np.testing.assert_array_equal(np.bincount(indices % 100), long_tail_counts(100, 450, 100))

    shown = run("splits", "show", out, "--dataset", "synthetic-lt")
    assert shown.exit_code == 0, shown.output
    assert "total: 9754 images in 100 of 100 classes" in shown.stdout
    assert "imbalance ratio: 112.5 (largest class 450 / smallest non-empty class 4)" in shown.stdout
    assert "Many   34 classes, 96..450" in shown.stdout


def test_make_with_another_ratio_and_head(tmp_path: Path) -> None:
    out = tmp_path / "lt10.npy"
    made = run("splits", "make", "--dataset", "synthetic-lt", "--imbalance", "10", "--max-per-class", "300",
               "--out", out)
    assert made.exit_code == 0, made.output
    np.testing.assert_array_equal(np.bincount(np.load(out) % 100), long_tail_counts(100, 300, 10))


def test_make_a_few_shot_subset_of_the_probe_pool(tmp_path: Path) -> None:
    out = tmp_path / "shots.npy"
    made = run("splits", "make", "--dataset", "synthetic-lt", "--shots", "10", "--out", out)
    assert made.exit_code == 0, made.output
    indices = np.load(out)
    assert len(indices) == 1000 and np.all(np.bincount(indices % 100) == 10)
    assert indices.max() < 200 * 100
    assert "imbalance ratio: 1.0" in run("splits", "show", out, "--dataset", "synthetic-lt").stdout


def test_make_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "taken.npy"
    np.save(out, np.arange(3))
    assert_one_line_error(run("splits", "make", "--dataset", "synthetic-lt", "--out", out), "already exists")
    assert np.load(out).tolist() == [0, 1, 2]


@pytest.mark.parametrize(("args", "fragment"), [
    (("--shots", "10", "--imbalance", "50"), "--imbalance and --max-per-class apply only to long-tailed splits"),
    (("--imbalance", "0.5"), "imbalance ratio must be >= 1"),
    (("--max-per-class", "501"), "class 0 has 500 images but the long-tailed profile asks for 501"),
    (("--shots", "201"), "fewer than 201 shots"),
])
def test_make_refuses_impossible_requests(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    made = run("splits", "make", "--dataset", "synthetic-lt", *args, "--out", tmp_path / "x.npy")
    assert_one_line_error(made, fragment)
    assert not (tmp_path / "x.npy").exists()


def test_flag_mistakes_are_one_line_too(tmp_path: Path) -> None:
    assert_one_line_error(run("splits", "make", "--dataset", "synthetic-lt"),
                          "Missing option '--out'. (see 'cli.py splits make --help')")
    assert_one_line_error(run("splits", "show", tmp_path / "x.npy", "--dataset", "mnist"), "'mnist' is not one of")
    assert_one_line_error(run("splits", "shuffle"), "No such command 'shuffle'")


def test_show_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    np.save(tmp_path / "float.npy", np.arange(4.0))
    assert_one_line_error(run("splits", "show", tmp_path / "float.npy", "--dataset", "synthetic-lt"),
                          "holds float64 values, expected integers")


def test_cifar_without_data_says_where_to_look(tmp_path: Path) -> None:
    np.save(tmp_path / "split.npy", np.arange(4))
    assert_one_line_error(run("splits", "show", tmp_path / "split.npy", "--dataset", "cifar100-lt"), "--data-dir")
    assert_one_line_error(run("splits", "show", tmp_path / "split.npy", "--dataset", "cifar100-lt",
                              "--data-dir", tmp_path), "no intact CIFAR100")


@pytest.mark.skipif(not SPLITS.is_dir(), reason="the reference's split files are not beside the repository")
def test_show_a_reference_split() -> None:
    shown = run("splits", "show", SPLITS / "cifar100_imbSub_with_subsets" / "cifar100_split1_D_i.npy",
                "--dataset", "synthetic-lt")
    assert shown.exit_code == 0, shown.output
    assert "total: 9754 images" in shown.stdout


@pytest.mark.slow
def test_script_reports_a_user_error_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "cli.py", "splits", "show", str(tmp_path / "absent.npy"),
                           "--dataset", "synthetic-lt"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: index file") and done.stderr.count("\n") == 1
