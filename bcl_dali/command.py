"""The bcl-dali command line (`bcl-dali`, or `python cli.py` in a checkout): parses flags and calls the
library; each command is one function here."""
from __future__ import annotations

from pathlib import Path

from typing import Callable

import click

from bcl_dali.config import (ARCHS, BAD_IMAGE_POLICIES, CUDA_GRAPHS, EXECUTORS, LR_SCALES, MAX_SEED, MIN_IMAGE_SIZE,
                             MIN_WIDTH, OPTIMIZERS, PRECISIONS, RECIPES, STEMS, read_settings)
from bcl_dali.data import DATASETS, DEFAULT_IMBALANCE
from bcl_dali.device import resolve_device
from bcl_dali.distributed import World
from bcl_dali.errors import Interrupted, Terminated, UserError, command_name, terminate_as_interrupt
from bcl_dali.methods import METHODS
from bcl_dali.policy import WEIGHT_NORMS
from bcl_dali.runs.outputs import check_output_path, write_json
from bcl_dali.version import __version__
from bcl_dali.split import SplitError

# What a command runs is imported when it runs: DALI, torchvision and the benchmarks take seconds to
# import, and `--help` should not wait for them.

USER_ERROR_STATUS = 2
IN_MEMORY = tuple(name for name in DATASETS if name != "folder")
INTERRUPTED_STATUS = 130
TERMINATED_STATUS = 143
"""What a shell reports for a command stopped by SIGINT (128 + 2) or SIGTERM (128 + 15)."""


class Commands(click.Group):
    """A UserError, a SplitError or a flag mistake in any command becomes one line on stderr and exit status 2;
    Ctrl-C becomes one line and 130, SIGTERM (a scheduler, `kill`) one line and 143, from the start."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            with terminate_as_interrupt():
                return super().invoke(ctx)
        except Interrupted as error:
            click.echo(f"stopped: {error}", err=True)
            ctx.exit(error.status)
        except Terminated:
            click.echo("stopped: terminated", err=True)
            ctx.exit(TERMINATED_STATUS)
        except KeyboardInterrupt:
            click.echo("stopped: interrupted", err=True)
            ctx.exit(INTERRUPTED_STATUS)
        except (UserError, SplitError) as error:
            message = str(error)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help())
            ctx.exit(0)
        except click.UsageError as error:
            message = f"{error.format_message()} (see '{(error.ctx or ctx).command_path} --help')"
        world = World.from_environment()
        click.echo(f"{f'rank {world.rank}: ' if world.size > 1 else ''}error: {message}", err=True)
        ctx.exit(USER_ERROR_STATUS)


def renamed_option(old: str, new: str) -> Callable:
    """A flag's earlier name, hidden: using it is a one-line error that names the new one."""
    def refuse(ctx: click.Context, param: click.Parameter, value: object) -> None:
        if value is not None:
            raise click.UsageError(f"{old} is now {new} (same meaning)", ctx)
    return click.option(old, hidden=True, expose_value=False, callback=refuse)


@click.group(cls=Commands)
@click.version_option(__version__, prog_name="bcl-dali")
def cli() -> None:
    """Boosted Contrastive Learning (ICML 2022) on long-tailed data, augmentation on the GPU with DALI."""


dataset_option = click.option("--dataset", type=click.Choice(DATASETS), required=True,
                              help="the source whose training pool the indices refer to")
data_dir_option = click.option("--data-dir", type=click.Path(path_type=Path),
                               help="folder holding the CIFAR data (cifar-100-python/ ...), the .npz file, or the "
                                    "image folder's root")
download_option = click.option("--download", is_flag=True, help="fetch CIFAR into --data-dir if it is not there")
num_classes_option = click.option("--num-classes", type=int, help="classes of synthetic-lt  [default: 100]")


@cli.group()
def splits() -> None:
    """Long-tailed index files: make new ones, show what one holds."""


