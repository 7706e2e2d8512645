"""The bcl-dali command line: parses flags and calls the library; each command is one function here."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import numpy as np

from bcl_dali.config import ARCHS, EXECUTORS, MAX_SEED, PRECISIONS
from bcl_dali.data import DATASETS, load_pool
from bcl_dali.errors import Interrupted, UserError
from bcl_dali.eval_report import plot_per_class, results_table
from bcl_dali.evaluate import evaluate_checkpoint, load_trained
from bcl_dali.methods import METHODS
from bcl_dali.optimizers import LR_SCALES, OPTIMIZERS
from bcl_dali.run_training import load_run_data, start_run
from benchmarks.pipeline import compare_pipelines, measure_pipeline, profile_table, summary as pipeline_summary
from benchmarks.step import measure_step, summary as step_summary
from benchmarks.train import compare, measure_scaling, measure_training, summary as train_summary
from bcl_dali.device import resolve_device
from bcl_dali.distributed import World
from bcl_dali.reports import check_output_path, write_json
from bcl_dali.show import augmentation_rows, grid_image, make_executor, save_picture
from split import describe_split, few_shot_subset, load_index_file, long_tailed_subset, save_index_file

USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130
"""What a shell reports for a command stopped by SIGINT (128 + 2)."""
DEFAULT_IMBALANCE = 100.0


class Commands(click.Group):
    """A UserError or a flag mistake in any command becomes one line on stderr and exit status 2;
    Ctrl-C becomes one line and 130."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Interrupted as error:
            click.echo(f"stopped: {error}", err=True)
            ctx.exit(INTERRUPTED_STATUS)
        except KeyboardInterrupt:
            click.echo("stopped: interrupted before anything was written", err=True)
            ctx.exit(INTERRUPTED_STATUS)
        except UserError as error:
            message = str(error)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help())
            ctx.exit(0)
        except click.UsageError as error:
            message = f"{error.format_message()} (see '{(error.ctx or ctx).command_path} --help')"
        world = World.from_environment()
        click.echo(f"{f'rank {world.rank}: ' if world.size > 1 else ''}error: {message}", err=True)
        ctx.exit(USER_ERROR_STATUS)


@click.group(cls=Commands)
def cli() -> None:
    """Boosted Contrastive Learning (ICML 2022) on long-tailed data, augmentation on the GPU with DALI."""


dataset_option = click.option("--dataset", type=click.Choice(DATASETS), required=True,
                              help="the source whose training pool the indices refer to")
data_dir_option = click.option("--data-dir", type=click.Path(path_type=Path),
                               help="folder holding the CIFAR data (cifar-100-python/ ...), or the .npz file")
download_option = click.option("--download", is_flag=True, help="fetch CIFAR into --data-dir if it is not there")


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
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="the .npy file to write (never overwritten)")
def splits_make(dataset: str, data_dir: Path | None, download: bool, imbalance: float | None,
                max_per_class: int | None, shots: int | None, seed: int, out: Path) -> None:
    """Write a long-tailed split (class 0 the head) or, with --shots, a few-shot subset, as int64 indices."""
    if shots is not None and (imbalance is not None or max_per_class is not None):
        raise UserError("--shots draws a balanced few-shot subset; --imbalance and --max-per-class "
                        "apply only to long-tailed splits, drop them")
    pool = load_pool(dataset, data_dir=data_dir, download=download)
    if shots is None:
        indices = long_tailed_subset(pool.labels, DEFAULT_IMBALANCE if imbalance is None else imbalance, seed,
                                     max_per_class=max_per_class, num_classes=pool.num_classes)
    else:
        probe_labels = pool.labels[pool.probe_indices]
        indices = pool.probe_indices[few_shot_subset(probe_labels, shots, seed, num_classes=pool.num_classes)]
    save_index_file(out, indices)
    counts = np.bincount(pool.labels[indices], minlength=pool.num_classes)
    click.echo(f"wrote {len(indices)} indices into the {dataset} training pool ({counts.max()}..{counts.min()} "
               f"per class) to {out}")


@splits.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@dataset_option
@data_dir_option
@download_option
def splits_show(file: Path, dataset: str, data_dir: Path | None, download: bool) -> None:
    """Print a split's class histogram, total, imbalance ratio and Many / Medium / Few groups."""
    pool = load_pool(dataset, data_dir=data_dir, download=download)
    indices = load_index_file(file, len(pool.labels))
    click.echo(describe_split(np.bincount(pool.labels[indices], minlength=pool.num_classes)))


@cli.command()
@click.option("--method", type=click.Choice(list(METHODS)),
              help="; ".join(f"{name}: {method.summary}" for name, method in METHODS.items()) + "  [default: bcl-i]")
@click.option("--arch", type=click.Choice(ARCHS), help="CIFAR ResNet  [default: resnet18]")
@click.option("--width", type=click.IntRange(min=1), help="base width: 64 as in the paper, 16 is 16x cheaper  "
              "[default: 16 on synthetic-lt, else 64]")
