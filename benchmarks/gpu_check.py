"""Every benchmark at the sizes a lent H100 finishes in a few minutes, or at tiny sizes on the CPU.

Writes OUT/results.json after each item (a run cut short keeps what it measured) and returns it.
`--smoke` runs the same code on the CPU at tiny sizes; CI runs it so the GPU script cannot rot.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from benchmarks.pipeline import measure_pipeline
from benchmarks.step import measure_step
from benchmarks.train import compare, measure_training
from bcl_dali.device import cpu_count
from bcl_dali.run_training import start_run
from bcl_dali.rundir import RunDir

METHODS = ("simclr", "bcl-i", "sdclr", "bcl-d")


@dataclass(frozen=True)
class Sizes:
    device: str
    num_classes: int
    batch_size: int
    width: int
    pipeline_iters: int
    reference_iters: int
    step_iters: int
    epochs: int
    run_epochs: int
    compile: bool


FULL = Sizes(device="cuda", num_classes=100, batch_size=512, width=64, pipeline_iters=100, reference_iters=20,
             step_iters=50, epochs=3, run_epochs=15, compile=True)
SMOKE = Sizes(device="cpu", num_classes=3, batch_size=32, width=16, pipeline_iters=2, reference_iters=2,
              step_iters=2, epochs=2, run_epochs=2, compile=False)


def run_checks(out: Path, sizes: Sizes, log: Callable[[str], None] = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(sizes.device)
    cores = cpu_count()
    results: dict = {"sizes": vars(sizes), "cores": cores, "torch": torch.__version__,
                     "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                     "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    b, w, c = sizes.batch_size, sizes.width, sizes.num_classes
    items: list[tuple[str, Callable[[], object]]] = [
        ("pipeline_dali", lambda: measure_pipeline("dali", device, b, sizes.pipeline_iters, cores, num_classes=c)),
    ]
    items += [(f"step_{m}", lambda m=m: measure_step(m, device, b, sizes.step_iters, w, num_classes=c)) for m in METHODS]
    items.append(("train_bcl-i_vs_reference", lambda: compare("bcl-i", device, sizes.epochs, b, w, num_classes=c)))
    items += [(f"train_{m}", lambda m=m: measure_training(m, device, sizes.epochs, b, w, num_classes=c))
              for m in ("simclr", "sdclr", "bcl-d")]
    items.append(("bcl-i_training_run", lambda: _training_run(sizes)))
    items.append(("pipeline_reference", lambda: measure_pipeline("reference", device, b, sizes.reference_iters, cores,
                                                                 num_classes=c)))
    if sizes.compile:  # last: compilation takes the longest and is the least certain
        items.append(("step_bcl-i_compiled", lambda: measure_step("bcl-i", device, b, sizes.step_iters, w, True, c)))
    for name, measure in items:
        start = time.perf_counter()
        try:
            results[name] = measure()
            log(f"{name}: {_headline(results[name])} ({time.perf_counter() - start:.0f} s)")
        except Exception as error:  # one failing item must not cost the lease the other numbers
            results[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
            log(f"{name}: FAILED {type(error).__name__}: {error}")
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _training_run(sizes: Sizes) -> dict:
    """A short BCL-I run through `train` itself: checkpoints, kNN, summary."""
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        summary = start_run({"method": "bcl-i", "dataset": "synthetic-lt", "num_classes": sizes.num_classes,
                             "width": sizes.width, "batch_size": sizes.batch_size, "epochs": sizes.run_epochs,
                             "warmup_epochs": 1, "device": sizes.device, "eval_every": max(1, sizes.run_epochs // 3)},
                            run, None, echo=lambda line: None)
        return {"summary": summary, "metrics": RunDir(run).read_metrics()}


def _headline(result) -> str:
    if isinstance(result, dict) and "speedup" in result:
        return (f"ours {result['ours']['samples_per_second']:,.0f} vs reference "
                f"{result['reference']['samples_per_second']:,.0f} samples/s, {result['speedup']:.2f}x")
    if isinstance(result, dict) and "samples_per_second" in result:
        return f"{result['samples_per_second']:,.0f} samples/s"
    return f"kNN top-1 {result['summary']['knn_top1']:.2f}%, {result['summary']['samples_per_second']:,.0f} samples/s"


def main() -> None:
    out = Path(sys.argv[1])
    sizes = SMOKE if "--smoke" in sys.argv[2:] else FULL
    lines = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)
        (out / "check.log").write_text("\n".join(lines) + "\n")

    out.mkdir(parents=True, exist_ok=True)
    run_checks(out, sizes, log)


if __name__ == "__main__":
    main()