@splits.command("make")
@dataset_option
@data_dir_option
@download_option
@click.option("--imbalance", type=float, help=f"head / tail class size ratio  [default: {DEFAULT_IMBALANCE:g}]")
@click.option("--max-per-class", type=int, help="images of the head class  [default: 90% of the smallest class]")
@click.option("--shots", type=int, help="instead: this many images per class from the probe pool")
@num_classes_option
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="the .npy file to write (never overwritten)")
def splits_make(dataset: str, data_dir: Path | None, download: bool, imbalance: float | None,
                max_per_class: int | None, shots: int | None, num_classes: int | None, seed: int, out: Path) -> None:
    """Write a long-tailed split (class 0 the head) or, with --shots, a few-shot subset, as int64 indices."""
    from bcl_dali.data.split_files import make_split

    click.echo(make_split(dataset, out, data_dir=data_dir, download=download, imbalance=imbalance,
                          max_per_class=max_per_class, shots=shots, num_classes=num_classes, seed=seed))


@splits.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@dataset_option
@data_dir_option
@download_option
@num_classes_option
def splits_show(file: Path, dataset: str, data_dir: Path | None, download: bool, num_classes: int | None) -> None:
    """Print a split's class histogram, total, imbalance ratio and Many / Medium / Few groups."""
    from bcl_dali.data.split_files import show_split

    click.echo(show_split(file, dataset, data_dir=data_dir, download=download, num_classes=num_classes))


@cli.command()
@click.option("--method", type=click.Choice(list(METHODS)),
              help="; ".join(f"{name}: {method.summary}" for name, method in METHODS.items()) + "  [default: bcl-i]")
@click.option("--arch", type=click.Choice(ARCHS), help="ResNet  [default: resnet18; resnet50 for --dataset folder]")
@click.option("--stem", type=click.Choice(STEMS), help="the ResNet's first layer  [default: cifar; imagenet for "
              "--dataset folder]")
@click.option("--width", type=click.IntRange(min=MIN_WIDTH), help="base width: 64 as in the paper, 16 is 16x cheaper  "
              "[default: 16 on synthetic-lt, else 64]")
@click.option("--dataset", type=click.Choice(DATASETS), help="[default: synthetic-lt, built in, no download]")
@data_dir_option
@click.option("--download/--no-download", default=None, help="fetch CIFAR into --data-dir if it is not there")
@click.option("--recipe", type=click.Choice(list(RECIPES)), help="the paper's 224-pixel setting for --dataset "
              "folder: ResNet-50, ImageNet stem, 500 epochs, batch 256, lr 0.5, crops from 8%  [default: imagenet-lt]")
@click.option("--train-list", type=click.Path(path_type=Path), help="folder: \"relative/path.jpg label\" lines of "
              "the long-tailed training set (ImageNet_LT_train.txt)  [default: a --data-dir/train/CLASS/ tree]")
@click.option("--test-list", type=click.Path(path_type=Path), help="folder: the test set's list")
@click.option("--val-list", type=click.Path(path_type=Path), help="folder: the val list; the probe pool unless "
              "--probe-list is given")
@click.option("--probe-list", type=click.Path(path_type=Path), help="folder: the balanced pool of the linear "
              "probes, e.g. the full training set, for 100-shot probes  [default: val list, else train list]")
@click.option("--image-size", type=click.IntRange(min=MIN_IMAGE_SIZE), help="folder: the views' side in pixels  "
              "[default: 224]")
@click.option("--crop-scale", type=float, help="RandomResizedCrop's smallest area share  [default: 0.1; 0.08 for "
              "--dataset folder]")
@click.option("--blur/--no-blur", default=None, help="Gaussian blur after grayscale (p 0.5, sigma 0.1 to 2)  "
              "[default: off; on for --dataset folder]")
@click.option("--split", type=click.Path(path_type=Path), help="long-tailed index file, e.g. the reference's "
              "cifar100_split1_D_i.npy  [default: generated with --imbalance and --split-seed]")
@click.option("--imbalance", type=float, help="head / tail ratio of a generated split  [default: 100]")
@click.option("--split-seed", type=int, help="seed of a generated split  [default: 0]")
@num_classes_option
@click.option("--epochs", type=click.IntRange(min=0), help="0 writes the untrained network as a run  "
              "[default: 4 on synthetic-lt, else 2000]")
