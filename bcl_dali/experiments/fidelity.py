"""Does boosting help the tail? SimCLR against BCL-I and SDCLR against BCL-D, trained with the same
seed, data and epochs, evaluated by the same probes: one table of Many / Medium / Few and the
differences BCL makes, plus the runs' joint report.

Sized by flags, so the same code serves a CPU demo of minutes and a GPU run of the paper's length.
A run directory that already exists under the output folder is resumed, not redone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bcl_dali.atomic import write_text_atomic
from bcl_dali.device import resolve_device
from bcl_dali.errors import UserError
from bcl_dali.report import plots
from bcl_dali.eval.protocol import check_shots
from bcl_dali.eval.result import Evaluation, shot_name
from bcl_dali.evaluation import evaluate_checkpoint, load_trained
from bcl_dali.runs.outputs import make_folder, write_json
from bcl_dali.report.pages import write_report
from bcl_dali.experiments.runs import train_or_resume
from bcl_dali.training import new_config

PAIRS = {"simclr": ("simclr", "bcl-i"), "sdclr": ("sdclr", "bcl-d")}
"""Each baseline and the BCL method built on it."""
NUMBERS = ("top1", "many", "medium", "few")


def parse_pairs(text: str) -> list[str]:
    """--pairs' comma-separated baselines."""
    pairs = [part.strip() for part in text.split(",") if part.strip()]
    if not pairs or set(pairs) - set(PAIRS):
        raise UserError(f"--pairs {text!r}: choose from {', '.join(PAIRS)}, comma-separated")
    return pairs


def run_fidelity(out: Path, pairs: list[str], settings: dict[str, Any], shots: list[str], device: str,
                 echo: Callable[[str], None]) -> dict[str, Any]:
    """Train (or resume) each method of `pairs` in out/METHOD with `settings` (train's flags), evaluate,
    and write out/fidelity.md, out/fidelity.json and out/report/."""
    plots.require_matplotlib()
    make_folder(out)
    check_shots(new_config({**settings, "device": device}).load_data(), shots)
    evaluations: dict[str, Evaluation] = {}
    methods = [method for pair in pairs for method in PAIRS[pair]]
    for method in methods:
        run = out / method
        overrides = {**settings, "method": method, "device": device}
        echo(f"--- {method} ---")
        train_or_resume(overrides, run, echo)
        checkpoint = load_trained(run, resolve_device(device))
        evaluations[method] = evaluate_checkpoint(checkpoint, checkpoint.config.load_data(checkpoint.left_out),
                                                  resolve_device(device),
                                                  shots, on_probe=lambda message: echo(f"  {method}: {message}"))
    table = fidelity_table(evaluations, pairs, shots)
    write_text_atomic(out / "fidelity.md", fidelity_markdown(table, settings) + "\n")
    summary = {"settings": settings, "shots": shots, "table": table, "report": str(out / "report" / "report.md")}
    write_json(summary, out / "fidelity.json")
    write_report([out / method for method in methods], out / "report")
    return summary


def fidelity_table(evaluations: dict[str, Evaluation], pairs: list[str], shots: list[str]) -> list[dict]:
    """One row per pair, probe and number: the baseline's, BCL's, and BCL minus the baseline."""
    rows = []
    for pair in pairs:
        baseline, boosted = PAIRS[pair]
        for shot in shots:
            for number in NUMBERS:
                base = getattr(evaluations[baseline].shots[shot], number)
                bcl = getattr(evaluations[boosted].shots[shot], number)
                rows.append({"baseline": baseline, "bcl": boosted, "probe": shot, "number": number,
                             "epochs": [evaluations[baseline].epoch, evaluations[boosted].epoch],
                             "baseline_value": base, "bcl_value": bcl,
                             "difference": None if None in (base, bcl) else bcl - base})
    return rows


def _cell(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def fidelity_markdown(table: list[dict], settings: dict[str, Any]) -> str:
    flags = ", ".join(f"{key} {value}" for key, value in settings.items())
    lines = [f"# BCL against its baseline ({flags})", "",
             "Top-1 (%) of the linear probe; Many / Medium / Few by training-class size.", "",
             "| pair | epochs | probe | number | baseline | BCL | BCL - baseline |", "|---|---|---|---|---|---|---|"]
    for row in table:
        epochs = " / ".join(map(str, row["epochs"]))
        lines.append(f"| {row['baseline']} / {row['bcl']} | {epochs} | {shot_name(row['probe'])} | {row['number']} | "
                     f"{_cell(row['baseline_value'])} | {_cell(row['bcl_value'])} | {_cell(row['difference'], '+.2f')} |")
    return "\n".join(lines)

