"""Every speed question of the project in one short GPU window, in tiers, most decisive first.

    tier 0  preflight and the gpu-marked tests (benchmarks/gpu_check.sh runs them, at most 2 minutes)
    tier 1  in-memory images: the augmentation alone (k = 1, 2) eager and replayed from a CUDA graph,
            the hand-off under stress, the step alone and training end to end for each method with each
            --cuda-graphs option, and the option the measurements pick as the default
    tier 2  image folders: decode and augmentation of ImageNet-sized JPEGs to 224 pixels, the recipe's
            step alone, its training end to end, and the memory one 6000-pixel image costs an iteration
    tier 3  the rest: the reference configuration and the PIL executor against ours, torchrun with one
            process, DALI iterations of 1 to 8 batches, a kernel profile, a short run through `train`

Each item has an estimate of its seconds on an H200; the plan and its total are printed before anything
runs, and a tier runs only while the total stays within the window (CHECK_BUDGET_S). Each item writes its
figures to OUT/results.json and its verdicts to OUT/check.log as soon as it finishes, so a cut-off run
keeps what it measured. `--smoke` runs the same code at tiny sizes on the CPU, leaving out the items only
a GPU can run; `--fidelity` is the separate 50-epoch fidelity experiment.
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

from bcl_dali.experiments.fidelity import PAIRS, run_fidelity
from bcl_dali.benchmarks.folder_memory import compare as folder_memory
from bcl_dali.benchmarks.handoff_stress import stress_handoff
from bcl_dali.benchmarks.pipeline import measure_pipeline
from bcl_dali.benchmarks.profile import iteration_profile
from bcl_dali.benchmarks.step import measure_step
from bcl_dali.benchmarks.train import compare, measure_scaling, measure_training
from bcl_dali.config import CUDA_GRAPHS
from bcl_dali.data import load_data
from bcl_dali.data.files import ImageFiles
from bcl_dali.data.generated_jpegs import imagenet_like_folder
from bcl_dali.device import cpu_count
from bcl_dali.training import start_run
from bcl_dali.runs.rundir import RunDir

GPU_TESTS_S = 120
CHECK_BUDGET_S = 480
"""The check's GPU time by its own estimates: 8 minutes, so that one lease of 15 leaves room for the
machine's start, the kit's four transfers and a second try of a failed tier."""
TARGETS = (
    ("pipeline_dali_k1", "samples_per_second", 100_000),
    ("pipeline_dali_k2", "samples_per_second", 100_000),
    ("train_bcl-i_best", "samples_per_second", 25_000),
    ("train_bcl-i_best", "samples_per_second", 32_500),
    ("train_bcl-d_best", "samples_per_second", 12_500),
    ("handoff_stress", "views_differing", None),
    ("pipeline_folder_dali_k2", "samples_per_second", 5_000),
    ("train_bcl-d_imagenet_lt_folder", "of_step", 0.95),
    ("folder_memory_6000px", "ratio", -1.5),
    ("train_bcl-i_vs_reference", "speedup", 6.0),
    ("train_bcl-i_vs_reference", "speedup_over_pil_executor", 1.0),
    ("train_bcl-i_torchrun_world_1", "of_single_process", 0.97),
)
"""(item, figure, the least it should be): the speed the project promises on one GPU (32,500 samples/s
is the paper's 2000-epoch CIFAR-100-LT run in 10 minutes). None: the figure must be 0; a negative
bound -b: the figure must be at most b."""


STEP_METHODS = ("simclr", "sdclr", "moco", "byol")
"""The distinct training steps: BCL-I and BCL-D step as SimCLR and SDCLR do (boosting changes the views only)."""
TRAIN_METHODS = ("bcl-i", "bcl-d", "moco", "byol")
"""End to end: the paper's two methods (boosted with k = 1 and 2) and the momentum-encoder methods
(plain augmentation, k = 0), so every step and every augmentation schedule is timed once."""

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
    stress_batches: int
    folder_files: int
    folder_batch_size: int
    folder_image_size: int
    folder_width: int


FULL = Sizes(device="cuda", num_classes=100, batch_size=512, width=64, pipeline_iters=100, reference_iters=20,
             step_iters=50, epochs=2, run_epochs=6, fidelity_epochs=50, sweep=(1, 8), stress_batches=24,
             folder_files=1024, folder_batch_size=256, folder_image_size=224, folder_width=64)
SMOKE = Sizes(device="cpu", num_classes=3, batch_size=32, width=16, pipeline_iters=2, reference_iters=2,
              step_iters=2, epochs=2, run_epochs=2, fidelity_epochs=1, sweep=(1, 2), stress_batches=2,
              folder_files=32, folder_batch_size=8, folder_image_size=32, folder_width=16)


@dataclass(frozen=True)
class Item:
    name: str
    tier: int
    seconds: float
    """Estimated seconds on an H200 at FULL sizes (setup included)."""
    measure: Callable[[], object]
    gpu_only: bool = False


class Check:
    """The items of every tier, sized by `sizes`, writing under `out`."""

    def __init__(self, out: Path, sizes: Sizes, log: Callable[[str], None]) -> None:
        self.out = out
        self.sizes = sizes
        self.log = log
        self.device = torch.device(sizes.device)
        self.cores = cpu_count()
        self.scratch = Path(tempfile.mkdtemp(prefix="bcl-dali-check-"))
        self.results: dict = {}
        self._files: ImageFiles | None = None
        results_file = out / "results.json"
        if results_file.exists():
            self.results = json.loads(results_file.read_text())

    def items(self) -> list[Item]:
        s, d, cores = self.sizes, self.device, self.cores
        b, w, c = s.batch_size, s.width, s.num_classes
        items = [Item(f"pipeline_dali_k{k}{'_graph' if graph else ''}", 1, 10,
                      lambda k=k, graph=graph: measure_pipeline("dali", d, b, s.pipeline_iters, cores, k,
                                                                num_classes=c, profile=not graph, graph=graph),
                      gpu_only=graph)
                 for k in (1, 2) for graph in (False, True)]
        items.append(Item("handoff_stress", 1, 5, lambda: stress_handoff(d, self._images(), batch_size=2 * b // 16,
                                                                         batches=s.stress_batches)))
        items += [Item(f"step_{m}{'_graph' if graph else ''}", 1, 3.5,
                       lambda m=m, graph=graph: measure_step(m, d, b, s.step_iters, w, num_classes=c,
                                                             cuda_graphs="step" if graph else "none"),
                       gpu_only=graph)
                  for m in STEP_METHODS for graph in (False, True)]
        items += [Item(f"train_{m}_graphs_{option}", 1, 7,
                       lambda m=m, option=option: measure_training(m, d, s.epochs, b, w, num_classes=c,
                                                                   cuda_graphs=option),
                       gpu_only=option != "none")
                  for m in TRAIN_METHODS for option in CUDA_GRAPHS]
        items += [Item(f"train_{m}_best", 1, 0, lambda m=m: self._best(m)) for m in TRAIN_METHODS]
        items.append(Item("cuda_graphs_default", 1, 0, self._default_option))
        items += [Item("pipeline_folder_dali_k2", 2, 25,
                       lambda: measure_pipeline("dali", d, s.folder_batch_size, max(1, s.pipeline_iters // 4), cores, 2,
                                                folder=self._folder(), image_size=s.folder_image_size)),
                  Item("step_bcl-d_imagenet_lt", 2, 20,
                       lambda: measure_step("bcl-d", d, s.folder_batch_size, s.step_iters // 2, s.folder_width,
                                            recipe="imagenet-lt", size=s.folder_image_size)),
                  Item("train_bcl-d_imagenet_lt_folder", 2, 30, self._folder_end_to_end),
                  Item("folder_memory_6000px", 2, 10,
                       lambda: folder_memory(self.scratch / "huge", s.folder_image_size, d))]
        items += [Item("train_bcl-i_vs_reference", 3, 30, lambda: compare("bcl-i", d, s.epochs, b, w, num_classes=c)),
                  Item("train_bcl-i_torchrun_world_1", 3, 20, self._world_of_one)]
        items += [Item(f"pipeline_dali_k2_{n}_batches_per_iteration", 3, 7,
                       lambda n=n: measure_pipeline("dali", d, b, s.pipeline_iters, cores, 2, num_classes=c,
                                                    batches_together=n))
                  for n in s.sweep]
        items += [Item("profile_k2", 3, 8, lambda: iteration_profile(d, b, 2, self.out / "profile.txt", num_classes=c)),
                  Item("bcl-i_training_run", 3, 15, self._training_run)]
        return items

    def estimate(self) -> float:
        """Seconds on an H200 for the whole check (tier 0 included), by the items' own estimates."""
        return GPU_TESTS_S + sum(item.seconds for item in self.items())

    def plan(self, tiers: list[int]) -> list[str]:
        """The tiers' items with their estimates, and the total against the window."""
        lines, total = [], 0.0
        for tier in tiers:
            chosen = [item for item in self.items() if item.tier == tier]
            seconds = sum(item.seconds for item in chosen)
            total += seconds
            lines.append(f"tier {tier}: {len(chosen)} items, about {seconds:.0f} s on an H200: "
                         + ", ".join(item.name for item in chosen))
        total += GPU_TESTS_S
        lines.insert(0, f"tier 0: the gpu-marked tests, at most {GPU_TESTS_S} s")
        lines.append(f"estimate: {total:.0f} s of GPU time in all (window {CHECK_BUDGET_S} s)")
        return lines

    def run(self, tier: int) -> None:
        for item in self.items():
            if item.tier != tier:
                continue
            if item.gpu_only and self.device.type != "cuda":
                self.log(f"{item.name}: not run on the CPU (a CUDA graph needs a GPU)")
                continue
            start = time.perf_counter()
            try:
                self.results[item.name] = item.measure()
                self.log(f"{item.name}: {headline(self.results[item.name])} ({time.perf_counter() - start:.0f} s)")
            except Exception as error:  # one failing item must not cost the lease the other numbers
                self.results[item.name] = {"error": f"{type(error).__name__}: {error}",
                                           "traceback": traceback.format_exc()}
                self.log(f"{item.name}: FAILED {type(error).__name__}: {error}")
            for line in verdicts(self.results, item.name):
                self.log(line)
            self.results.setdefault("sizes", vars(self.sizes))
            (self.out / "results.json").write_text(json.dumps(self.results, indent=2) + "\n")

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _images(self):
        return load_data("synthetic-lt", num_classes=self.sizes.num_classes).train.images.pixels

    def _folder(self) -> ImageFiles:
        """The generated JPEGs, written once for the folder items."""
        if self._files is None:
            self._files = imagenet_like_folder(self.scratch / "jpegs", self.sizes.folder_files)
        return self._files

    def _folder_end_to_end(self) -> dict:
        self._folder()
        s = self.sizes
        train = measure_training("bcl-d", self.device, s.epochs, s.folder_batch_size, s.folder_width,
                                 folder=self.scratch / "jpegs", image_size=s.folder_image_size)
        step = self.results.get("step_bcl-d_imagenet_lt", {}).get("samples_per_second")
        return train | ({"step_samples_per_second": step, "of_step": train["samples_per_second"] / step} if step else {})

    def _best(self, method: str) -> dict:
        """The method's fastest end-to-end option measured in this run."""
        measured = {option: self.results.get(f"train_{method}_graphs_{option}", {}) for option in CUDA_GRAPHS}
        rates = {option: r["samples_per_second"] for option, r in measured.items() if "samples_per_second" in r}
        if not rates:
            raise RuntimeError(f"no end-to-end figure of {method} was measured")
        best = max(rates, key=rates.get)
        return {"cuda_graphs": best, "samples_per_second": rates[best], "by_option": rates}

    def _default_option(self) -> dict:
        """The --cuda-graphs option to make the default: the one fastest for the most methods, if it is
        faster than "none" for every method measured."""
        best = {m: self.results.get(f"train_{m}_best", {}) for m in TRAIN_METHODS}
        votes: dict[str, int] = {}
        for result in best.values():
            if "cuda_graphs" in result:
                votes[result["cuda_graphs"]] = votes.get(result["cuda_graphs"], 0) + 1
        if not votes:
            raise RuntimeError("no method's end-to-end options were measured")
        choice = max(votes, key=votes.get)
        gains = {m: r["by_option"][choice] / r["by_option"]["none"] for m, r in best.items()
                 if choice in r.get("by_option", {}) and "none" in r.get("by_option", {})}
        return {"default": choice if all(g > 1 for g in gains.values()) else "none", "fastest_for": votes,
                "speedup_over_none": gains}

    def _world_of_one(self) -> dict:
        s = self.sizes
        run = measure_scaling("bcl-i", self.device, s.epochs, s.batch_size, s.width, 1, s.num_classes)["runs"][0]
        single = self.results.get("train_bcl-i_graphs_none", {}).get("samples_per_second")
        return run | ({"single_process_samples_per_second": single,
                       "of_single_process": run["samples_per_second"] / single} if single else {})

    def _training_run(self) -> dict:
        """A short BCL-I run through `train` itself: checkpoints, kNN, summary."""
        s = self.sizes
        run = self.scratch / "run"
        summary = start_run({"method": "bcl-i", "dataset": "synthetic-lt", "num_classes": s.num_classes,
                             "width": s.width, "batch_size": s.batch_size, "epochs": s.run_epochs,
                             "warmup_epochs": 1, "device": s.device, "eval_every": max(1, s.run_epochs // 3)},
                            run, None, echo=lambda line: None)
        return {"summary": summary, "metrics": RunDir(run).read_metrics()}


def fidelity(out: Path, sizes: Sizes) -> dict:
    """SimCLR against BCL-I and SDCLR against BCL-D, full-shot probe; the table lands in out/fidelity.md."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = {"dataset": "synthetic-lt", "num_classes": sizes.num_classes, "width": sizes.width,
                    "batch_size": sizes.batch_size, "epochs": sizes.fidelity_epochs, "seed": 0,
                    "eval_every": max(1, sizes.fidelity_epochs // 10)}
        summary = run_fidelity(Path(scratch), list(PAIRS), settings, ["full"], sizes.device, echo=lambda line: None)
        shutil.copyfile(Path(scratch) / "fidelity.md", out / "fidelity.md")
        return {"settings": settings, "table": summary["table"]}


def verdicts(results: dict, item: str) -> list[str]:
    """Each target of `item` beside the figure measured for it."""
    lines = []
    for name, figure, least in TARGETS:
        if name != item:
            continue
        value = results.get(name, {})
        for key in figure.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        bound = "== 0" if least is None else f"<= {-least:,}" if least < 0 else f">= {least:,}"
        if value is None:
            lines.append(f"target {name} {figure} {bound}: not measured")
        else:
            met = value == 0 if least is None else value <= -least if least < 0 else value >= least
            lines.append(f"target {name} {figure} {bound}: {value:,.2f} {'met' if met else 'MISSED'}")
    if item == "cuda_graphs_default" and "default" in results.get(item, {}):
        lines.append(f"decision: --cuda-graphs default {results[item]['default']} (fastest for "
                     f"{results[item]['fastest_for']}, speed-up over none {results[item]['speedup_over_none']})")
    return lines


def headline(result) -> str:
    if not isinstance(result, dict):
        return str(result)
    if "speedup" in result:
        return (f"ours {result['ours']['samples_per_second']:,.0f}, ours with PIL "
                f"{result['ours_pil_executor']['samples_per_second']:,.0f}, reference configuration "
                f"{result['reference']['samples_per_second']:,.0f} samples/s: {result['speedup_over_pil_executor']:.2f}x "
                f"and {result['speedup']:.2f}x")
    if result.get("benchmark") == "folder_memory":
        return (f"peak {result['peak_bytes_with'] / 2**20:,.0f} MiB with one {result['huge_side']}-pixel image, "
                f"{result['peak_bytes_without'] / 2**20:,.0f} MiB without: {result['ratio']:.2f}x")
    if "views_differing" in result:
        return f"{result['views_differing']} of {result['views']} views read late differ from their first copy"
    if "by_option" in result:
        return f"{result['samples_per_second']:,.0f} samples/s with --cuda-graphs {result['cuda_graphs']}"
    if "default" in result:
        return f"--cuda-graphs {result['default']}"
    if "samples_per_second" in result:
        stages = result.get("stage_milliseconds_per_iteration")
        timing = "; ms per iteration " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()) if stages else ""
        census = (f"; {result['launches']} launches, {result['host_syncs']} host syncs per GPU iteration"
                  if "launches" in result else "")
        return f"{result['samples_per_second']:,.0f} samples/s{census}{timing}"
    if "table" in result and "settings" in result:
        return ", ".join(f"{r['bcl']} - {r['baseline']} {r['number']} {r['difference']:+.2f}" for r in result["table"]
                         if r["difference"] is not None)
    if "table" in result:
        return f"{result['kernels']} kernels, {result['gpu_milliseconds_per_iteration']:.2f} ms of device time per iteration"
    if "summary" in result:
        return f"kNN top-1 {result['summary']['knn_top1']:.2f}%, {result['summary']['samples_per_second']:,.0f} samples/s"
    return json.dumps(result)[:200]


def main() -> None:
    """python -m bcl_dali.benchmarks.gpu_check OUT [--smoke] [--plan | --tier N | --fidelity]"""
    out = Path(sys.argv[1])
    flags = sys.argv[2:]
    sizes = SMOKE if "--smoke" in flags else FULL
    out.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, flush=True)
        with open(out / "check.log", "a") as file:
            file.write(line + "\n")

    check = Check(out, sizes, log)
    try:
        if "--plan" in flags:
            for line in check.plan([1, 2, 3]):
                log(line)
        elif "--fidelity" in flags:
            result = fidelity(out, sizes)
            log(f"fidelity: {headline(result)}")
        else:
            tier = int(flags[flags.index("--tier") + 1])
            log(f"--- tier {tier} ---")
            check.run(tier)
    finally:
        check.close()


if __name__ == "__main__":
    main()