@click.option("--batch-size", type=int, help="the global batch, split over torchrun's processes  "
              "[default: 256 on synthetic-lt, else 512]")
@click.option("--lr", type=float, help="base learning rate  [default: 0.5; 0.06 MoCo]")
@click.option("--lr-scale", type=click.Choice(LR_SCALES), help="SimCLR's rules: linear lr x batch / 256, sqrt "
              "lr x sqrt(batch)  [default: none]")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="lars for large batches  [default: sgd]")
@click.option("--weight-decay", type=float, help="[default: 5e-4 SimCLR / BCL-I / MoCo, 1e-4 SDCLR / BCL-D, "
              "1e-5 BYOL]")
@click.option("--temperature", type=float, help="NT-Xent's and MoCo's temperature  [default: 0.2]")
@click.option("--beta", type=float, help="momentum of the per-sample loss average  [default: 0.97]")
@click.option("--weight-norm", type=click.Choice(WEIGHT_NORMS), help="per-sample loss to weight: the paper's "
              "z / max|z| / 2 + 1/2, or the loss's rank over the training set  [default: paper]")
@renamed_option("--rand-k", "--boost")
@click.option("--boost", type=click.IntRange(min=0), help="boosted RandAugment ops per view, for any method: 0 is "
              "the plain augmentation; simclr --boost 1 is BCL-I, sdclr --boost 2 BCL-D  [default: 1 bcl-i, 2 bcl-d, "
              "else 0]")
@click.option("--queue-size", type=int, help="MoCo: keys kept as negatives  [default: 4096]")
@click.option("--target-momentum", type=float, help="MoCo: the key encoder's momentum; BYOL: the target's at the "
              "first step, a cosine to 1 at the last  [default: 0.99]")
@click.option("--rand-strength", type=float, help="RandAugment magnitude at weight 1  [default: 30]")
@click.option("--prune-ratio", type=float, help="SDCLR pruning  [default: 0.9]")
@click.option("--sync-bn/--no-sync-bn", default=None, help="BatchNorm statistics over the global batch under "
              "torchrun  [default: on]")
@click.option("--warmup-epochs", type=int, help="linear warm-up  [default: 1 on synthetic-lt, else 10]")
@click.option("--seed", type=int, help="the training's randomness: initial weights, epoch orders, augmentation  "
              "[default: 10]")
@click.option("--data-seed", type=int, help="the built-in data set's images and drawn few-shot subsets  [default: 0]")
@click.option("--device", help="auto, cpu, cuda or cuda:N  [default: auto]")
@click.option("--executor", type=click.Choice(EXECUTORS), help="augmentation: DALI graph or PIL reference  "
              "[default: dali]")
@click.option("--workers", type=click.IntRange(min=0), help="CPU threads (DALI) or processes (reference)  "
              "[default: all cores]")
@click.option("--precision", type=click.Choice(PRECISIONS), help="auto: bf16 autocast on CUDA, fp32 on CPU")
@click.option("--compile/--no-compile", default=None, help="torch.compile the model")
@click.option("--cuda-graphs", type=click.Choice(CUDA_GRAPHS), help="replay from CUDA graphs on the GPU: the "
              "augmentation of in-memory images, the training step, all or none  [default: none]")
@click.option("--verify-images/--no-verify-images", default=None, help="folder: decode every image in full before "
              "training (a JPEG cut off after its header passes the quick check)  [default: off]")
@click.option("--on-bad-image", type=click.Choice(BAD_IMAGE_POLICIES), help="folder: a training image that does not "
              "decode stops the run (its checkpoint kept), or is left out from then on (recorded)  [default: stop]")
