"""--log: the run's metrics also in TensorBoard or W&B, the same numbers metrics.jsonl holds; a missing
package is one line naming the pip command, before any work."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.cli_support import assert_one_line_error, run

TINY = ("--dataset", "synthetic-lt", "--num-classes", "3", "--width", "16", "--batch-size", "64", "--device", "cpu",
        "--workers", "1", "--epochs", "2", "--warmup-epochs", "1")


def _metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name, module", [("tensorboard", "torch.utils.tensorboard"), ("wandb", "wandb")])
def test_a_missing_package_is_one_line_naming_the_pip_command(tmp_path, monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)
    result = run("train", *TINY, "--log", "tensorboard,wandb", "--out", tmp_path / "never")
    assert_one_line_error(result, f"pip install 'bcl-dali[{name}]'")
    assert not (tmp_path / "never").exists()


def test_an_unknown_logger_is_one_line():
    assert_one_line_error(run("train", *TINY, "--log", "tensorbord"), "unknown --log 'tensorbord'")


@pytest.mark.slow
def test_tensorboard_gets_what_metrics_jsonl_holds_and_wandb_runs_offline(tmp_path, monkeypatch):
    """Both at once: TensorBoard's events hold metrics.jsonl's numbers at their epochs and the weight
    histogram; W&B, offline without a network, writes its run under RUN/wandb. Mutation caught: the
    histogram's counts written as its bucket limits."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    result = run("train", *TINY, "--log", "tensorboard,wandb", "--out", out)
    assert result.exit_code == 0, result.output
    records = _metrics(out)
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"histograms": 0, "scalars": 0}).Reload()
    for key in ("loss", "lr", "samples_per_second", "weight_mean"):
        logged = events.Scalars(key)
        assert [event.step for event in logged] == [1, 2]
        np.testing.assert_allclose([event.value for event in logged], [r[key] for r in records], rtol=1e-6)
    assert [event.step for event in events.Scalars("knn_top1")] == [2]
    (histogram,) = events.Histograms("weight_histogram")
    assert histogram.step == 2 and list(histogram.histogram_value.bucket) == records[1]["weight_histogram"]
    (written,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    assert written.stat().st_size > 0


class _RecordingWandb:
    """Stands in for the wandb package: keeps what the run gives it."""

    def __init__(self) -> None:
        self.settings, self.logged, self.finished = {}, [], False

    def init(self, **settings):
        self.settings = settings
        return self

    def log(self, values: dict) -> None:
        self.logged.append((values["epoch"], values))

    def define_metric(self, name: str, step_metric: str) -> None:
        self.step_metric = step_metric

    def finish(self) -> None:
        self.finished = True

    @staticmethod
    def Histogram(np_histogram):
        return np_histogram


@pytest.mark.slow
def test_wandb_gets_what_metrics_jsonl_holds(tmp_path, monkeypatch):
    """Each record at its epoch: the numbers as they are, the weight histogram as (counts, edges over
    [0, 1]); one W&B run per run directory (so a resume goes on in it), finished at the end."""
    wandb = _RecordingWandb()
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    out = tmp_path / "run"
    assert run("train", *TINY, "--log", "wandb", "--out", out).exit_code == 0
    records = _metrics(out)
    assert [step for step, _ in wandb.logged] == [1, 2] and wandb.finished
    for (_, values), record in zip(wandb.logged, records):
        for key in ("loss", "lr", "weight_mean"):
            assert values[key] == record[key]
    counts, edges = wandb.logged[1][1]["weight_histogram"]
    assert counts.tolist() == records[1]["weight_histogram"] and edges[0] == 0.0 and edges[-1] == 1.0
    assert wandb.settings["dir"] == str(out) and wandb.settings["resume"] == "allow" and wandb.step_metric == "epoch"
    assert wandb.settings["id"] == (out / "wandb-run-id").read_text().strip()
    assert wandb.settings["config"]["method"] == json.loads((out / "config.json").read_text())["method"]