@click.option("--dataset", type=click.Choice(DATASETS), help="[default: synthetic-lt, built in, no download]")
@data_dir_option
@click.option("--download/--no-download", default=None, help="fetch CIFAR into --data-dir if it is not there")
@click.option("--split", type=click.Path(path_type=Path), help="long-tailed index file, e.g. the reference's "
              "cifar100_split1_D_i.npy  [default: generated with --imbalance and --split-seed]")
@click.option("--imbalance", type=float, help="head / tail ratio of a generated split  [default: 100]")
@click.option("--split-seed", type=int, help="seed of a generated split  [default: 0]")
@click.option("--num-classes", type=int, help="classes of synthetic-lt  [default: 100]")
@click.option("--epochs", type=click.IntRange(min=0), help="0 writes the untrained network as a run  "
              "[default: 4 on synthetic-lt, else 2000]")
@click.option("--batch-size", type=int, help="the global batch, split over torchrun's processes  "
              "[default: 256 on synthetic-lt, else 512]")
@click.option("--lr", type=float, help="base learning rate  [default: 0.5]")
@click.option("--lr-scale", type=click.Choice(LR_SCALES), help="SimCLR's rules: linear lr x batch / 256, sqrt "
              "lr x sqrt(batch)  [default: none]")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="lars for large batches  [default: sgd]")
@click.option("--weight-decay", type=float, help="[default: 5e-4 SimCLR / BCL-I, 1e-4 SDCLR / BCL-D]")
@click.option("--temperature", type=float, help="NT-Xent temperature  [default: 0.2]")
@click.option("--beta", type=float, help="momentum of the per-sample loss average  [default: 0.97]")
@click.option("--rand-k", type=int, help="boosted RandAugment ops per view  [default: 0, 1, 0, 2 by method]")
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
@click.option("--eval-every", type=click.IntRange(min=0), help="kNN accuracy every N epochs (always at the end)")
@click.option("--snapshot-every", type=click.IntRange(min=0), help="keep epoch_NNNN.pt every N epochs  [default: 500]")
@click.option("--stop-after", type=click.IntRange(min=1), help="end this invocation after epoch N (resume later)")
@click.option("--probe/--no-probe", default=None, help="end with the full-shot linear probe")
@click.option("--out", type=click.Path(path_type=Path), help="run directory  [default: runs/METHOD-DATASET-TIME]")
@click.option("--resume", type=click.Path(path_type=Path), help="continue the run in this directory")
def train(out: Path | None, resume: Path | None, **flags) -> None:
    """Train SimCLR / BCL-I / SDCLR / BCL-D. With no flags: BCL-I on the built-in synthetic-lt, minutes on a CPU."""
    overrides = {name: str(value) if isinstance(value, Path) else value
                 for name, value in flags.items() if value is not None}
    start_run(overrides, out, resume)


@cli.command("eval")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--shots", default="full,100,50", show_default=True,
              help="comma-separated: full (the probe pool) and shots per class (100, 50, 10)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@data_dir_option
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="every number and the settings")
@click.option("--plot", type=click.Path(path_type=Path), help="PNG of per-class accuracy against class size")
def evaluate_run(target: Path, shots: str, device: str, data_dir: Path | None, json_path: Path | None,
                 plot: Path | None) -> None:
    """Linear probes (the reference protocol), Many / Medium / Few, kNN of a run directory or checkpoint."""
    check_output_path(json_path)
    check_output_path(plot, "--plot")
    shot_list = [part.strip() for part in shots.split(",") if part.strip()]
    if not shot_list:
        raise UserError("--shots is empty; give e.g. full,100,50")
    where = resolve_device(device)
    checkpoint = load_trained(target, where)
    if data_dir is not None:
        checkpoint.config = dataclasses.replace(checkpoint.config, data_dir=str(data_dir))
    result = evaluate_checkpoint(checkpoint, load_run_data(checkpoint.config), where, shot_list)
    click.echo(results_table(result))
    write_json(result, json_path)
    if plot is not None:
        plot_per_class(result, shot_list[0], plot)
        click.echo(f"wrote {plot}")


@cli.command()
@click.option("--executor", type=click.Choice(EXECUTORS), default="dali", show_default=True)
@click.option("--weights", default="0,0.5,1", show_default=True, help="BCL weights in [0, 1], comma-separated")
@click.option("--method", type=click.Choice(list(METHODS)), default="bcl-i", show_default=True,
              help="whose RandAugment (k = 1 for BCL-I, 2 for BCL-D, none for the baselines)")