@click.option("--eval-every", type=click.IntRange(min=0), help="kNN accuracy every N epochs (always at the end)")
@click.option("--snapshot-every", type=click.IntRange(min=0), help="keep epoch_NNNN.pt every N epochs  [default: 500]")
@click.option("--stop-after", type=click.IntRange(min=1), help="end this invocation after epoch N (resume later)")
@click.option("--probe/--no-probe", default=None, help="end with the full-shot linear probe")
@click.option("--log", help="also send the metrics to tensorboard (RUN/tensorboard), wandb (RUN/wandb; WANDB_MODE=offline "
              "without a network) or tensorboard,wandb; each needs its extra  [default: none]")
@click.option("--out", type=click.Path(path_type=Path), help="run directory  [default: runs/METHOD-DATASET-TIME]")
@click.option("--resume", type=click.Path(path_type=Path), help="continue the run in this directory")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="settings from a file: a run's config.json (to run it again) or a TOML file such as recipes/*.toml; "
                   "flags override it")
def train(out: Path | None, resume: Path | None, config_file: Path | None, **flags) -> None:
    """Train SimCLR / BCL-I / SDCLR / BCL-D / MoCo v2 / BYOL, each boosted or not (--boost). With no flags: BCL-I
    on the built-in synthetic-lt, minutes on a CPU."""
    from bcl_dali.training import start_run

    if config_file is not None and resume is not None:
        raise UserError("--resume continues a run with its own config.json; drop --config")
    overrides = {name: str(value) if isinstance(value, Path) else value
                 for name, value in flags.items() if value is not None}
    start_run({**(read_settings(config_file) if config_file is not None else {}), **overrides}, out, resume)


@cli.command("eval")
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--shots", default="full,100,50", show_default=True,
              help="comma-separated: full (the probe pool) and shots per class (100, 50, 10 where the split has them)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@data_dir_option
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="every number and the settings")
@click.option("--plot", type=click.Path(path_type=Path), help="PNG of per-class accuracy against class size "
              "(one target; needs the plot extra)")
def evaluate_run(targets: tuple[Path, ...], shots: str, device: str, data_dir: Path | None, json_path: Path | None,
                 plot: Path | None) -> None:
    """Linear probes (the reference protocol), Many / Medium / Few, kNN of run directories or checkpoints.

    Several targets (e.g. the runs of splits 1-5) also get the papers' mean ± std over the runs. A run
    directory keeps its result as eval-epochE.json, which `report` shows."""
    from bcl_dali.eval.tables import across_runs_table, results_table
    from bcl_dali.evaluation import evaluate_runs, parse_shots
    from bcl_dali.report.plots import per_class_figure, require_matplotlib

    check_output_path(json_path)
    check_output_path(plot, "--plot")
    if plot is not None and len(targets) > 1:
        raise UserError(f"--plot draws one model's classes; give one target, or compare runs with `{command_name()} report`")
    if plot is not None:
        require_matplotlib()
    shot_list = parse_shots(shots)
    evaluated = evaluate_runs(list(targets), shot_list, device, data_dir, echo=lambda line: click.echo(line, err=True),
                              on_result=lambda result: click.echo(results_table(result)))
    if evaluated.across_runs is not None:
        click.echo(across_runs_table(evaluated.across_runs, len(evaluated.results)))
    write_json(evaluated.as_dict(), json_path)
    if plot is not None:
        click.echo(f"wrote {per_class_figure(evaluated.results[0], shot_list[0], plot)}")


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="folder for report.md and its PNGs  "
              "[default: RUN/report for one run]")
def report(runs: tuple[Path, ...], out: Path | None) -> None:
    """Draw a run's curves, BCL's weights against the classes and its evaluation; several runs side by side.

    Needs the plot extra (matplotlib). Evaluate runs first with `cli.py eval RUN` to get the group bars."""
    from bcl_dali.report.pages import write_report

    if out is None:
        if len(runs) > 1:
            raise UserError("several runs need --out, a folder for their joint report")
        out = runs[0] / "report"
    click.echo(f"wrote {write_report(list(runs), out)}")


