"""Every benchmark at sizes a lent H200 finishes in a few minutes, or at tiny sizes on the CPU.

Writes OUT/results.json after each item (a run cut short keeps what it measured), OUT/profile.txt
(torch's profile of DALI iterations: every kernel of the fused stages, with its GPU time) and,
in OUT/check.log, each figure beside its target. `--smoke` runs the same code on the CPU at tiny
sizes; CI runs it so the GPU script cannot rot.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from benchmarks.fidelity import PAIRS, run_fidelity
from benchmarks.pipeline import generated_folder, measure_pipeline
from benchmarks.profile import iteration_profile
from benchmarks.step import measure_step
from benchmarks.train import compare, measure_scaling, measure_training
from bcl_dali.device import cpu_count
from bcl_dali.methods import METHODS
from bcl_dali.run_training import start_run
from bcl_dali.rundir import RunDir

TARGETS = (
    ("pipeline_dali_k1", "samples_per_second", 100_000),
    ("pipeline_dali_k2", "samples_per_second", 100_000),
    ("train_bcl-i_vs_reference", "ours.samples_per_second", 25_000),
    ("train_sdclr", "samples_per_second", 12_500),
    ("train_bcl-d", "samples_per_second", 12_500),
    ("train_bcl-i_vs_reference", "speedup_over_pil_executor", 1.0),
    ("train_bcl-i_vs_reference", "speedup", 6.0),
    ("train_bcl-i_torchrun_world_1", "of_single_process", 0.97),
    ("pipeline_folder_dali_k2", "samples_per_second", 5_000),
    ("train_bcl-d_imagenet_lt_folder", "of_step", 0.95),
)
"""(item, figure, the least it should be): the speed the project promises on one GPU."""


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
    fidelity_epochs: int
    sweep: tuple[int, ...]
    folder_files: int
    folder_batch_size: int
    folder_image_size: int
    folder_width: int


FULL = Sizes(device="cuda", num_classes=100, batch_size=512, width=64, pipeline_iters=100, reference_iters=20,
             step_iters=50, epochs=3, run_epochs=15, fidelity_epochs=50, sweep=(1, 2, 4, 8), folder_files=2048,
             folder_batch_size=256, folder_image_size=224, folder_width=64)
SMOKE = Sizes(device="cpu", num_classes=3, batch_size=32, width=16, pipeline_iters=2, reference_iters=2,
              step_iters=2, epochs=2, run_epochs=2, fidelity_epochs=1, sweep=(1, 2), folder_files=32,
              folder_batch_size=8, folder_image_size=32, folder_width=16)


def run_checks(out: Path, sizes: Sizes, log: Callable[[str], None] = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(sizes.device)
    cores = cpu_count()
    results: dict = {"sizes": vars(sizes), "cores": cores, "torch": torch.__version__,
                     "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                     "nsys": shutil.which("nsys"), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    b, w, c = sizes.batch_size, sizes.width, sizes.num_classes
    items: list[tuple[str, Callable[[], object]]] = [
        (f"pipeline_dali_k{k}", lambda k=k: measure_pipeline("dali", device, b, sizes.pipeline_iters, cores, k,
                                                             num_classes=c, profile=True))
        for k in (1, 2)]
    items.append(("profile_k2", lambda: iteration_profile(device, b, 2, out / "profile.txt", num_classes=c)))
    scratch = Path(tempfile.mkdtemp(prefix="bcl-dali-jpegs-"))
    items += _folder_items(results, device, sizes, scratch, cores)
    items += [(f"step_{m}", lambda m=m: measure_step(m, device, b, sizes.step_iters, w, num_classes=c)) for m in METHODS]
    items.append(("train_bcl-i_vs_reference", lambda: compare("bcl-i", device, sizes.epochs, b, w, num_classes=c)))
    items += [(f"train_{m}", lambda m=m: measure_training(m, device, sizes.epochs, b, w, num_classes=c))
              for m in ("simclr", "sdclr", "bcl-d")]
    items.append(("train_bcl-i_torchrun_world_1", lambda: _world_of_one(results, device, sizes)))
    items += [(f"pipeline_dali_k2_{n}_batches_per_iteration",
               lambda n=n: measure_pipeline("dali", device, b, sizes.pipeline_iters, cores, 2, num_classes=c,
                                            batches_together=n))
              for n in sizes.sweep]
    items.append(("bcl-i_training_run", lambda: _training_run(sizes)))
    items.append(("fidelity", lambda: _fidelity(sizes, out)))
    items.append(("pipeline_reference", lambda: measure_pipeline("reference", device, b, sizes.reference_iters, cores,
                                                                 num_classes=c)))
    for name, measure in items:
        start = time.perf_counter()
        try:
            results[name] = measure()
            log(f"{name}: {_headline(results[name])} ({time.perf_counter() - start:.0f} s)")
        except Exception as error:  # one failing item must not cost the lease the other numbers
            results[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
            log(f"{name}: FAILED {type(error).__name__}: {error}")
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    for line in verdicts(results):
        log(line)
    return results


def verdicts(results: dict) -> list[str]:
    """Each target beside the figure measured for it."""
    lines = []
    for item, figure, least in TARGETS:
        value = results.get(item, {})
        for key in figure.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            lines.append(f"target {item} {figure} >= {least:,}: not measured")
        else:
            lines.append(f"target {item} {figure} >= {least:,}: {value:,.2f} {'met' if value >= least else 'MISSED'}")
    return lines


def _folder_items(results: dict, device: torch.device, sizes: Sizes, scratch: Path,
                  cores: int) -> list[tuple[str, Callable[[], object]]]:
    """Issue J's figures: decode + augmentation of ImageNet-sized JPEGs to 224-pixel views, the recipe's
    ResNet-50 step, and its training end to end on the files against the step alone."""
    b, size, w = sizes.folder_batch_size, sizes.folder_image_size, sizes.folder_width
    files: list = []

    def folder():
        if not files:
            files.append(generated_folder(scratch, sizes.folder_files))
        return files[0]

    def end_to_end() -> dict:
        folder()
        train = measure_training("bcl-d", device, sizes.epochs, b, w, folder=scratch, image_size=size)
        step = results["step_bcl-d_imagenet_lt"]["samples_per_second"]
        return train | {"step_samples_per_second": step, "of_step": train["samples_per_second"] / step}

    return [("pipeline_folder_dali_k2", lambda: measure_pipeline("dali", device, b, sizes.pipeline_iters, cores, 2,
                                                                 folder=folder(), image_size=size)),
            ("step_bcl-d_imagenet_lt", lambda: measure_step("bcl-d", device, b, sizes.step_iters, w,
                                                             recipe="imagenet-lt", size=size)),
            ("train_bcl-d_imagenet_lt_folder", end_to_end)]


def _world_of_one(results: dict, device: torch.device, sizes: Sizes) -> dict:
    """BCL-I launched by torchrun with one process, against the same run without torchrun."""
    run = measure_scaling("bcl-i", device, sizes.epochs, sizes.batch_size, sizes.width, 1, sizes.num_classes)["runs"][0]
    single = results["train_bcl-i_vs_reference"]["ours"]["samples_per_second"]
    return run | {"single_process_samples_per_second": single, "of_single_process": run["samples_per_second"] / single}


def _training_run(sizes: Sizes) -> dict:
    """A short BCL-I run through `train` itself: checkpoints, kNN, summary."""
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        summary = start_run({"method": "bcl-i", "dataset": "synthetic-lt", "num_classes": sizes.num_classes,
                             "width": sizes.width, "batch_size": sizes.batch_size, "epochs": sizes.run_epochs,
                             "warmup_epochs": 1, "device": sizes.device, "eval_every": max(1, sizes.run_epochs // 3)},
                            run, None, echo=lambda line: None)
        return {"summary": summary, "metrics": RunDir(run).read_metrics()}


def _fidelity(sizes: Sizes, out: Path) -> dict:
    """SimCLR against BCL-I and SDCLR against BCL-D, full-shot probe; the table lands in out/fidelity.md."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = {"dataset": "synthetic-lt", "num_classes": sizes.num_classes, "width": sizes.width,
                    "batch_size": sizes.batch_size, "epochs": sizes.fidelity_epochs, "seed": 0,
                    "eval_every": max(1, sizes.fidelity_epochs // 10)}
        summary = run_fidelity(Path(scratch), list(PAIRS), settings, ["full"], sizes.device, echo=lambda line: None)
        shutil.copyfile(Path(scratch) / "fidelity.md", out / "fidelity.md")
        return {"settings": settings, "table": summary["table"]}


def _headline(result) -> str:
    if isinstance(result, dict) and "speedup" in result:
        return (f"ours {result['ours']['samples_per_second']:,.0f}, ours with PIL "
                f"{result['ours_pil_executor']['samples_per_second']:,.0f}, reference configuration "
                f"{result['reference']['samples_per_second']:,.0f} samples/s: {result['speedup_over_pil_executor']:.2f}x "
                f"and {result['speedup']:.2f}x")
    if isinstance(result, dict) and "samples_per_second" in result:
        stages = result.get("stage_milliseconds_per_iteration")
        timing = "; ms per iteration " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()) if stages else ""
        return f"{result['samples_per_second']:,.0f} samples/s{timing}"
    if isinstance(result, dict) and "settings" in result and "table" in result:
        return ", ".join(f"{r['bcl']} - {r['baseline']} {r['number']} {r['difference']:+.2f}" for r in result["table"])
    if isinstance(result, dict) and "table" in result:
        return f"{result['kernels']} kernels, {result['gpu_milliseconds_per_iteration']:.2f} ms of device time per iteration"
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
