"""What every experiment does with its runs: the train settings they share, and a run trained, or
resumed where an earlier invocation of the experiment left it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bcl_dali.runs.rundir import RunDir
from bcl_dali.training import start_run


def experiment_settings(dataset: str, epochs: int, batch_size: int, width: int, eval_every: int | None,
                        **optional: Any) -> dict[str, Any]:
    """train's settings for every run of an experiment (kNN every tenth of the epochs by default);
    an optional setting given as None is left to train's default, a path becomes its string."""
    settings = {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "width": width,
                "eval_every": max(1, epochs // 10) if eval_every is None else eval_every}
    return settings | {key: str(value) if isinstance(value, Path) else value
                       for key, value in optional.items() if value is not None}


def train_or_resume(overrides: dict[str, Any], run: Path, echo: Callable[[str], None]) -> None:
    """Train `run` with `overrides` (train's settings), or continue it if it exists."""
    if RunDir(run).config_path.exists():
        start_run(overrides, None, run, echo)
    else:
        start_run(overrides, run, None, echo)