@cli.command()
@click.option("--executor", type=click.Choice(EXECUTORS), default="dali", show_default=True)
@click.option("--weights", default="0,0.5,1", show_default=True, help="BCL weights in [0, 1], comma-separated")
@click.option("--method", type=click.Choice(list(METHODS)), default="bcl-i", show_default=True,
              help="whose RandAugment (k = 1 for BCL-I, 2 for BCL-D, none for the baselines)")
@click.option("--images", "count", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="which images and draws: same seed and executor, same picture")
@click.option("--dataset", type=click.Choice(IN_MEMORY), default="synthetic-lt", show_default=True,
              help="an in-memory data set (for an image folder, see its augmentation at work in `report`)")
@click.option("--data-seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="the built-in data set's images, as `train --data-seed`")
@data_dir_option
@click.option("--out", type=click.Path(path_type=Path), default=Path("views.png"), show_default=True)
def show(executor: str, weights: str, method: str, count: int, seed: int, dataset: str, data_seed: int,
         data_dir: Path | None, out: Path) -> None:
    """Draw the same images under both views at each weight: what BCL does to head and tail samples."""
    from bcl_dali.report.views import draw_augmentation, parse_weights

    click.echo(draw_augmentation(out, executor=executor, weights=parse_weights(weights), boost=METHODS[method].boost,
                                 count=count, seed=seed, dataset=dataset, data_seed=data_seed, data_dir=data_dir))


@cli.group()
def bench() -> None:
    """Throughput benchmarks; each prints a one-line summary and can write its figures as JSON."""


@bench.command("pipeline")
@click.option("--executor", type=click.Choice(("both",) + EXECUTORS), default="both", show_default=True,
              help="both: the DALI graph and the PIL reference in one run, and their ratio")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--dataset", type=click.Choice(("synthetic-lt", "folder")), default="synthetic-lt", show_default=True,
              help="folder: decode + augmentation of JPEGs to --image-size views (generated ImageNet-sized JPEGs "
                   "unless --data-dir is given)")
@click.option("--data-dir", type=click.Path(path_type=Path), help="folder: the image folder's root (a train/CLASS/ "
              "tree, or the root of --train-list)")
@click.option("--train-list", type=click.Path(path_type=Path), help="folder: the list of the images to read")
@click.option("--image-size", type=click.IntRange(min=MIN_IMAGE_SIZE), default=224, show_default=True, help="folder: view side")
@click.option("--batch-size", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=20, show_default=True, help="timed batches")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DALI CPU threads or reference worker processes")
@renamed_option("--rand-k", "--boost")
@click.option("--boost", type=click.IntRange(0, 4), default=1, show_default=True,
              help="RandAugment slots per view (1: BCL-I, 2: BCL-D)")
@click.option("--profile", is_flag=True,
              help="print what a DALI iteration is made of: operators, expansions, copies, kernels, bytes, stage times")
@click.option("--cuda-graph", is_flag=True, help="replay the augmentation from a CUDA graph (in-memory images, GPU)")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="write the settings and the figures here")
def bench_pipeline(executor: str, device: str, dataset: str, data_dir: Path | None, train_list: Path | None,
                   image_size: int, batch_size: int, iters: int, workers: int, boost: int, profile: bool,
                   cuda_graph: bool, json_path: Path | None) -> None:
    """Augmentation alone: samples/s (two views each) at mixed BCL weights, warm-up excluded."""
    from bcl_dali.benchmarks.pipeline import profile_table, run_pipeline_benchmark, summary

    check_output_path(json_path)
    result = run_pipeline_benchmark(executor, resolve_device(device), batch_size, iters, workers, boost,
                                    dataset=dataset, data_dir=data_dir, train_list=train_list, image_size=image_size,
                                    profile=profile, graph=cuda_graph, echo=lambda line: click.echo(line, err=True))
    click.echo(summary(result))
    if profile and executor != "reference":
        click.echo(profile_table(result))
    write_json(result, json_path)


