"""`cli.py report`, `eval` over several runs, and `experiment fidelity`, on run directories."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bcl_dali.config import TrainConfig
from bcl_dali.runs.rundir import RunDir
from bcl_dali.train.memorization import MemorizationStatistics
from bcl_dali.split import class_groups
from tests.cli_support import assert_one_line_error, run

COUNTS = [40, 20, 10, 5, 3, 2]


def _make_run(path: Path, method: str, epochs: int = 3, evaluated: bool = False, seed: int = 0) -> Path:
    """A run directory as `train` and `eval` leave it, with records from the real statistics."""
    path.mkdir()
    (path / "config.json").write_text(TrainConfig(method=method, epochs=epochs).resolve().to_json())
    (path / "classes.json").write_text(json.dumps({"train_class_counts": COUNTS}))
    labels = np.repeat(np.arange(len(COUNTS)), COUNTS)
    statistics = MemorizationStatistics(labels, len(COUNTS), torch.device("cpu"))
    rng = np.random.default_rng(seed)
    with (path / "metrics.jsonl").open("w") as metrics:
        for epoch in range(1, epochs + 1):
            weights = torch.as_tensor(rng.uniform(0, 1, len(labels)) * (1 - 0.1 * np.log(labels + 1)))
            record = {"epoch": epoch, "loss": 6.0 - epoch, "knn_top1": 20.0 + epoch} | statistics(weights)
            metrics.write(json.dumps(record) + "\n")
    if evaluated:
        groups = {name: ids.tolist() for name, ids in class_groups(np.array(COUNTS)).items()}
        shot = {"top1": 40.0 + seed, "top5": 80.0, "many": 50.0 + seed, "medium": 40.0, "few": 30.0 - seed,
                "group_std": 8.0, "subsets": 1, "top1_std_over_subsets": 0.0, "per_class": [40.0] * len(COUNTS)}
        result = {"method": method, "epoch": epochs, "dataset": "synthetic-lt", "num_classes": len(COUNTS),
                  "train_class_counts": COUNTS, "groups": groups, "knn_top1": 30.0, "shots": {"full": shot}}
        RunDir(path).evaluation_path(epochs).write_text(json.dumps(result))
    return path


def _pngs(folder: Path) -> set[str]:
    names = {p.name for p in folder.glob("*.png")}
    for name in names:
        assert Image.open(folder / name).format == "PNG"
    return names


def test_report_of_one_run_without_an_evaluation(tmp_path: Path) -> None:
    """The curves, the heat map and the scatter, no group bars; the md names the last epoch's rho.
    Fails if a figure goes missing or the memorisation table reads another epoch."""
    run_dir = _make_run(tmp_path / "bcl", "bcl-i")
    result = run("report", run_dir)
    assert result.exit_code == 0, result.output
    out = run_dir / "report"
    assert _pngs(out) == {"loss.png", "knn.png", "spearman.png", "bcl-weights.png", "bcl-weight-by-size.png"}
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    text = (out / "report.md").read_text()
    assert f"{last['size_weight_spearman']:+.3f}" in text and "## Evaluation" not in text
    for png in _pngs(out):
        assert f"]({png})" in text


def test_report_of_an_evaluated_run_has_group_bars_and_its_table(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "bcl", "bcl-i", evaluated=True)
    assert run("report", run_dir, "--out", tmp_path / "out").exit_code == 0
    assert "groups.png" in _pngs(tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| full-shot few | 30.00 |" in text and "| kNN top-1 | 30.00 |" in text


def test_report_of_two_runs_puts_them_side_by_side(tmp_path: Path) -> None:
    a = _make_run(tmp_path / "simclr", "simclr", evaluated=True)
    b = _make_run(tmp_path / "bcl", "bcl-i", evaluated=True, seed=1)
    assert run("report", a, b, "--out", tmp_path / "both").exit_code == 0
    text = (tmp_path / "both" / "report.md").read_text()
    assert "| method | simclr | bcl-i |" in text and "| full-shot few | 30.00 | 29.00 |" in text
    assert {"simclr-weights.png", "bcl-weights.png", "groups.png"} <= _pngs(tmp_path / "both")


@pytest.mark.parametrize("args,fragment", [
    (["report"], "Missing argument"),
    (["report", "RUN_A", "RUN_B"], "several runs need --out"),
    (["report", "NOWHERE"], "is not a directory"),
    (["report", "RUN_A", "--out", "AFILE/sub"], "cannot make the folder"),
    (["report", "RUN_A", "--out", "AFILE"], "is a file"),
    (["experiment", "fidelity", "--out", "AFILE/sub", "--epochs", "1"], "cannot make the folder"),
    (["experiment", "fidelity", "--out", "OUT", "--pairs", "mocov2"], "--pairs 'mocov2'"),
    (["experiment", "fidelity", "--out", "OUT", "--shots", "7"], "--shots '7' is not available"),
])
def test_report_refuses_bad_input(tmp_path: Path, args: list[str], fragment: str) -> None:
    for name in ("RUN_A", "RUN_B"):
        _make_run(tmp_path / name, "simclr")
    (tmp_path / "AFILE").write_text("not a folder")
    assert_one_line_error(run(*[str(tmp_path / a) if a.split("/")[0].isupper() else a for a in args]), fragment)


def test_report_without_matplotlib_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _make_run(tmp_path / "bcl", "bcl-i")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert_one_line_error(run("report", run_dir), "pip install -e '.[plot]'")


@pytest.mark.slow
def test_a_report_says_which_epoch_it_evaluated_and_has_no_empty_tables(tmp_path):
    """A one-epoch run has no weights yet: the report said nothing but a table header. And an
    evaluation of an earlier epoch than the run reached is labelled as such. Mutations caught: the
    header printed without rows; the evaluated epoch not shown."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    args = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "32", "--device", "cpu")
    assert run("train", *args, "--epochs", "0", "--out", out).exit_code == 0
    assert run("eval", out, "--shots", "full").exit_code == 0
    assert run("train", "--resume", out, "--epochs", "1").exit_code == 0
    assert run("report", out).exit_code == 0
    report = (out / "report" / "report.md").read_text()
    assert "| run | epoch | Many | Medium | Few | rho |" not in report
    assert "No weights to show yet" in report
    assert "| evaluated at epoch | 0 (of 1 trained) |" in report
