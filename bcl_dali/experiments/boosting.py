"""Does boosting help method X on long-tailed data? Each arm (a method, its boost and its weight
normalisation) trained with several seeds on the same data and budget, evaluated by the same probe:
mean +- std over the seeds of the probe's top-1 and Many / Medium / Few, the kNN accuracy, and
Spearman's rho of class size against the class's mean weight at every epoch (negative: the tail
weighs more, so it is augmented harder).

Sized by flags, so the same code serves a CPU run of an hour and a GPU run of the paper's length.
A run directory that already exists under the output folder is resumed, not redone.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bcl_dali.atomic import write_text_atomic
from bcl_dali.device import resolve_device
from bcl_dali.errors import UserError
from bcl_dali.eval.protocol import check_shots
from bcl_dali.eval.result import Evaluation, shot_name
from bcl_dali.evaluation import evaluate_checkpoint, load_trained
from bcl_dali.experiments.runs import train_or_resume
from bcl_dali.methods import METHODS, method_label
from bcl_dali.policy import WEIGHT_NORMS
from bcl_dali.runs.outputs import make_folder, write_json
from bcl_dali.runs.rundir import RunDir
from bcl_dali.training import new_config

NUMBERS = ("top1", "many", "medium", "few")


@dataclass(frozen=True)
class Arm:
    """One configuration the experiment compares: METHOD[:BOOST[:WEIGHT_NORM]] (the method's own boost
    where none is given: bcl-i boosts once)."""

    method: str
    boost: int
    weight_norm: str = "paper"

    @classmethod
    def parse(cls, text: str) -> Arm:
        method, *rest = text.strip().split(":")
        digits = bool(rest) and rest[0].isascii() and rest[0].isdigit()
        if method not in METHODS or len(rest) > 2 or (rest and not digits) or \
                (len(rest) == 2 and rest[1] not in WEIGHT_NORMS):
            raise UserError(f"--arms entry {text!r}: write METHOD[:BOOST[:NORM]] with a method of "
                            f"{', '.join(METHODS)}, a boost >= 0 and a norm of {', '.join(WEIGHT_NORMS)} (simclr:1:rank)")
        return cls(method, int(rest[0]) if rest else METHODS[method].boost, rest[1] if len(rest) == 2 else "paper")

    @property
    def name(self) -> str:
        """The run's name (TrainConfig.label): two arms that train the same thing have the same one."""
        return method_label(self.method, self.boost, self.weight_norm)

    def settings(self) -> dict[str, Any]:
        return {"method": self.method, "boost": self.boost, "weight_norm": self.weight_norm}


def parse_arms(text: str) -> list[Arm]:
    arms = [Arm.parse(part) for part in text.split(",") if part.strip()]
    if not arms or len({arm.name for arm in arms}) != len(arms):
        raise UserError(f"--arms {text!r}: give one or more different arms, comma-separated")
    return arms


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds {text!r}: give different integers >= 0, comma-separated (0,1,2)")
    return seeds


def run_boosting(out: Path, arms: list[Arm], seeds: list[int], settings: dict[str, Any], shot: str, device: str,
                 echo: Callable[[str], None]) -> dict[str, Any]:
    """Train (or resume) every arm with every seed in out/ARM-seedS with `settings` (train's flags),
    evaluate each with the `shot` probe, and write out/boosting.md and out/boosting.json."""
    make_folder(out)
    check_shots(new_config({**settings, "device": device}).load_data(), [shot])
    runs: dict[str, list[dict[str, Any]]] = {}
    for arm in arms:
        for seed in seeds:
            run = out / f"{arm.name}-seed{seed}"
            echo(f"--- {run.name} ---")
            overrides = {**settings, **arm.settings(), "seed": seed, "device": device}
            train_or_resume(overrides, run, echo)
            result = _kept_evaluation(run, settings["epochs"], shot)
            if result is None:
                checkpoint = load_trained(run, resolve_device(device))
                result = evaluate_checkpoint(checkpoint, checkpoint.config.load_data(checkpoint.left_out),
                                             resolve_device(device), [shot])
            runs.setdefault(arm.name, []).append(run_numbers(run, result.shots[shot], result.knn_top1))
    table = {name: summarise(numbers) for name, numbers in runs.items()}
    summary = {"settings": settings, "seeds": seeds, "shot": shot, "arms": [arm.name for arm in arms],
               "runs": runs, "table": table}
    write_json(summary, out / "boosting.json")
    write_text_atomic(out / "boosting.md", boosting_markdown(summary) + "\n")
    return summary


