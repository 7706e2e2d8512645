"""The run's metrics where researchers look, beside metrics.jsonl (which stays the source of truth):
TensorBoard (torch's SummaryWriter, under RUN/tensorboard) or Weights & Biases (under RUN/wandb;
`WANDB_MODE=offline` works without a network). Each gets every record metrics.jsonl gets, at its
epoch: its numbers as scalars, the weight histogram as a histogram."""
from __future__ import annotations

import importlib
import numbers
import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bcl_dali.atomic import write_text_atomic
from bcl_dali.errors import UserError

LOGGERS = ("none", "tensorboard", "wandb")
MODULES = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb"}
HISTOGRAMS = ("weight_histogram",)
"""Record keys that hold counts over equal bins of [0, 1]."""


class MetricsLogger(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def logger_names(log: str) -> list[str]:
    """The loggers of a --log value: "none", one name, or several joined by commas."""
    names = [name.strip() for name in log.split(",") if name.strip()]
    unknown = [name for name in names if name not in LOGGERS]
    if unknown or not names:
        raise UserError(f"unknown --log {log!r}; give none, tensorboard, wandb or tensorboard,wandb")
    return [name for name in names if name != "none"]


def check_loggers(log: str) -> None:
    """Refuse, before any work, a logger whose package is not installed, naming the pip command."""
    for name in logger_names(log):
        try:
            importlib.import_module(MODULES[name])
        except ImportError:
            raise UserError(f"--log {name} needs the {name} package: pip install 'bcl-dali[{name}]' (or pip install "
                            f"{name}), or drop it from --log") from None


def open_loggers(log: str, run_path: Path, config: dict[str, Any], epoch: int) -> list[MetricsLogger]:
    """The run's loggers, opened at `epoch` (0 for a new run): a resumed run goes on in the same
    TensorBoard folder (what it logged after `epoch` purged, as metrics.jsonl is cut back) and the same
    W&B run."""
    opened: list[MetricsLogger] = []
    for name in logger_names(log):
        opened.append(TensorBoardLogger(run_path / "tensorboard", epoch) if name == "tensorboard"
                      else WandbLogger(run_path, config))
    return opened


def scalars(record: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in record.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and key != "epoch"}


def histograms(record: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each histogram of the record as (counts, bin edges over [0, 1])."""
    found = {}
    for key in HISTOGRAMS:
        if isinstance(record.get(key), list) and record[key]:
            counts = np.asarray(record[key], np.float64)
            found[key] = counts, np.linspace(0.0, 1.0, len(counts) + 1)
    return found


class TensorBoardLogger:
    def __init__(self, folder: Path, epoch: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder), purge_step=epoch + 1 if epoch else None)

    def log(self, record: dict[str, Any]) -> None:
        epoch = int(record["epoch"])
        for key, value in scalars(record).items():
            self.writer.add_scalar(key, value, epoch)
        for key, (counts, edges) in histograms(record).items():
            centres = (edges[:-1] + edges[1:]) / 2
            self.writer.add_histogram_raw(key, min=0.0, max=1.0, num=int(counts.sum()),
                                          sum=float((counts * centres).sum()),
                                          sum_squares=float((counts * centres ** 2).sum()),
                                          bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(),
                                          global_step=epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


WANDB_ID = "wandb-run-id"
"""The run directory's W&B run id: made when the run first logs, so a run made again at the same
path is a new W&B run and a resume goes on in its own."""


class WandbLogger:
    """Logs against the epoch (W&B's own step only counts up, and a resume redoes the epochs after its
    checkpoint)."""

    def __init__(self, run_path: Path, config: dict[str, Any]) -> None:
        import wandb

        self.wandb = wandb
        path = run_path / WANDB_ID
        if not path.exists():
            write_text_atomic(path, uuid.uuid4().hex[:16] + "\n")
        self.run = wandb.init(project="bcl-dali", name=run_path.name, id=path.read_text().strip(), resume="allow",
                              config=config, dir=str(run_path))
        self.run.define_metric("*", step_metric="epoch")

    def log(self, record: dict[str, Any]) -> None:
        values: dict[str, Any] = dict(scalars(record)) | {"epoch": int(record["epoch"])}
        for key, (counts, edges) in histograms(record).items():
            values[key] = self.wandb.Histogram(np_histogram=(counts, edges))
        self.run.log(values)

    def close(self) -> None:
        self.run.finish()