@click.option("--images", "count", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="which images and draws: same seed and executor, same picture")
@click.option("--dataset", type=click.Choice(DATASETS), default="synthetic-lt", show_default=True)
@click.option("--data-seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="the built-in data set's images, as `train --data-seed`")
@data_dir_option
@click.option("--out", type=click.Path(path_type=Path), default=Path("views.png"), show_default=True)
def show(executor: str, weights: str, method: str, count: int, seed: int, dataset: str, data_seed: int,
         data_dir: Path | None, out: Path) -> None:
    """Draw the same images under both views at each weight: what BCL does to head and tail samples."""
    levels = _weights(weights)
    check_output_path(out, "--out")
    pool = load_pool(dataset, data_dir=data_dir, seed=data_seed)
    images = pool.images(np.sort(np.random.default_rng(seed).choice(len(pool.labels), count, replace=False)))
    rows = augmentation_rows(make_executor(executor, images, METHODS[method].rand_k), images, levels,
                             METHODS[method].rand_k, seed)
    save_picture(grid_image(rows), out)
    click.echo(f"wrote {out}: {count} images, weights {', '.join(f'{w:g}' for w in levels)}, {executor} executor")


def _weights(text: str) -> list[float]:
    try:
        levels = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--weights {text!r}: give numbers in [0, 1] separated by commas, e.g. 0,0.5,1") from None
    if not all(0.0 <= w <= 1.0 for w in levels):
        raise UserError(f"--weights {text!r}: every weight must lie in [0, 1]")
    return levels


@cli.group()
def bench() -> None:
    """Throughput benchmarks; each prints a one-line summary and can write its figures as JSON."""


@bench.command("pipeline")
@click.option("--executor", type=click.Choice(("both",) + EXECUTORS), default="both", show_default=True,
              help="both: the DALI graph and the PIL reference in one run, and their ratio")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--batch-size", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=20, show_default=True, help="timed batches")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DALI CPU threads or reference worker processes")
@click.option("--rand-k", type=click.IntRange(0, 4), default=1, show_default=True,
              help="RandAugment slots per view (1: BCL-I, 2: BCL-D)")
@click.option("--profile", is_flag=True,
              help="print what a DALI iteration is made of: operators, expansions, copies, kernels, bytes, stage times")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="write the settings and the figures here")
def bench_pipeline(executor: str, device: str, batch_size: int, iters: int, workers: int, rand_k: int, profile: bool,
                   json_path: Path | None) -> None:
    """Augmentation alone: samples/s (two views each) at mixed BCL weights, warm-up excluded."""
    check_output_path(json_path)
    where = resolve_device(device)
    if executor == "both":
        result = compare_pipelines(where, batch_size, iters, workers, rand_k, profile=profile)
    else:
        result = measure_pipeline(executor, where, batch_size, iters, workers, rand_k, profile=profile)
    click.echo(pipeline_summary(result))
    if profile and executor != "reference":
        click.echo(profile_table(result))
    write_json(result, json_path)


@bench.command("step")
@click.option("--method", type=click.Choice(list(METHODS)), default="bcl-i", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=50, show_default=True, help="timed steps")
@click.option("--compile/--no-compile", "compile_model", default=False, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path))
def bench_step(method: str, device: str, batch_size: int, width: int, iters: int, compile_model: bool,
               json_path: Path | None) -> None:
    """The training step alone on synthetic views already on the device."""
    check_output_path(json_path)
    result = measure_step(method, resolve_device(device), batch_size, iters, width, compile_model)
    click.echo(step_summary(result))
    write_json(result, json_path)


@bench.command("train")
@click.option("--method", type=click.Choice(list(METHODS)), default="bcl-i", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--epochs", type=click.IntRange(min=2), default=3, show_default=True, help="the first is excluded")
@click.option("--batch-size", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--compile/--no-compile", "compile_model", default=False, show_default=True)
@click.option("--num-classes", type=click.IntRange(min=3), default=100, show_default=True,
              help="classes of synthetic-lt (100: CIFAR-100-LT's size)")
@click.option("--against-reference", is_flag=True,
              help="also run the reference configuration (fp32, NCHW, PIL workers, per-sample loop) and the ratio")
@click.option("--nproc", type=click.IntRange(min=1), help="run under torchrun at world sizes 1, 2, 4 ... N and "
              "report each (the global batch fixed)")
@click.option("--json", "json_path", type=click.Path(path_type=Path))
def bench_train(method: str, device: str, epochs: int, batch_size: int, width: int, compile_model: bool,
                num_classes: int, against_reference: bool, nproc: int | None, json_path: Path | None) -> None:
    """End-to-end epochs on the built-in synthetic-lt (CIFAR-100-LT's size): samples/s, two views each.
    Under torchrun every process trains and rank 0 reports."""
    check_output_path(json_path)
    where = resolve_device(device)
    if nproc is not None:
        result = measure_scaling(method, where, epochs, batch_size, width, nproc, num_classes)
    elif against_reference:
        result = compare(method, where, epochs, batch_size, width, compile_model, num_classes)
    else:
        result = measure_training(method, where, epochs, batch_size, width, compile_model, num_classes)
    if World.from_environment().is_main:
        click.echo(train_summary(result))
        write_json(result, json_path)


def main() -> None:
    cli(prog_name="cli.py")


if __name__ == "__main__":
    main()
