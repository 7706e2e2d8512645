"""`cli.py report`: what a researcher would otherwise plot by hand, from run directories alone.

One run or several (e.g. SimCLR against BCL-I): loss and kNN curves overlaid, Spearman's rho of
class size against mean weight per epoch, a weight-histogram heat map and a weight-against-class-
size scatter per run, Many / Medium / Few bars and evaluation tables side by side for the runs that
`cli.py eval` has evaluated. Written as PNGs and one report.md that shows them with the settings.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bcl_dali.report import plots
from bcl_dali.atomic import write_text_atomic
from bcl_dali.config import TrainConfig
from bcl_dali.errors import UserError
from bcl_dali.eval.result import FULL, Evaluation, shot_name
from bcl_dali.runs.outputs import make_folder
from bcl_dali.runs.rundir import RunDir
from bcl_dali.split import class_groups

SETTINGS = ("method", "dataset", "split", "imbalance", "epochs", "batch_size", "width", "arch", "lr", "temperature",
            "beta", "weight_norm", "boost", "seed", "data_seed", "executor", "precision")


@dataclass
class Run:
    name: str
    config: dict[str, Any]
    records: list[dict[str, Any]]
    class_counts: list[int] | None
    evaluation: Evaluation | None
    grouping: str = "thirds"


def load_run(path: Path) -> Run:
    run = RunDir.open(path)
    evaluation = run.latest_evaluation()
    counts, grouping = run.classes()
    return Run(path.resolve().name, json.loads(run.config_path.read_text()), run.read_metrics(), counts,
               None if evaluation is None else Evaluation.from_dict(evaluation), grouping)


def write_report(paths: list[Path], out: Path) -> Path:
    """Draw every figure that the runs' records allow, and report.md beside them; returns its path."""
    plots.require_matplotlib()
    runs = [load_run(p) for p in paths]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        raise UserError(f"two runs share the folder name {max(names, key=names.count)!r}; the report tells runs "
                        "apart by it, so rename or move one")
    make_folder(out)
    by_name = {r.name: r.records for r in runs}
    colours = plots.run_colours(names)
    figures: list[tuple[str, Path | None]] = [
        ("Contrastive loss", plots.curves(by_name, "loss", "loss", out / "loss.png", colours)),
        ("kNN top-1 during training", plots.curves(by_name, "knn_top1", "kNN top-1 (%)", out / "knn.png", colours)),
        ("Is BCL finding the tail? Spearman's rho of class size against the class's mean weight (negative: the "
         "smaller the class, the higher its weight)",
         plots.curves(by_name, "size_weight_spearman", "Spearman rho (size, weight)", out / "spearman.png", colours)),
    ]
    for run in runs:
        figures.append((f"{run.name}: weights over the epochs",
                        plots.weight_heatmap(run.name, run.records, out / f"{run.name}-weights.png")))
        if run.class_counts is not None:
            groups = {name: ids.tolist() for name, ids in class_groups(run.class_counts, run.grouping).items()}
            figures.append((f"{run.name}: mean weight against class size", plots.weight_against_class_size(
                run.name, run.records, run.class_counts, groups, out / f"{run.name}-weight-by-size.png")))
    evaluated = {r.name: r.evaluation for r in runs if r.evaluation is not None}
    shot = _common_shot(evaluated)
    if shot is not None:
        figures.append(("Many / Medium / Few", plots.group_bars(evaluated, shot, out / "groups.png", colours)))
    report = out / "report.md"
    write_text_atomic(report, _markdown(runs, figures, evaluated, out))
    return report


def _common_shot(evaluated: dict[str, Evaluation]) -> str | None:
    shared = set.intersection(*(set(e.shots) for e in evaluated.values())) if evaluated else set()
    return FULL if FULL in shared else min(shared, default=None, key=lambda s: int(s))


def _label(config: dict[str, Any]) -> str:
    """The run's name for what it trained (bcl-i for simclr boosted once), as `train` printed it."""
    try:
        return TrainConfig.from_dict(config).label
    except (UserError, TypeError, KeyError):
        return str(config.get("method"))


def _markdown(runs: list[Run], figures: list[tuple[str, Path | None]], evaluated: dict[str, Evaluation],
              out: Path) -> str:
    lines = [f"# Report: {', '.join(r.name for r in runs)}", "", "## Settings", "",
             "| setting | " + " | ".join(r.name for r in runs) + " |", "|---|" + "---|" * len(runs)]
    lines.append("| trained as | " + " | ".join(_label(r.config) for r in runs) + " |")
    for key in SETTINGS:
        lines.append(f"| {key} | " + " | ".join(_cell(r.config.get(key)) for r in runs) + " |")
    lines.append("| epochs trained | " + " | ".join(str(max((x["epoch"] for x in r.records if "loss" in x),
                                                           default=0)) for r in runs) + " |")
    lines += ["", "## Memorisation at the last epoch", "",
              "Mean BCL weight of the samples of each class group (by training-class size), and Spearman's "
              "rho of class size against class mean weight. Labels are used for this diagnosis only.", "",
              "| run | epoch | Many | Medium | Few | rho |", "|---|---|---|---|---|---|"]
    weighted = [(run, next((r for r in reversed(run.records) if r.get("weight_by_group")), None)) for run in runs]
    if not any(last for _, last in weighted):
        lines[-2:] = ["No weights to show yet: they exist from the second epoch on, made from the first's losses."]
    for run, last in weighted:
        if last is not None:
            group = last["weight_by_group"]
            lines.append(f"| {run.name} | {last['epoch']} | " + " | ".join(
                _cell(group[g], ".3f") for g in ("many", "medium", "few"))
                + f" | {_cell(last.get('size_weight_spearman'), '+.3f')} |")
    if evaluated:
        lines += ["", "## Evaluation", "", "Top-1 (%) of the linear probes, by class group; kNN on the test set.",
                  "", "| probe | " + " | ".join(evaluated) + " |", "|---|" + "---|" * len(evaluated)]
        trained = {r.name: max((x["epoch"] for x in r.records if "loss" in x), default=0) for r in runs}
        lines.append("| evaluated at epoch | " + " | ".join(
            f"{e.epoch}" + ("" if e.epoch == trained[name] else f" (of {trained[name]} trained)")
            for name, e in evaluated.items()) + " |")
        shots = sorted({s for e in evaluated.values() for s in e.shots}, key=lambda s: (s != FULL, -int(s) if
                                                                                          s.isdigit() else 0))
        for s in shots:
            for key in ("top1", "top5", "many", "medium", "few"):
                cells = [_cell(getattr(e.shots[s], key) if s in e.shots else None, ".2f") for e in evaluated.values()]
                lines.append(f"| {shot_name(s)} {key} | " + " | ".join(cells) + " |")
        lines.append("| kNN top-1 | " + " | ".join(f"{e.knn_top1:.2f}" for e in evaluated.values()) + " |")
    for title, path in figures:
        if path is not None:
            lines += ["", f"## {title}", "", f"![{title}]({path.relative_to(out)})"]
    return "\n".join(lines) + "\n"


def _cell(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)