@bench.command("step")
@click.option("--method", type=click.Choice(list(METHODS)), default="bcl-i", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--width", type=click.IntRange(min=MIN_WIDTH), default=64, show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=50, show_default=True, help="timed steps")
@click.option("--compile/--no-compile", "compile_model", default=False, show_default=True)
@click.option("--recipe", type=click.Choice(list(RECIPES)), help="the recipe's model and view size (ResNet-50, "
              "224 pixels)  [default: CIFAR ResNet-18, 32 pixels]")
@click.option("--cuda-graphs", type=click.Choice(("none", "step")), default="none", show_default=True,
              help="step: replay the step from a CUDA graph")
@click.option("--json", "json_path", type=click.Path(path_type=Path))
def bench_step(method: str, device: str, batch_size: int, width: int, iters: int, compile_model: bool, recipe: str | None,
               cuda_graphs: str, json_path: Path | None) -> None:
    """The training step alone on synthetic views already on the device."""
    from bcl_dali.benchmarks.step import measure_step, summary

    check_output_path(json_path)
    result = measure_step(method, resolve_device(device), batch_size, iters, width, compile_model, recipe=recipe,
                          cuda_graphs=cuda_graphs)
    click.echo(summary(result))
    write_json(result, json_path)


@bench.command("train")
@click.option("--method", type=click.Choice(list(METHODS)), default="bcl-i", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--epochs", type=click.IntRange(min=2), default=3, show_default=True, help="the first is excluded")
@click.option("--batch-size", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--width", type=click.IntRange(min=MIN_WIDTH), default=64, show_default=True)
@click.option("--compile/--no-compile", "compile_model", default=False, show_default=True)
@click.option("--num-classes", type=click.IntRange(min=3), default=100, show_default=True,
              help="classes of synthetic-lt (100: CIFAR-100-LT's size)")
@click.option("--against-reference", is_flag=True,
              help="also run the reference configuration (fp32, NCHW, PIL workers, per-sample loop) and the ratio")
@click.option("--dataset", type=click.Choice(("synthetic-lt", "folder")), default="synthetic-lt", show_default=True,
              help="folder: the ImageNet-LT recipe (ResNet-50) on JPEG files (generated unless --data-dir is given)")
@click.option("--data-dir", type=click.Path(path_type=Path), help="folder: a root holding train.txt and test.txt")
@click.option("--image-size", type=click.IntRange(min=MIN_IMAGE_SIZE), default=224, show_default=True, help="folder: view side")
@click.option("--files", type=click.IntRange(min=16), default=2048, show_default=True,
              help="folder: JPEGs to generate without --data-dir")
@click.option("--nproc", type=click.IntRange(min=1), help="run under torchrun at world sizes 1, 2, 4 ... N and "
              "report each (the global batch fixed)")
@click.option("--cuda-graphs", type=click.Choice(CUDA_GRAPHS), default="none", show_default=True,
              help="as for train")
@click.option("--json", "json_path", type=click.Path(path_type=Path))
def bench_train(method: str, device: str, epochs: int, batch_size: int, width: int, compile_model: bool,
                num_classes: int, against_reference: bool, nproc: int | None, dataset: str, data_dir: Path | None,
                image_size: int, files: int, cuda_graphs: str, json_path: Path | None) -> None:
    """End-to-end epochs on the built-in synthetic-lt (CIFAR-100-LT's size), or with the ImageNet-LT
    recipe on JPEG files: samples/s, two views each. Under torchrun every process trains and rank 0 reports."""
    from bcl_dali.benchmarks.train import run_train_benchmark, summary

    check_output_path(json_path)
    result = run_train_benchmark(method, resolve_device(device), epochs, batch_size, width, compile_model=compile_model,
                                 num_classes=num_classes, against_reference=against_reference, nproc=nproc,
                                 dataset=dataset, data_dir=data_dir, image_size=image_size, files=files,
                                 cuda_graphs=cuda_graphs, echo=lambda line: click.echo(line, err=True))
    if World.from_environment().is_main:
        click.echo(summary(result))
        write_json(result, json_path)


@cli.group()
def experiment() -> None:
    """Experiments made of runs and evaluations."""


@experiment.command("fidelity")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="folder for the runs (one per method; existing ones are resumed), fidelity.md and report/")
@click.option("--pairs", default="simclr,sdclr", show_default=True,
              help="simclr: SimCLR against BCL-I; sdclr: SDCLR against BCL-D")
@click.option("--dataset", type=click.Choice(DATASETS), default="synthetic-lt", show_default=True)
@data_dir_option
@click.option("--split", type=click.Path(path_type=Path), help="index file of the training split")
@num_classes_option
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=256, show_default=True)
@click.option("--width", type=click.IntRange(min=MIN_WIDTH), default=16, show_default=True)
@click.option("--eval-every", type=click.IntRange(min=0), help="kNN every N epochs  [default: epochs / 10]")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--shots", default="full", show_default=True, help="probes to compare, as for eval")
@click.option("--device", default="auto", show_default=True)
def experiment_fidelity(out: Path, pairs: str, dataset: str, data_dir: Path | None, split: Path | None,
                        num_classes: int | None, epochs: int, batch_size: int, width: int, eval_every: int | None,
                        seed: int, shots: str, device: str) -> None:
    """Train each baseline and its BCL method alike, evaluate both, and tabulate what BCL changes by group."""
    from bcl_dali.evaluation import parse_shots
    from bcl_dali.experiments.fidelity import parse_pairs, run_fidelity
    from bcl_dali.experiments.runs import experiment_settings

    settings = experiment_settings(dataset, epochs, batch_size, width, eval_every, seed=seed, data_dir=data_dir,
                                   split=split, num_classes=num_classes)
    summary = run_fidelity(out, parse_pairs(pairs), settings, parse_shots(shots), device, click.echo)
    click.echo((out / "fidelity.md").read_text())
    click.echo(f"wrote {out / 'fidelity.md'} and {summary['report']}")



@experiment.command("boosting")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="folder for the runs (ARM-seedS; existing ones are resumed), boosting.md and boosting.json")
@click.option("--arms", default="simclr,simclr:1,simclr:1:rank,moco,moco:1,byol,byol:1", show_default=True,
              help="METHOD[:BOOST[:WEIGHT_NORM]], comma-separated")