def _kept_evaluation(run: Path, epoch: int, shot: str) -> Evaluation | None:
    """The run's evaluation of its last epoch with the `shot` probe, where an earlier invocation made it."""
    kept = RunDir(run).evaluation_path(epoch)
    if not kept.exists():
        return None
    earlier = Evaluation.from_dict(json.loads(kept.read_text()))
    return earlier if shot in earlier.shots else None


def run_numbers(run: Path, probe: Any, knn_top1: float) -> dict[str, Any]:
    """One run's numbers: the probe's, the final kNN, and rho of every epoch that had weights."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rho = {str(r["epoch"]): r["size_weight_spearman"] for r in records
           if "loss" in r and r.get("size_weight_spearman") is not None}
    return {"run": str(run), **{number: getattr(probe, number) for number in NUMBERS}, "knn_top1": knn_top1, "rho": rho}


def summarise(numbers: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std (over seeds, n - 1 in the denominator) of every number, and of rho per epoch."""
    keys = (*NUMBERS, "knn_top1")
    table = {key: _mean_std([n[key] for n in numbers]) for key in keys}
    epochs = sorted({epoch for n in numbers for epoch in n["rho"]}, key=int)
    table["rho"] = {epoch: _mean_std([n["rho"].get(epoch) for n in numbers]) for epoch in epochs}
    return table


def _mean_std(values: list[float | None]) -> list[float | None]:
    known = [value for value in values if value is not None]
    if not known:
        return [None, None]
    return [statistics.fmean(known), statistics.stdev(known) if len(known) > 1 else 0.0]


def _cell(pair: list[float | None], spec: str = ".2f") -> str:
    mean, std = pair
    return "n/a" if mean is None else f"{mean:{spec}} +- {std:{spec.lstrip('+')}}"


def boosting_markdown(summary: dict[str, Any]) -> str:
    settings, table = summary["settings"], summary["table"]
    flags = ", ".join(f"{key} {value}" for key, value in settings.items())
    seeds = ", ".join(map(str, summary["seeds"]))
    lines = [f"# Boosting by method ({flags}; seeds {seeds})", "",
             f"Mean +- std over the seeds. Top-1 (%) of the {shot_name(summary['shot'])} linear probe and its Many / "
             "Medium / Few by training-class size; kNN top-1 (%); rho: Spearman's rho of class size against the "
             "class's mean weight (negative: the tail weighs more).", "",
             "| arm | probe top-1 | many | medium | few | kNN top-1 |", "|---|---|---|---|---|---|"]
    for name in summary["arms"]:
        row = table[name]
        lines.append(f"| {name} | " + " | ".join(_cell(row[key]) for key in (*NUMBERS, "knn_top1")) + " |")
    epochs = sorted({epoch for row in table.values() for epoch in row["rho"]}, key=int)
    weighted = [name for name in summary["arms"] if table[name]["rho"]]
    if epochs and weighted:
        lines += ["", "rho by epoch:", "", "| epoch | " + " | ".join(weighted) + " |",
                  "|---|" + "---|" * len(weighted)]
        for epoch in epochs:
            lines.append(f"| {epoch} | " + " | ".join(_cell(table[name]["rho"].get(epoch, [None, None]), "+.3f")
                                                      for name in weighted) + " |")
    return "\n".join(lines)
