"""The report's figures read at a glance: epochs in whole numbers, a lone point drawn as a point, a run
in the same colour in every figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bcl_dali.report import pages, plots
from tests.bcl_dali.report.test_pages import _make_run

pytest.importorskip("matplotlib")


@pytest.fixture
def drawn(monkeypatch) -> dict[str, object]:
    """Every figure a report draws, by file name, instead of its PNG."""
    figures: dict[str, object] = {}
    monkeypatch.setattr(plots, "save", lambda figure, path: figures.setdefault(Path(path).name, figure) and path)
    return figures


def _ticks(axes) -> np.ndarray:
    low, high = axes.get_xlim()
    return np.array([t for t in axes.get_xticks() if low <= t <= high])


def test_epoch_axes_tick_whole_epochs_and_a_run_keeps_its_colour(tmp_path, drawn):
    """Mutations caught: the integer locator dropped (ticks at 1.5, 2.5); curves coloured by their
    order in each figure (the second run's colour changes where the first has no point)."""
    first = _make_run(tmp_path / "first", "bcl-i", epochs=4, evaluated=True)
    second = _make_run(tmp_path / "second", "simclr", epochs=4, evaluated=True, seed=1)
    pages.write_report([first, second], tmp_path / "report")
    for name in ("loss.png", "knn.png", "first-weights.png", "second-weights.png"):
        ticks = _ticks(drawn[name].axes[0])
        assert len(ticks) and np.array_equal(ticks, np.round(ticks)), (name, ticks)
    colours = plots.run_colours(["first", "second"])
    loss_lines = {line.get_label(): line.get_color() for line in drawn["loss.png"].axes[0].get_lines()}
    assert loss_lines == colours
    bars = drawn["groups.png"].axes[0].containers
    import matplotlib.colors as mcolors
    assert [mcolors.to_hex(container.patches[0].get_facecolor()) for container in bars] == \
        [mcolors.to_hex(colours[name]) for name in ("first", "second")]
    only_second = plots.curves({"first": [{"epoch": 1}], "second": [{"epoch": 1, "x": 1.0}, {"epoch": 2, "x": 2.0}]},
                               "x", "x", tmp_path / "x.png", colours)
    assert only_second is not None
    assert drawn["x.png"].axes[0].get_lines()[0].get_color() == colours["second"]


def test_a_lone_point_is_a_point_not_a_curve(tmp_path, drawn):
    plots.curves({"run": [{"epoch": 3, "knn_top1": 40.0}]}, "knn_top1", "kNN", tmp_path / "knn.png")
    (line,) = drawn["knn.png"].axes[0].get_lines()
    assert line.get_linestyle() == "None" and line.get_marker() == "o"