@click.option("--seeds", default="0,1,2", show_default=True, help="training seeds, comma-separated")
@click.option("--dataset", type=click.Choice(DATASETS), default="synthetic-lt", show_default=True)
@data_dir_option
@click.option("--imbalance", type=float, help="head / tail ratio of the drawn split  [default: 100]")
@num_classes_option
@click.option("--epochs", type=click.IntRange(min=2), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=256, show_default=True)
@click.option("--width", type=click.IntRange(min=MIN_WIDTH), default=16, show_default=True)
@click.option("--eval-every", type=click.IntRange(min=0), help="kNN every N epochs  [default: epochs / 10]")
@click.option("--shot", default="100", show_default=True, help="the probe: full, or shots per class")
@click.option("--device", default="auto", show_default=True)
def experiment_boosting(out: Path, arms: str, seeds: str, dataset: str, data_dir: Path | None, imbalance: float | None,
                        num_classes: int | None, epochs: int, batch_size: int, width: int, eval_every: int | None,
                        shot: str, device: str) -> None:
    """Train every arm with every seed alike, evaluate each, and tabulate mean +- std over the seeds: does boosting
    help each method on long-tailed data?"""
    from bcl_dali.evaluation import parse_shots
    from bcl_dali.experiments.boosting import parse_arms, parse_seeds, run_boosting
    from bcl_dali.experiments.runs import experiment_settings

    settings = experiment_settings(dataset, epochs, batch_size, width, eval_every, data_dir=data_dir,
                                   imbalance=imbalance, num_classes=num_classes)
    (probe,) = parse_shots(shot)
    run_boosting(out, parse_arms(arms), parse_seeds(seeds), settings, probe, device, click.echo)
    click.echo((out / "boosting.md").read_text())
    click.echo(f"wrote {out / 'boosting.md'} and {out / 'boosting.json'}")

def main(prog_name: str = "bcl-dali") -> None:
    cli(prog_name=prog_name)
