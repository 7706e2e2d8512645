"""Figures of runs and evaluations, drawn by matplotlib (the optional `plot` extra).

Each function takes plain records (metrics.jsonl lines, evaluation results) and writes one PNG
atomically, so a report can be redrawn from a run directory at any time.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bcl_dali.atomic import atomic_path
from bcl_dali.errors import UserError
from bcl_dali.eval.result import Evaluation, shot_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GROUPS = ("many", "medium", "few")
GROUP_COLOURS = {"many": "tab:blue", "medium": "tab:orange", "few": "tab:red"}


def require_matplotlib() -> type[Figure]:
    """matplotlib's figure class (no pyplot, no display); a one-line error names the extra when it
    is missing. Commands call this before their work, so a missing extra costs nothing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("figures need matplotlib; install it with pip install -e '.[plot]' "
                        "(or pip install matplotlib)") from None
    return Figure


def new_figure(width: float = 6.4, height: float = 4.0) -> Figure:
    return require_matplotlib()(figsize=(width, height), layout="constrained")


def save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=110, format="png")
    return path


def run_colours(names: list[str]) -> dict[str, str]:
    """One colour per run, the same in every figure of a report."""
    return {name: f"C{i % 10}" for i, name in enumerate(names)}


def whole_epochs(axes: Any) -> None:
    """Epoch ticks at whole epochs only (matplotlib would put some at 1.5, 2.25 ...)."""
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def curves(runs: dict[str, list[dict[str, Any]]], key: str, label: str, path: Path,
           colours: dict[str, str] | None = None) -> Path | None:
    """`key` against the epoch, a line per run (a run with one such record, a point), from the records
    that hold it; None if none does."""
    colours = colours or run_colours(list(runs))
    figure = new_figure()
    axes = figure.subplots()
    drawn = False
    for name, records in runs.items():
        points = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
        if points:
            epochs, values = zip(*points)
            axes.plot(epochs, values, marker="o" if len(points) < 20 else None,
                      linestyle="none" if len(points) == 1 else "-", color=colours[name], label=name)
            drawn = True
    if not drawn:
        return None
    whole_epochs(axes)
    axes.set(xlabel="epoch", ylabel=label)
    axes.grid(alpha=0.3)
    axes.legend()
    return save(figure, path)


def weight_heatmap(name: str, records: list[dict[str, Any]], path: Path) -> Path | None:
    """The weight histogram of every epoch: which share of the samples had which weight."""
    rows = [(r["epoch"], r["weight_histogram"]) for r in records if r.get("weight_histogram")]
    if not rows:
        return None
    epochs = [e for e, _ in rows]
    counts = np.array([h for _, h in rows], dtype=np.float64)
    shares = counts / counts.sum(axis=1, keepdims=True)
    spread = [row for row in shares if (row > 0).sum() > 1]  # not the first epoch's all-zero weights
    figure = new_figure()
    axes = figure.subplots()
    image = axes.imshow(shares.T, origin="lower", aspect="auto", cmap="viridis", vmin=0.0,
                        vmax=float(np.max(spread)) if spread else 1.0,
                        extent=(epochs[0] - 0.5, epochs[-1] + 0.5, 0.0, 1.0))
    figure.colorbar(image, ax=axes, label="share of the samples")
    whole_epochs(axes)
    axes.set(xlabel="epoch (weights that augmented it)", ylabel="BCL weight", title=f"{name}: weight histogram")
    return save(figure, path)


def weight_against_class_size(name: str, records: list[dict[str, Any]], class_counts: list[int],
                              groups: dict[str, list[int]], path: Path) -> Path | None:
    """Each class's mean weight in the last epoch against its training size (log x), by group."""
    last = next((r for r in reversed(records) if r.get("class_weight_mean")), None)
    if last is None:
        return None
    figure = new_figure()
    axes = figure.subplots()
    for group in GROUPS:
        ids = [c for c in groups[group] if last["class_weight_mean"][c] is not None]
        axes.scatter([class_counts[c] for c in ids], [last["class_weight_mean"][c] for c in ids],
                     color=GROUP_COLOURS[group], label=group, s=18)
    rho = last.get("size_weight_spearman")
    title = f"{name}, epoch {last['epoch']}" + ("" if rho is None else f": Spearman rho {rho:+.2f}")
    axes.set(xscale="log", xlabel="training images of the class", ylabel="mean BCL weight", title=title)
    axes.grid(alpha=0.3)
    axes.legend()
    return save(figure, path)


def group_bars(evaluations: dict[str, Evaluation], shot: str, path: Path, colours: dict[str, str] | None = None) -> Path:
    """Many / Medium / Few accuracy of one probe setting, a bar group per run."""
    colours = colours or run_colours(list(evaluations))
    figure = new_figure()
    axes = figure.subplots()
    positions = np.arange(len(GROUPS))
    width = 0.8 / len(evaluations)
    for i, (name, result) in enumerate(evaluations.items()):
        row = result.shots[shot]
        bars = axes.bar(positions + (i - (len(evaluations) - 1) / 2) * width, [row.group(g) for g in GROUPS], width,
                        color=colours[name], label=name)
        axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(positions, [g.capitalize() for g in GROUPS])
    axes.set(ylabel="top-1 (%)", title=f"{shot_name(shot)} linear probe")
    axes.legend()
    return save(figure, path)


def per_class_figure(result: Evaluation, shot: str, path: Path) -> Path:
    """Per-class accuracy of one probe setting against the class's training images (log x)."""
    counts = result.train_class_counts
    accuracy = result.shots[shot].per_class
    figure = new_figure()
    axes = figure.subplots()
    for group in GROUPS:
        ids = [c for c in result.groups[group] if accuracy[c] is not None]
        axes.scatter([counts[c] for c in ids], [accuracy[c] for c in ids], color=GROUP_COLOURS[group], s=18,
                     label=f"{group} {result.shots[shot].group(group):.1f}%")
    name = shot_name(shot)
    axes.set(xscale="log", ylim=(-2, 102), xlabel="training images of the class", ylabel="top-1 (%)",
             title=f"{result.method}: per-class accuracy of the {name} probe")
    axes.grid(alpha=0.3)
    axes.legend()
    return save(figure, path)
