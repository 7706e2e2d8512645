"""The `eval` use case: trained runs or checkpoints in, their evaluations out, each kept in its run
directory as eval-epochE.json (which `report` shows), and the papers' mean ± std over several runs."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bcl_dali.config import TrainConfig
from bcl_dali.data import LongTailedData
from bcl_dali.device import resolve_device
from bcl_dali.errors import UserError, command_name
from bcl_dali.eval.protocol import across_runs, check_shots, evaluate
from bcl_dali.eval.result import Evaluation
from bcl_dali.methods import METHODS
from bcl_dali.runs.checkpoint import load_checkpoint
from bcl_dali.runs.outputs import write_json
from bcl_dali.runs.rundir import LAST, RunDir


@dataclass
class Checkpoint:
    config: TrainConfig
    model: nn.Module
    epoch: int
    path: Path
    run: Path | None
    """The run directory it was loaded from; None for a checkpoint file given by itself."""
    left_out: list[str]
    """Files its run left out (they do not decode), from the run directory it sits in."""


@dataclass(frozen=True)
class Evaluated:
    """What `evaluate_runs` gives: each target's evaluation and, for several, the papers' summary."""

    results: list[Evaluation]
    across_runs: dict | None

    def as_dict(self) -> dict:
        if self.across_runs is None:
            return self.results[0].as_dict()
        return {"runs": [result.as_dict() for result in self.results], "across_runs": self.across_runs}


def parse_shots(text: str) -> list[str]:
    """--shots' comma-separated probe settings."""
    shots = [part.strip() for part in text.split(",") if part.strip()]
    if not shots:
        raise UserError("--shots is empty; give e.g. full,100,50")
    return shots


def load_trained(target: Path, device: torch.device) -> Checkpoint:
    """A run directory (its last.pt) or a checkpoint file written by `train`, as a model in eval mode."""
    path = target / LAST if target.is_dir() else target
    if target.is_dir():
        run = RunDir.open(target)
        if run.is_training():
            raise UserError(f"{target} is still training: its {LAST} holds an earlier epoch than the run will end "
                            f"with; evaluate the run when it ends, or name a checkpoint ({target / LAST} or a snapshot "
                            "epoch_NNNN.pt) to evaluate the epoch it holds")
    state = load_checkpoint(path, device)
    if not isinstance(state, dict) or not {"config", "model", "epoch"} <= state.keys():
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise UserError(f"{path} was not written by `{command_name()} train` (it holds {keys}); give a run directory "
                        "or one of its .pt files")
    config = TrainConfig.from_dict(state["config"])
    model = METHODS[config.method](config.method_settings()).build_model(config.arch, config.width, config.stem)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise UserError(f"the weights in {path} do not fit a {config.method} {config.arch} of width {config.width} "
                        "as its config says; the file was altered or mixes two runs") from None
    model.to(device, memory_format=torch.channels_last).eval()
    left_out = [entry["path"] for entry in RunDir(path.parent).left_out()]
    return Checkpoint(config, model, int(state["epoch"]), path, target if target.is_dir() else None, left_out)


def evaluate_checkpoint(checkpoint: Checkpoint, data: LongTailedData, device: torch.device, shots: list[str],
                        on_probe: Callable[[str], None] = lambda _: None) -> Evaluation:
    """The evaluation with its provenance; kept in the checkpoint's run directory, if it has one,
    with the probe settings an earlier evaluation of the same checkpoint holds."""
    config = checkpoint.config
    result = evaluate(checkpoint.model, data, device, shots, seed=config.seed, on_probe=on_probe,
                      size=config.image_size).with_provenance(
        checkpoint=str(checkpoint.path), epoch=checkpoint.epoch, method=config.label, dataset=config.dataset,
        split=config.split, device=str(device))
    if checkpoint.run is not None:
        kept = RunDir(checkpoint.run).evaluation_path(checkpoint.epoch)
        if kept.exists():
            result = result.with_earlier_shots(Evaluation.from_dict(json.loads(kept.read_text())))
        write_json(result.as_dict(), kept)
    return result


def check_one_kind(checkpoints: list[Checkpoint]) -> None:
    """Runs summarised together must differ only by their split or seed."""
    kinds = sorted({f"{c.config.label} on {c.config.dataset}" for c in checkpoints})
    if len(kinds) > 1:
        raise UserError(f"eval summarises runs of one method on one data set, got {', '.join(kinds)}; "
                        f"evaluate them apart, or compare them with `{command_name()} report`")


def evaluate_runs(targets: list[Path], shots: list[str], device: str = "auto", data_dir: Path | None = None,
                  echo: Callable[[str], None] = lambda _: None,
                  on_result: Callable[[Evaluation], None] = lambda _: None) -> Evaluated:
    """Every target (a run directory or a checkpoint) evaluated with the probes of `shots`; every
    input checked before any work. `data_dir`: where the runs' data is now, if it moved."""
    where = resolve_device(device)
    checkpoints = [load_trained(target, where) for target in targets]
    check_one_kind(checkpoints)
    if data_dir is not None:
        for checkpoint in checkpoints:
            checkpoint.config = dataclasses.replace(checkpoint.config, data_dir=str(data_dir))
    data = [checkpoint.config.load_data(checkpoint.left_out) for checkpoint in checkpoints]
    for each in data:
        check_shots(each, shots)
    results = []
    for target, checkpoint, each in zip(targets, checkpoints, data):
        echo(f"evaluating {target}")
        results.append(evaluate_checkpoint(checkpoint, each, where, shots, on_probe=lambda message: echo(f"  {message}")))
        on_result(results[-1])
    return Evaluated(results, across_runs(results) if len(results) > 1 else None)
