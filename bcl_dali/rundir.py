"""A run directory: config.json, metrics.jsonl (one JSON object per epoch), last.pt, snapshots."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bcl_dali.atomic import write_text_atomic
from bcl_dali.config import TrainConfig
from bcl_dali.errors import UserError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LAST = "last.pt"


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def last_path(self) -> Path:
        return self.path / LAST

    def snapshot_path(self, epoch: int) -> Path:
        return self.path / f"epoch_{epoch:04d}.pt"

    def check_free(self) -> None:
        """Refuse a directory that holds an earlier run (never overwrite one) or is a file."""
        if self.config_path.exists() or self.last_path.exists():
            raise UserError(f"{self.path} already holds a run; continue it with --resume {self.path} "
                            "or choose another --out")
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} is a file; give a directory")

    @classmethod
    def create(cls, path: Path, config: TrainConfig) -> RunDir:
        """A new run; never overwrites an earlier one."""
        run = cls(path)
        run.check_free()
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run.config_path, config.to_json() + "\n")
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run to resume or evaluate."""
        run = cls(path)
        if not path.is_dir():
            raise UserError(f"{path} is not a directory; give the --out directory of an earlier `train`")
        if not run.config_path.is_file() or not run.last_path.is_file():
            raise UserError(f"{path} holds no run (no {CONFIG} and {LAST}); give the --out directory of an earlier `train`")
        return run

    def load_config(self) -> TrainConfig:
        return TrainConfig.load(self.config_path)

    def save_config(self, config: TrainConfig) -> None:
        write_text_atomic(self.config_path, config.to_json() + "\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as file:
            file.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    def keep_metrics_until(self, epoch: int) -> None:
        """Drop records of epochs after `epoch` (written after the checkpoint a resume starts from)."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= epoch]
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
