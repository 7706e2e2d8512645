"""Evaluation results for people: the reference README's table with top-5 and group columns, and
the papers' mean ± std over several runs."""
from __future__ import annotations

from bcl_dali.eval.protocol import ACROSS_RUNS
from bcl_dali.eval.result import Evaluation, shot_name
from bcl_dali.split.groups import FEW_BELOW, MANY_ABOVE


def results_table(result: Evaluation) -> str:
    """One row per shot setting (top-1, top-5, Many / Medium / Few, their std), then the kNN line."""
    head = f"{result.method} at epoch {result.epoch} on {result.dataset} ({result.checkpoint})"
    lines = [head, f"{'shot':<10}{'top-1':>16}{'top-5':>8}{'Many':>8}{'Medium':>8}{'Few':>8}{'group std':>11}"]
    for shot, row in result.shots.items():
        top1 = f"{row.top1:.2f}" + (f" ± {row.top1_std_over_subsets:.2f}" if row.subsets > 1 and row.top1_std_over_subsets is not None
                                     else "")
        lines.append(f"{shot_name(shot):<10}{top1:>16}{_cell(row.top5, 8)}{_cell(row.many, 8)}"
                     f"{_cell(row.medium, 8)}{_cell(row.few, 8)}{_cell(row.group_std, 11)}")
    lines.append(f"kNN top-1 (k = {result.settings['knn']['k']}, probe pool as bank): {result.knn_top1:.2f}")
    sizes = {name: len(ids) for name, ids in result.groups.items()}
    rule = (f"Many > {MANY_ABOVE}, Medium {FEW_BELOW}-{MANY_ABOVE}, Few < {FEW_BELOW} training images"
            if result.grouping == "counts" else "the classes in thirds by training images")
    lines.append(f"groups: {rule} ({sizes['many']} / {sizes['medium']} / {sizes['few']} classes)")
    lines.append(f"accuracies in %; chance {100 / result.num_classes:.2f}; ± is the std over this model's "
                 "few-shot probe subsets, not the papers' std over pretraining splits (give eval several runs "
                 "for that); group std is the std of Many / Medium / Few (lower is more balanced)")
    return "\n".join(lines)


def across_runs_table(summary: dict, runs: int) -> str:
    """The papers' form: mean ± std over the runs (one per pretraining split) of each number."""
    lines = [f"mean ± std over {runs} runs", f"{'shot':<10}" + "".join(f"{_column(key):>16}" for key in ACROSS_RUNS)]
    for shot, row in summary.items():
        if shot == "knn":
            continue
        lines.append(f"{shot_name(shot):<10}" + "".join(_mean_std_cell(row[key]) for key in ACROSS_RUNS))
    knn = summary["knn"]["top1"]
    lines.append(f"kNN top-1: {knn['mean']:.2f} ± {knn['std']:.2f}; std is the population std over the runs")
    return "\n".join(lines)


def _cell(value: float | None, width: int) -> str:
    """A number of the table; n/a where a group has no classes."""
    return f"{'n/a' if value is None else format(value, '.2f'):>{width}}"


def _mean_std_cell(numbers: dict) -> str:
    if numbers["mean"] is None:
        return f"{'n/a':>16}"
    return f"{numbers['mean']:>9.2f} ± {numbers['std']:<4.2f}"


def _column(key: str) -> str:
    return {"top1": "top-1", "top5": "top-5", "group_std": "group std"}.get(key, key.capitalize())
