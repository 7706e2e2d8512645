"""A training run from start (or resume) to summary: run directory, checkpoints, progress, eval.

Under torchrun every rank trains; rank 0 alone writes the run directory, the metrics and the
checkpoints, shows the progress and evaluates (features on its own device)."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np
import torch

from bcl_dali.atomic import atomic_path
from bcl_dali.config import TrainConfig
from bcl_dali.data import LongTailedData
from bcl_dali.data.files import BadImages
from bcl_dali.device import resolve_device
from bcl_dali.distributed import World
from bcl_dali.errors import Interrupted, Terminated, UserError, command_name, terminate_as_interrupt
from bcl_dali.eval.features import extract_features
from bcl_dali.eval.protocol import evaluate, knn_top1
from bcl_dali.eval.result import FULL, shot_name
from bcl_dali.pipelines.undecodable import UndecodableFiles
from bcl_dali.runs.checkpoint import load_checkpoint, save_checkpoint
from bcl_dali.runs.loggers import check_loggers, open_loggers
from bcl_dali.runs.rundir import RunDir
from bcl_dali.train.executors import build_executor
from bcl_dali.train.schedule import lr_at
from bcl_dali.train.trainer import EpochRecord, Trainer, check_batch_split

CHECKPOINT_INTERVAL_S = 60.0
"""last.pt is rewritten at most this often (and always at the end): a 2000-epoch GPU run finishes
an epoch in well under a second, and a checkpoint per epoch would cost more than the epoch."""


def new_config(overrides: dict[str, Any]) -> TrainConfig:
    return TrainConfig(**overrides).resolve()


def resumed_config(stored: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """The stored run's config with the flags given now; refused if they change the run.
    --stop-after belongs to one invocation: a resume runs to the end unless given it again."""
    config = dataclasses.replace(stored, **{"stop_after": None, **overrides}).resolve()
    config.check_resumable_as(stored)
    return config


PAPER_SHOT = "100"


def probe_shot(data: LongTailedData) -> str:
    """The probe a run ends with (--probe): the paper's 100-shot probe (five subsets) for image folders
    whose probe pool has 100 images of every class, else the full-shot probe (the CIFAR reference's)."""
    return PAPER_SHOT if data.name == "folder" and int(PAPER_SHOT) in data.shots else FULL


def probe_key(data: LongTailedData) -> str:
    return f"probe_{probe_shot(data)}_top1"


def evaluation(trainer: Trainer, probe: bool) -> dict[str, float]:
    """kNN top-1 (%) on the test set with the probe pool as the labelled bank; with `probe`, also
    the linear probe of `probe_shot` (from the same features)."""
    if probe:
        shot = probe_shot(trainer.data)
        results = evaluate(trainer.model, trainer.data, trainer.device, [shot], seed=trainer.config.seed,
                           size=trainer.config.image_size)
        return {"knn_top1": results.knn_top1, probe_key(trainer.data): results.shots[shot].top1}
    data, device = trainer.data, trainer.device
    bank = extract_features(trainer.model, data.probe.images, device, size=trainer.config.image_size)
    queries = extract_features(trainer.model, data.test.images, device, size=trainer.config.image_size)
    return {"knn_top1": knn_top1(bank, torch.as_tensor(data.probe.labels, device=device), queries,
                                 torch.as_tensor(data.test.labels, device=device), data.num_classes)}


def start_run(overrides: dict[str, Any], out: Path | None, resume: Path | None,
              echo: Callable[[str], None] = click.echo) -> dict:
    """A new run in `out` (default runs/METHOD-DATASET-TIME), or `resume` continued; returns the summary.

    Everything that can fail on the user's input (flags, device, data, checkpoint) is checked before
    anything is written, so a refused command leaves no half-made run behind.
    """
    world = World.from_environment()
    if not world.is_main:
        echo = _quiet
    if resume is not None and out is not None:
        raise UserError("--resume continues a run in its own directory; drop --out")
    if resume is not None:
        run = RunDir.open(resume)
        stored = TrainConfig.load(run.config_path)
        config = resumed_config(stored, overrides)
    else:
        config = new_config(overrides)
        run = RunDir(out or Path("runs") / f"{config.label}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
        if world.is_main:
            run.check_free()
    check_batch_split(config.batch_size, world)
    check_loggers(config.log)
    device = world.device(resolve_device(config.device))
    world.start(device)
    left_out = [entry["path"] for entry in run.left_out()] if resume is not None else []
    data = config.load_data(left_out, verify=config.verify_images)
    found = _undecodable_at_start(data, config)
    trainer = Trainer(config, data, device, build_executor(config, data, device, world), world)
    if resume is not None and run.has_checkpoint:
        state = load_checkpoint(run.last_path, device)
        _check_same_method(state, config, run)
        trainer.load_state_dict(state)
        if trainer.epoch > config.epochs:
            raise UserError(f"cannot resume with --epochs {config.epochs}: the run already finished {trainer.epoch}")
        echo(f"resuming {run.path} at epoch {trainer.epoch}/{config.epochs} on {world.size} process(es) "
             f"(checkpoint written by {state.get('world_size', 1)})")
    elif resume is not None:
        echo(f"{run.path} has no checkpoint yet (the run was stopped while it was being created): starting it over")
    if world.is_main and resume is None:
        run = RunDir.create(run.path, config.to_json())
    with run.lock() if world.is_main else contextlib.nullcontext():
        if world.is_main:
            if resume is not None:
                run.keep_metrics_until(trainer.epoch, state.get(RECORD) if run.has_checkpoint else None)
                run.save_config(config.to_json())
                changes = config.adjustments_from(stored)
                if changes:
                    record = {"epoch": trainer.epoch, "resumed_with": changes}
                    if "epochs" in changes:
                        record["schedule"] = _new_schedule(trainer, stored)
                        echo(f"--epochs {stored.epochs} -> {config.epochs}: the cosine schedule now ends at epoch "
                             f"{config.epochs}; the learning rate goes on at {record['schedule']['lr_now']:.4g} "
                             f"(the old schedule's: {record['schedule']['lr_before']:.4g})")
                    run.append_metrics(record)
            run.save_class_counts(data.train_class_counts.tolist(), data.grouping)
        if found:
            _leave_out(trainer, run, found, echo)
        if world.is_main:
            if not run.has_checkpoint:
                save_checkpoint(trainer.state_dict(), run.last_path)  # a run is resumable from its first moment
            _restore_missed_snapshot(trainer, run)
        return run_training(trainer, run, echo)


def _new_schedule(trainer: Trainer, stored: TrainConfig) -> dict[str, float]:
    """The learning rate at the resume point under the new number of epochs and under the old one."""
    steps, warmup = trainer.steps_per_epoch, trainer.config.warmup_epochs * trainer.steps_per_epoch
    return {"lr_now": trainer.lr(trainer.step),
            "lr_before": lr_at(trainer.step, trainer.base_lr, stored.epochs * steps, warmup),
            "ends_at_epoch": trainer.config.epochs}


def _undecodable_at_start(data: LongTailedData, config: TrainConfig) -> BadImages | None:
    """Training files --verify-images found that do not decode: refused under --on-bad-image stop,
    returned to be left out under skip."""
    if not data.undecodable:
        return None
    positions = np.array(sorted(data.undecodable))
    bad = BadImages.of(data.train.images, positions, [data.undecodable[i] for i in positions])
    if config.on_bad_image != "skip":
        raise UserError(f"{bad}; restore a good copy, remove it from the data, or leave it out with "
                        "--on-bad-image skip") from None
    return bad


def _leave_out(trainer: Trainer, run: RunDir, bad: BadImages, echo: Callable[[str], None]) -> None:
    """Record the files in the run and leave them out of every epoch from now on."""
    files = trainer.data.train.images
    entries = [{"path": str(files.paths[i]), "named_in": None if files.origins is None else str(files.origins[i]),
                "why": why, "found_in_epoch": trainer.epoch + 1} for i, why in zip(bad.indices, bad.reasons)]
    if trainer.world.is_main:
        run.add_left_out(entries)
        run.append_metrics({"epoch": trainer.epoch, "left_out": [entry["path"] for entry in entries]})
    trainer.leave_out(bad.indices)
    for entry in entries:
        echo(f"left out {entry['path']} ({entry['named_in']}): it does not decode ({entry['why']}); recorded in "
             f"{run.left_out_path}")


def _go_back_without(trainer: Trainer, run: RunDir, bad: BadImages, echo: Callable[[str], None]) -> None:
    """After a decode failure under --on-bad-image skip: the last finished epoch's state (last.pt, just
    written), the files left out, the data and a new DALI pipeline (DALI's is unusable after a failure)."""
    again = [i for i in bad.indices if trainer.left_out[i]]
    if again:
        raise RuntimeError(f"{trainer.data.train.images.describe(again[0])} was left out but read again")
    trainer.load_state_dict(load_checkpoint(run.last_path, trainer.device))
    _leave_out(trainer, run, bad, echo)
    trainer.data = trainer.config.load_data([entry["path"] for entry in run.left_out()])
    trainer.executor = build_executor(trainer.config, trainer.data, trainer.device, trainer.world)
    echo(f"epoch {trainer.epoch + 1} starts again")


RECORD = "record"
"""A checkpoint carries its epoch's metrics record: a kill before the record reached metrics.jsonl
(e.g. during the evaluation that follows the checkpoint) must not lose it."""


def _check_same_method(state: dict, config: TrainConfig, run: RunDir) -> None:
    written = state.get("config", {}).get("method") if isinstance(state, dict) else None
    if written is not None and written != config.method:
        raise UserError(f"{run.last_path} was written by a {written} run, but {run.config_path} says {config.method}; "
                        "the directory mixes two runs, resume the run the checkpoint belongs to")


def _restore_missed_snapshot(trainer: Trainer, run: RunDir) -> None:
    """A kill between last.pt and its snapshot copy skipped the snapshot; last.pt is that epoch's state."""
    every = trainer.config.snapshot_every
    if every and trainer.epoch and trainer.epoch % every == 0 and not run.snapshot_path(trainer.epoch).exists():
        with atomic_path(run.snapshot_path(trainer.epoch)) as temp:
            shutil.copyfile(run.last_path, temp)


def _quiet(line: str) -> None:
    """The output of every rank but 0."""


INTERRUPTED_STATUS = 128 + signal.SIGINT
TERMINATED_STATUS = 128 + signal.SIGTERM


def run_training(trainer: Trainer, run: RunDir, echo: Callable[[str], None] = click.echo) -> dict:
    """Train until the config's last epoch (or --stop-after), checkpointing into `run` (rank 0).

    A checkpoint is written before the epoch's evaluation, so a failing evaluation loses no training.
    Ctrl-C writes the last finished epoch (kept in memory when last.pt is older) and stops."""
    config, device, world = trainer.config, trainer.device, trainer.world
    final_epoch = config.epochs if config.stop_after is None else min(config.epochs, config.stop_after)
    processes = f" x {world.size} processes" if world.size > 1 else ""
    echo(f"{config.label} on {config.dataset}: {trainer.num_samples} images, {config.arch} width {config.width}, "
         f"batch {config.batch_size}, {config.epochs} epochs, {device}{processes} "
         f"({'bf16' if trainer.bf16 else 'fp32'}), {config.executor} executor -> {run.path}")

    last_save, unsaved, saved_epoch = time.monotonic(), None, trainer.epoch
    loggers = open_loggers(config.log, run.path, dataclasses.asdict(config), trainer.epoch) if world.is_main else []

    def publish(record: dict) -> None:
        run.append_metrics(record)
        for logger in loggers:
            logger.log(record)

    with terminate_as_interrupt(), contextlib.ExitStack() as closing:
        for logger in loggers:
            closing.callback(logger.close)
        try:
            while trainer.epoch < final_epoch:
                try:
                    record = _train_one_epoch(trainer, config).as_dict()
                except UndecodableFiles as error:
                    bad = BadImages.of(trainer.data.train.images, error.indices, error.reasons)
                    if world.is_main and unsaved is not None:
                        save_checkpoint(unsaved, run.last_path)
                        saved_epoch, unsaved = unsaved["epoch"], None
                    if config.on_bad_image != "skip" or world.size > 1:
                        raise UserError(f"{bad}; the run is kept at epoch {saved_epoch} ({run.last_path}): restore a good "
                                        f"copy and go on with `{command_name()} train --resume {run.path}`, or leave the file out: "
                                        f"`{command_name()} train --resume {run.path} --on-bad-image skip`") from None
                    _go_back_without(trainer, run, bad, echo)
                    continue
                if not world.is_main:
                    continue
                snapshot = config.snapshot_every and trainer.epoch % config.snapshot_every == 0
                state = trainer.state_dict() | {RECORD: record}
                if snapshot or trainer.epoch == final_epoch or time.monotonic() - last_save >= CHECKPOINT_INTERVAL_S:
                    save_checkpoint(state, run.last_path)
                    last_save, unsaved, saved_epoch = time.monotonic(), None, trainer.epoch
                    if snapshot:
                        with atomic_path(run.snapshot_path(trainer.epoch)) as temp:
                            shutil.copyfile(run.last_path, temp)
                else:
                    unsaved = copy.deepcopy(state)
                if trainer.epoch == final_epoch or (config.eval_every and trainer.epoch % config.eval_every == 0):
                    try:
                        record |= evaluation(trainer, probe=config.probe and trainer.epoch == config.epochs)
                    except BaseException:
                        publish(record)
                        raise
                publish(record)
                echo(_epoch_line(record, config.epochs))
        except KeyboardInterrupt as signalled:
            if world.is_main and unsaved is not None:
                save_checkpoint(unsaved, run.last_path)
                saved_epoch = unsaved["epoch"]
            terminated = isinstance(signalled, Terminated)
            raise Interrupted(f"{'terminated' if terminated else 'interrupted'} in epoch {trainer.epoch + 1}; "
                              f"{run.last_path} holds epoch {saved_epoch}; continue with: {command_name()} train --resume {run.path}",
                              status=TERMINATED_STATUS if terminated else INTERRUPTED_STATUS) from None

    if not world.is_main:
        return {"run": str(run.path), "method": config.label, "epochs": trainer.epoch, "rank": world.rank}
    summary = _summary(trainer, run)
    echo(_summary_table(summary))
    return summary


PROGRESS_SECONDS = 30.0
"""Outside a terminal (a job's log) the progress bar cannot redraw: a line this often instead."""


def _train_one_epoch(trainer: Trainer, config: TrainConfig) -> EpochRecord:
    if not trainer.world.is_main:
        return trainer.train_epoch()
    start = last_line = time.perf_counter()
    label = f"epoch {trainer.epoch + 1}/{config.epochs}"
    with click.progressbar(length=trainer.steps_per_epoch, label=label, item_show_func=lambda text: text,
                           file=sys.stderr) as bar:
        def on_step(mean_loss) -> None:
            nonlocal last_line
            loss = mean_loss.peek()
            now = time.perf_counter()
            rate = mean_loss.count * trainer.world.size / max(now - start, 1e-9)
            state = ("" if loss is None else f"loss {loss:.4f}  ") + f"{rate:,.0f} samples/s"
            bar.update(1, state)
            if sys.stderr.isatty():
                return
            if now - last_line >= PROGRESS_SECONDS:
                click.echo(f"{label}: step {bar.pos} of {bar.length}, {state}", err=True)
                last_line = now
        return trainer.train_epoch(on_step)


def _epoch_line(record: dict, epochs: int) -> str:
    line = (f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.4f}  lr {record['lr']:.4g}  "
            f"{record['samples_per_second']:,.0f} samples/s  w std {record['weight_std']:.3f}")
    if record.get("size_weight_spearman") is not None:
        line += f"  rho(class size, w) {record['size_weight_spearman']:+.2f}"
    if "knn_top1" in record:
        line += f"  kNN top-1 {record['knn_top1']:.2f}%"
    return line


def _summary(trainer: Trainer, run: RunDir) -> dict:
    records = run.read_metrics()
    trained = [r for r in records if "loss" in r]
    scores = records[-1] if records and records[-1]["epoch"] == trainer.epoch and "knn_top1" in records[-1] else {}
    probe = trainer.config.probe and trainer.epoch == trainer.config.epochs  # not at a --stop-after stop
    key = probe_key(trainer.data)
    if not scores or (probe and key not in scores):
        scores = evaluation(trainer, probe)
    return {
        "run": str(run.path), "method": trainer.config.label, "epochs": trainer.epoch,
        "final_loss": trained[-1]["loss"] if trained else None,
        "train_seconds": sum(r["seconds"] for r in trained),
        "samples_per_second": (trainer.num_samples * len(trained) / max(sum(r["seconds"] for r in trained), 1e-9)
                               if trained else None),
        "knn_top1": scores["knn_top1"], key: scores.get(key), "chance": 100.0 / trainer.data.num_classes,
    }


def _summary_table(summary: dict) -> str:
    rows = [("run", summary["run"]), ("method", summary["method"]), ("epochs", summary["epochs"])]
    if summary["final_loss"] is not None:
        rows += [("final loss", f"{summary['final_loss']:.4f}"), ("train time", f"{summary['train_seconds']:.1f} s"),
                 ("throughput", f"{summary['samples_per_second']:,.0f} samples/s")]
    rows += [("kNN top-1", f"{summary['knn_top1']:.2f}% (chance {summary['chance']:.2f}%)")]
    for shot in (FULL, PAPER_SHOT):
        if summary.get(f"probe_{shot}_top1") is not None:
            rows += [(f"{shot_name(shot)} probe", f"{summary[f'probe_{shot}_top1']:.2f}%")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
