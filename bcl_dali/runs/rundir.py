"""A run directory: config.json, metrics.jsonl (one JSON object per epoch), last.pt, snapshots, and
the evaluations `eval` keeps there (eval-epochE.json).

A run is created with its config and then its first checkpoint; a kill between the two leaves a
config alone, which `--resume` starts over from epoch 0. One process at a time may write a run:
the directory is locked while it trains."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator

from bcl_dali.atomic import remove_stale_temporaries, write_text_atomic
from bcl_dali.errors import UserError
from bcl_dali.runs.outputs import make_folder

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LAST = "last.pt"
CLASSES = "classes.json"
"""The training split's class sizes, for reports that must not need the data set itself."""
EVALUATION_PREFIX = "eval-epoch"
LEFT_OUT = "left_out.json"
"""Training files a run leaves out because they do not decode (--on-bad-image skip), and why."""


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

    @property
    def classes_path(self) -> Path:
        return self.path / CLASSES

    def snapshot_path(self, epoch: int) -> Path:
        return self.path / f"epoch_{epoch:04d}.pt"

    def evaluation_path(self, epoch: int) -> Path:
        return self.path / f"{EVALUATION_PREFIX}{epoch}.json"

    def latest_evaluation(self) -> dict[str, Any] | None:
        """The evaluation of the latest epoch evaluated (as written: bcl_dali.eval.result), if any."""
        kept = sorted(self.path.glob(f"{EVALUATION_PREFIX}*.json"), key=lambda p: int(p.stem.removeprefix(EVALUATION_PREFIX)))
        return json.loads(kept[-1].read_text()) if kept else None

    def check_free(self) -> None:
        """Refuse a directory that holds an earlier run (never overwrite one) or is a file."""
        if self.config_path.exists() or self.last_path.exists():
            raise UserError(f"{self.path} already holds a run; continue it with --resume {self.path} "
                            "or choose another --out")
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} is a file; give a directory")

    @classmethod
    def create(cls, path: Path, config_json: str) -> RunDir:
        """A new run with its config (JSON text); never overwrites an earlier one."""
        run = cls(path)
        run.check_free()
        make_folder(path, "the run directory")
        run.save_config(config_json)
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run to resume or evaluate (its first checkpoint may be missing: see `has_checkpoint`)."""
        run = cls(path)
        if not path.is_dir():
            raise UserError(f"{path} is not a directory; give the --out directory of an earlier `train`")
        if not run.config_path.is_file():
            raise UserError(f"{path} holds no run (no {CONFIG}); give the --out directory of an earlier `train`")
        return run

    @property
    def has_checkpoint(self) -> bool:
        return self.last_path.is_file()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process; a second process gets a one-line error. Temporary files of
        a writer that was killed are cleared once the lock is held."""
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(f"{self.path} is being trained by another process; wait for it to end, or train "
                                "elsewhere with another --out") from None
            remove_stale_temporaries(self.path)
            yield
        finally:
            os.close(descriptor)

    def is_training(self) -> bool:
        """Whether a process holds the run's lock (it is training now)."""
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)
        return False

    def save_class_counts(self, counts: list[int], grouping: str = "thirds") -> None:
        """Written once per run (a resume of an older run adds it); the data of a run never changes.
        `grouping` is how its classes form Many / Medium / Few (split.groups)."""
        if not self.classes_path.exists():
            write_text_atomic(self.classes_path, json.dumps({"train_class_counts": counts, "grouping": grouping}) + "\n")

    def classes(self) -> tuple[list[int] | None, str]:
        """The training split's class counts (None if the run has no classes.json yet) and its
        Many / Medium / Few rule; runs from before image folders group in thirds."""
        if not self.classes_path.exists():
            return None, "thirds"
        classes = json.loads(self.classes_path.read_text())
        return classes["train_class_counts"], classes.get("grouping", "thirds")

    @property
    def left_out_path(self) -> Path:
        return self.path / LEFT_OUT

    def left_out(self) -> list[dict[str, Any]]:
        """The files the run leaves out: path, where it was named, why, and the epoch it was found in."""
        return json.loads(self.left_out_path.read_text()) if self.left_out_path.exists() else []

    def add_left_out(self, entries: list[dict[str, Any]]) -> None:
        write_text_atomic(self.left_out_path, json.dumps(self.left_out() + entries, indent=2) + "\n")

    def save_config(self, config_json: str) -> None:
        write_text_atomic(self.config_path, config_json + "\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as file:
            file.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records; a last line torn by a kill during its write is left out (a resume rewrites it)."""
        if not self.metrics_path.exists():
            return []
        records = []
        lines = [line for line in self.metrics_path.read_text().splitlines() if line.strip()]
        for number, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines) - 1:
                    raise UserError(f"{self.metrics_path} line {number + 1} is damaged; it was edited or written by "
                                    "something else than `train`") from None
        return records

    def keep_metrics_until(self, epoch: int, checkpointed: dict[str, Any] | None = None) -> None:
        """Drop records of epochs after `epoch` (written after the checkpoint a resume starts from);
        add the checkpoint's own record of `epoch` if a kill kept it from the file."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= epoch]
        if checkpointed is not None and not any(r.get("epoch") == epoch and "loss" in r for r in kept):
            kept.append(checkpointed)
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
