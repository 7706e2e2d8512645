"""What a user must get from `train`, `eval` and `show` when things go wrong: a bad input is one
line naming the problem and the fix and leaves no half-made run; a run killed (SIGKILL, Ctrl-C,
a full disk, a torn metrics line, a kill before its first checkpoint) resumes to the very numbers
of a run that was never stopped; a run directory is trained by one process at a time.

Every run here is the same tiny npz run (108 images of 32x32, width 16, 4 steps an epoch, DALI on
the CPU), so each recovered run is compared with one uninterrupted reference run.
`--snapshot-every 1` gives a checkpoint at every epoch (last.pt is otherwise rewritten at most once
a minute, see bcl_dali.training.CHECKPOINT_INTERVAL_S); it changes nothing the run computes.
"""
from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from bcl_dali.runs.checkpoint import load_checkpoint
from bcl_dali.runs.rundir import RunDir
from tests.cli_support import assert_error_after_progress, assert_one_line_error, run
from tests.paths import REPO

EPOCHS = 4
TRAIN_IMAGES = 108
"""3 classes of 40 images, --imbalance 1: 36 of each class (90% of the smallest) train."""


def make_npz(path: Path, **replace: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    arrays = dict(x_train=images, y_train=labels, x_test=images[::4], y_test=labels[::4])
    np.savez(path, **{**arrays, **replace})
    return path


def tiny_args(npz: Path) -> tuple[str, ...]:
    return ("--dataset", "npz", "--data-dir", str(npz), "--imbalance", "1", "--width", "16", "--batch-size", "32",
            "--epochs", str(EPOCHS), "--device", "cpu", "--workers", "1", "--seed", "3", "--executor", "dali")


def read_metrics(out: Path) -> list[dict]:
    """Every line must be one whole JSON object."""
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def trained_epochs(records: list[dict]) -> list[int]:
    return [r["epoch"] for r in records if "loss" in r]


@dataclass
class Reference:
    npz: Path
    out: Path

    @property
    def args(self) -> tuple[str, ...]:
        return tiny_args(self.npz)

    def assert_same_run(self, out: Path) -> None:
        """`out` ended with the reference's per-epoch losses, momentum state and parameters."""
        expected, got = read_metrics(self.out), read_metrics(out)
        assert trained_epochs(got) == list(range(1, EPOCHS + 1)), got
        assert [r["loss"] for r in got if "loss" in r] == [r["loss"] for r in expected if "loss" in r]
        mine, theirs = load_checkpoint(out / "last.pt"), load_checkpoint(self.out / "last.pt")
        assert mine["epoch"] == theirs["epoch"] == EPOCHS and mine["step"] == theirs["step"]
        assert mine["momentum"]["epochs_done"] == theirs["momentum"]["epochs_done"] == EPOCHS
        assert torch.equal(mine["momentum"]["ema"], theirs["momentum"]["ema"])
        assert mine["model"].keys() == theirs["model"].keys()
        assert all(torch.equal(mine["model"][k], theirs["model"][k]) for k in theirs["model"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    """The uninterrupted run every recovered run must reproduce."""
    folder = tmp_path_factory.mktemp("reference")
    ref = Reference(make_npz(folder / "tiny.npz"), folder / "run")
    result = run("train", *ref.args, "--out", ref.out)
    assert result.exit_code == 0, result.output
    assert trained_epochs(read_metrics(ref.out)) == list(range(1, EPOCHS + 1))
    return ref


@pytest.fixture(scope="module")
def stopped_run(reference, tmp_path_factory) -> Path:
    """The reference's run stopped with --stop-after 2 (last.pt and metrics at epoch 2); tests copy it."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    result = run("train", *reference.args, "--stop-after", "2", "--out", out)
    assert result.exit_code == 0, result.output
    assert trained_epochs(read_metrics(out)) == [1, 2] and load_checkpoint(out / "last.pt")["epoch"] == 2
    return out


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (none when it is not a folder) and its bytes."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# 1. Bad inputs: one line, exit 2, no traceback, no run left behind.
# ---------------------------------------------------------------------------------------------

class Ctx:
    """What a case builds its command from: a fresh folder, `out` (the --out the check looks at)
    and, on demand, the reference run (for cases that need a real checkpoint)."""

    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.tmp, self.out, self._request = tmp_path, tmp_path / "out", request

    @property
    def reference(self) -> Reference:
        return self._request.getfixturevalue("reference")

    def npz(self, **replace: np.ndarray) -> Path:
        return make_npz(self.tmp / "data.npz", **replace)

    def train_npz(self, *extra: str, **replace: np.ndarray) -> list[str]:
        return ["train", *tiny_args(self.npz(**replace)), *extra, "--out", str(self.out)]

    def split(self, indices: np.ndarray | str, name: str = "split.npy") -> list[str]:
        path = self.tmp / name
        if isinstance(indices, str):
            path.write_text(indices)
        else:
            np.save(path, indices)
        return ["train", "--dataset", "synthetic-lt", "--num-classes", "10", "--width", "16", "--device", "cpu",
                "--split", str(path), "--out", str(self.out)]

    def checkpoint(self, name: str, content: bytes) -> list[str]:
        path = self.tmp / name
        path.write_bytes(content)
        return ["eval", str(path), "--device", "cpu"]

    def reference_state(self) -> dict:
        return load_checkpoint(self.reference.out / "last.pt")


def _labels(*changes: tuple[int, int]) -> np.ndarray:
    labels = np.repeat(np.arange(3), 40).astype(np.int64)
    for position, value in changes:
        labels[position] = value
    return labels


def _unwritable_out(ctx: Ctx) -> list[str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into a folder of mode 0o500")
    locked = ctx.tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    ctx.out = locked / "run"
    return ctx.train_npz()


def _out_under_a_file(ctx: Ctx) -> list[str]:
    (ctx.tmp / "afile").write_text("not a folder\n")
    ctx.out = ctx.tmp / "afile" / "sub"
    return ctx.train_npz()


def _existing_run(ctx: Ctx) -> list[str]:
    ctx.out.mkdir()
    for name in ("config.json", "metrics.jsonl", "last.pt"):
        shutil.copyfile(ctx.reference.out / name, ctx.out / name)
    return ["train", *ctx.reference.args, "--out", str(ctx.out)]


def _cuda_7(ctx: Ctx) -> list[str]:
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    return ctx.train_npz("--device", "cuda:7")


def _other_methods_checkpoint_in_eval(ctx: Ctx) -> list[str]:
    """bcl-i weights under a config that says sdclr (whose model has a pruned twin)."""
    state = ctx.reference_state()
    state["config"]["method"] = "sdclr"
    torch.save(state, ctx.tmp / "other.pt")
    return ["eval", str(ctx.tmp / "other.pt"), "--device", "cpu"]


def _other_methods_checkpoint_on_resume(ctx: Ctx) -> list[str]:
    """A run directory whose config.json says simclr but whose last.pt a bcl-i run wrote."""
    ctx.out.mkdir()
    config = json.loads((ctx.reference.out / "config.json").read_text())
    (ctx.out / "config.json").write_text(json.dumps({**config, "method": "simclr", "boost": 0}))
    shutil.copyfile(ctx.reference.out / "last.pt", ctx.out / "last.pt")
    return ["train", "--resume", str(ctx.out)]


def _truncated_checkpoint(ctx: Ctx) -> list[str]:
    content = (ctx.reference.out / "last.pt").read_bytes()
    return ctx.checkpoint("truncated.pt", content[: len(content) // 2])


def _foreign_torch_file(ctx: Ctx) -> list[str]:
    torch.save({"weights": torch.zeros(3)}, ctx.tmp / "foreign.pt")
    return ["eval", str(ctx.tmp / "foreign.pt"), "--device", "cpu"]


def _json_is_a_directory(ctx: Ctx) -> list[str]:
    (ctx.tmp / "results").mkdir()
    return ["eval", str(ctx.reference.out), "--device", "cpu", "--json", str(ctx.tmp / "results")]


def _show_weight_2(ctx: Ctx) -> list[str]:
    ctx.out.mkdir()
    return ["show", "--weights", "2", "--out", str(ctx.out / "views.png")]


@dataclass(frozen=True)
class Case:
    build: Callable[[Ctx], list[str]]
    fragments: tuple[str, ...]
    """All must appear in the error line: the problem and (where it is specific) the fix."""
    cap_memory: bool = False
    """Run under an address-space cap (see `address_space_cap`)."""


CASES: dict[str, Case] = {
    # npz files
    "npz-float-images": Case(lambda c: c.train_npz(x_train=np.zeros((120, 32, 32, 3), np.float32)),
                             ("x_train is float32", "uint8")),
    "npz-one-channel": Case(lambda c: c.train_npz(x_train=np.zeros((120, 32, 32, 1), np.uint8)),
                            ("(120, 32, 32, 1)", "(N, H, W, 3)")),
    "npz-grey-no-channel-axis": Case(lambda c: c.train_npz(x_train=np.zeros((120, 32, 32), np.uint8)),
                                     ("(120, 32, 32)", "(N, H, W, 3)")),
    "npz-fewer-labels-than-images": Case(lambda c: c.train_npz(y_train=_labels()[:-1]),
                                         ("y_train", "(120,)", "one per image")),
    "npz-test-label-out-of-range": Case(lambda c: c.train_npz(y_test=_labels((0, 3))[::4]),
                                        ("y_test holds label 3", "relabel")),
    "npz-class-missing": Case(lambda c: c.train_npz(y_train=_labels((-1, 4))), ("class 3 has no images", "0..C-1")),
    "npz-negative-label": Case(lambda c: c.train_npz(y_train=_labels((5, -1))), ("label -1", "0..C-1")),
    "npz-float-labels": Case(lambda c: c.train_npz(y_train=_labels().astype(np.float32)),
                             ("y_train is float32", "integer labels")),
    "npz-empty-train": Case(lambda c: c.train_npz(x_train=np.zeros((0, 32, 32, 3), np.uint8),
                                                  y_train=np.zeros(0, np.int64)), ("x_train", "N > 0")),
    "npz-empty-test": Case(lambda c: c.train_npz(x_test=np.zeros((0, 32, 32, 3), np.uint8),
                                                 y_test=np.zeros(0, np.int64)), ("x_test", "N > 0")),
    "npz-label-2**40": Case(lambda c: c.train_npz(y_train=_labels((-1, 2 ** 40))), ("class 3 has no images",), cap_memory=True),
    "npz-data-dir-is-a-folder": Case(lambda c: ["train", "--dataset", "npz", "--data-dir", str(c.tmp), "--out",
                                                str(c.out)], ("is a directory", "FILE.npz")),
    # split (index) files, into synthetic-lt's pool of 10 x 500
    "split-out-of-range": Case(lambda c: c.split(np.array([0, 1, 5000])), ("index 5000", "[0, 5000)")),
    "split-negative": Case(lambda c: c.split(np.array([0, -1, 2])), ("index -1", "[0, 5000)")),
    "split-duplicated": Case(lambda c: c.split(np.array([7, 3, 9, 3, 7, 7])), ("repeats 3 indices", "remove")),
    "split-float": Case(lambda c: c.split(np.array([0.0, 1.0, 2.0])), ("float64", "int64")),
    "split-2d": Case(lambda c: c.split(np.arange(4).reshape(2, 2)), ("shape (2, 2)", "1-D")),
    "split-empty": Case(lambda c: c.split(np.array([], np.int64)), ("is empty",)),
    "split-text-file": Case(lambda c: c.split("0\n1\n2\n", "split.txt"), ("not a readable .npy", "numpy.save")),
    # flags
    "batch-size-0": Case(lambda c: c.train_npz("--batch-size", "0"), ("--batch-size", "at least 2")),
    "batch-size-1": Case(lambda c: c.train_npz("--batch-size", "1"), ("--batch-size", "at least 2")),
    "batch-size-above-the-data": Case(lambda c: c.train_npz("--batch-size", "512"),
                                      ("--batch-size", str(TRAIN_IMAGES))),
    "lr-nan": Case(lambda c: c.train_npz("--lr", "nan"), ("--lr",)),
    "epochs-negative": Case(lambda c: c.train_npz("--epochs", "-1"), ("--epochs", "-1")),
    "seed-negative": Case(lambda c: c.train_npz("--seed", "-1"), ("--seed", "[0, 4294967295]")),
    "seed-huge": Case(lambda c: c.train_npz("--seed", "99999999999999999999999"), ("--seed", "[0, 4294967295]")),
    "device-cuda-7": Case(_cuda_7, ("no CUDA GPU", "--device cpu")),
    # the run directory
    "out-unwritable": Case(_unwritable_out, ("Permission denied", "--out")),
    "out-under-a-file": Case(_out_under_a_file, ("afile", "--out")),
    "out-holds-a-run": Case(_existing_run, ("already holds a run", "--resume")),
    "resume-other-methods-checkpoint": Case(_other_methods_checkpoint_on_resume, ("written by a bcl-i run", "simclr")),
    # eval
    "eval-truncated-checkpoint": Case(_truncated_checkpoint, ("cannot read checkpoint", "damaged")),
    "eval-empty-file": Case(lambda c: c.checkpoint("empty.pt", b""), ("cannot read checkpoint", "damaged")),
    "eval-text-file": Case(lambda c: c.checkpoint("notes.pt", b"not a checkpoint\n"), ("cannot read checkpoint",)),
    "eval-foreign-torch-file": Case(_foreign_torch_file, ("not written by `cli.py train`",)),
    "eval-other-methods-checkpoint": Case(_other_methods_checkpoint_in_eval, ("do not fit a sdclr",)),
    "eval-json-is-a-directory": Case(_json_is_a_directory, ("is a directory", "file name")),
    # show
    "show-weight-2": Case(_show_weight_2, ("--weights '2'", "[0, 1]")),
}


@pytest.fixture
def address_space_cap():
    """A run-away allocation (a label of 2**40 sized as a class count) fails fast instead of
    swapping the machine to death."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    cap = used + 4 * 2 ** 30
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name == "out-holds-a-run" else name
                                  for name in CASES])
def test_bad_input_is_one_line_with_no_traceback_and_no_run_left(name, tmp_path, request):
    """A mistake must cost the user one readable line, not a traceback, a MemoryError or a
    half-made run directory that a later `train --out` refuses or `--resume` trips over."""
    case, ctx = CASES[name], Ctx(tmp_path, request)
    argv = case.build(ctx)
    before = files_under(ctx.out)
    if case.cap_memory:
        request.getfixturevalue("address_space_cap")
    try:
        result = run(*argv)
    finally:
        for folder in tmp_path.rglob("*"):
            if folder.is_dir():
                folder.chmod(0o700)
    assert_one_line_error(result, case.fragments[0])
    for fragment in case.fragments[1:]:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output
    if before:
        assert files_under(ctx.out) == before, "a refused command changed an existing run"
    else:
        assert files_under(ctx.out) == {}, "a refused command left files where it was asked to put a run"


# ---------------------------------------------------------------------------------------------
# 2-3. Killed processes: SIGKILL mid-epoch, SIGKILL mid-checkpoint-write, Ctrl-C.
# ---------------------------------------------------------------------------------------------

KILL_IN_CHECKPOINT_WRITE = """
import contextlib, os, runpy, signal, sys
import bcl_dali.runs.checkpoint as checkpoint
original, calls = checkpoint.atomic_path, []

@contextlib.contextmanager
def dies_in_the_write(path):
    calls.append(path)
    with original(path) as temp:
        yield temp
        if len(calls) == int(os.environ["KILL_AT_CHECKPOINT"]):
            written = temp.read_bytes()
            temp.write_bytes(written[: len(written) // 2])
            os.kill(os.getpid(), signal.SIGKILL)

checkpoint.atomic_path = dies_in_the_write
sys.argv = ["cli.py", *sys.argv[1:]]
runpy.run_path("cli.py", run_name="__main__")
"""
"""Runs cli.py with the N-th checkpoint write killed (SIGKILL) half-way, before its rename."""


PAUSED_IN_EPOCH_2 = """
import runpy, sys, time
from bcl_dali.train.trainer import Trainer
train_step = Trainer.train_step

def pauses_in_epoch_2(self, *args):
    loss = train_step(self, *args)
    if self.step == 6:
        time.sleep(600)
    return loss

Trainer.train_step = pauses_in_epoch_2
sys.argv = ["cli.py", *sys.argv[1:]]
runpy.run_path("cli.py", run_name="__main__")
"""
"""Runs cli.py paused after the second of epoch 2's four steps, so a signal sent once epoch 1 is in
metrics.jsonl always lands in epoch 2 (the tiny run would otherwise finish first on a loaded machine)."""


def _default_sigint() -> None:
    """A test run in the background (nohup, `&` in a script) inherits SIGINT ignored, and Python
    then never raises KeyboardInterrupt; the child must see Ctrl-C as a terminal delivers it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(tmp_path: Path, *argv: str, code: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """cli.py (or `code` standing in for it) in a child process, its output into files beside the test's."""
    command = [sys.executable, "-c", code] if code else [sys.executable, str(REPO / "cli.py")]
    log = tmp_path / f"child-{time.monotonic_ns()}"
    with open(f"{log}.out", "w") as stdout, open(f"{log}.err", "w") as stderr:
        process = subprocess.Popen([*command, *argv], cwd=REPO, env={**os.environ, **(env or {})},
                                   stdout=stdout, stderr=stderr, preexec_fn=_default_sigint)
    process.logs = (Path(f"{log}.out"), Path(f"{log}.err"))
    return process


def child_output(process: subprocess.Popen) -> str:
    return "".join(log.read_text() for log in process.logs)


def finished_epochs(out: Path) -> list[int]:
    """Epochs with a whole record in metrics.jsonl so far (a line being written is skipped)."""
    try:
        lines = (out / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    epochs = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "loss" in record:
            epochs.append(record["epoch"])
    return epochs


def wait_for_epoch(process: subprocess.Popen, out: Path, epoch: int = 1, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not finished_epochs(out) or finished_epochs(out)[-1] < epoch:
        if process.poll() is not None:
            pytest.fail(f"training ended ({process.returncode}) before epoch {epoch}:\n{child_output(process)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no epoch {epoch} after {timeout} s:\n{child_output(process)}")
        time.sleep(0.005)


@pytest.fixture
def children():
    """Subprocesses a test started; any still running at its end is killed (by its own pid)."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.slow
def test_sigkill_in_the_middle_of_an_epoch_then_resume_ends_as_if_never_killed(reference, tmp_path, children):
    """`kill -9` (OOM killer, pre-empted job) gives no chance to save: the run must continue from
    its last checkpoint to exactly the losses and weights it would have reached."""
    out = tmp_path / "run"
    children.append(process := start(tmp_path, "train", *reference.args, "--snapshot-every", "1", "--out", str(out),
                                     code=PAUSED_IN_EPOCH_2))
    wait_for_epoch(process, out, 1)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL

    kept = load_checkpoint(out / "last.pt")["epoch"]
    assert kept == 1 and finished_epochs(out) == [1]
    resumed = run("train", "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming {out} at epoch {kept}/{EPOCHS}" in resumed.stdout
    reference.assert_same_run(out)
    assert not list(out.glob(".*")), "a killed writer's temporary file was left in the run"


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one_and_resumes_exactly(reference, tmp_path,
                                                                                        children):
    """A kill while last.pt is being rewritten must leave the previous last.pt whole (the write goes
    to a temporary file renamed at the end): the checkpoint of epoch 2 (the third write: epoch 0 at
    creation, then epochs 1 and 2) is killed half-way, last.pt still holds epoch 1."""
    out = tmp_path / "run"
    children.append(process := start(tmp_path, "train", *reference.args, "--snapshot-every", "1", "--out", str(out),
                                     code=KILL_IN_CHECKPOINT_WRITE, env={"KILL_AT_CHECKPOINT": "3"}))
    assert process.wait(timeout=180) == -signal.SIGKILL, child_output(process)

    assert list(out.glob(".tmp-last.pt.*")), "the kill did not happen inside the checkpoint write"
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 1 and state["momentum"]["epochs_done"] == 1
    assert finished_epochs(out) == [1]
    resumed = run("train", "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    reference.assert_same_run(out)
    assert not list(out.glob(".*")), "the half-written temporary checkpoint was left in the run"


def _stopped_by(signal_number: int, status: int, reference, tmp_path, children) -> tuple[Path, str]:
    """A run sent `signal_number` in its second epoch: it exits with `status`, says how to resume
    without a traceback, and its last.pt holds epoch 1 (kept in memory, not yet saved). Its directory and stderr."""
    out = tmp_path / "run"
    children.append(process := start(tmp_path, "train", *reference.args, "--out", str(out), code=PAUSED_IN_EPOCH_2))
    wait_for_epoch(process, out, 1)
    process.send_signal(signal_number)
    assert process.wait(timeout=60) == status, child_output(process)
    stderr = process.logs[1].read_text()
    assert f"--resume {out}" in stderr and "Traceback" not in stderr, stderr
    assert "in epoch 2;" in stderr and finished_epochs(out) == [1], stderr
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    return out, stderr


@pytest.mark.slow
def test_sigterm_stops_as_ctrl_c_does_and_exits_143(reference, tmp_path, children):
    """A scheduler's time limit or `kill` sends SIGTERM: the run stops as on Ctrl-C (the last finished
    epoch saved, how to go on said), with the status a shell reports for SIGTERM. Mutation caught: no
    SIGTERM handler (the process dies by the signal, -15)."""
    _, stderr = _stopped_by(signal.SIGTERM, 143, reference, tmp_path, children)
    assert "terminated in epoch" in stderr


PAUSED_LOADING_DATA = """
import os, pathlib, runpy, sys, time
import bcl_dali.config as config
def loads_slowly(self, *args, **kwargs):
    pathlib.Path(os.environ["LOADING"]).touch()
    time.sleep(600)
config.TrainConfig.load_data = loads_slowly
sys.argv = ["cli.py", *sys.argv[1:]]
runpy.run_path("cli.py", run_name="__main__")
"""
"""Runs cli.py paused while it loads the data (before any training), after touching $LOADING."""


@pytest.mark.slow
def test_sigterm_before_training_starts_is_one_line_and_143(reference, tmp_path, children):
    """A scheduler may stop a job while it still loads its data: the same status and one line, no
    traceback, no half-made run. Mutation caught (tried): the handler set only around the epochs (the
    process dies by the signal, -15)."""
    loading = tmp_path / "loading"
    children.append(process := start(tmp_path, "train", *reference.args, "--out", str(tmp_path / "run"),
                                     code=PAUSED_LOADING_DATA, env={"LOADING": str(loading)}))
    deadline = time.monotonic() + 120
    while not loading.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143, child_output(process)
    assert process.logs[1].read_text().strip().splitlines()[-1] == "stopped: terminated"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ctrl_c_exits_130_saves_the_last_finished_epoch_and_says_how_to_resume(reference, tmp_path, children):
    """Ctrl-C between the minute-apart checkpoints must still save the last finished epoch (kept in
    memory), exit as a shell expects of SIGINT, and tell the user the command that continues;
    that command must then end exactly where an uninterrupted run ends."""
    out, _ = _stopped_by(signal.SIGINT, 130, reference, tmp_path, children)
    assert finished_epochs(out)[-1] < EPOCHS
    resumed = run("train", "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    reference.assert_same_run(out)


# ---------------------------------------------------------------------------------------------
# 4. A full disk while writing a checkpoint.
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_previous_checkpoint(reference, tmp_path,
                                                                                       monkeypatch):
    """ENOSPC must not become a traceback nor a damaged last.pt: the user frees space and resumes."""
    out = tmp_path / "run"
    write_bytes, checkpoints, previous = Path.write_bytes, [], {}

    def disk_fills_up(self: Path, data) -> int:
        if self.name.startswith(".tmp-last.pt."):
            checkpoints.append(self)
            if len(checkpoints) == 3:  # epoch 0 at creation, epoch 1, then epoch 2's runs out of space
                previous["last.pt"] = (out / "last.pt").read_bytes()
                write_bytes(self, bytes(memoryview(data)[: len(data) // 3]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(self, data)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_bytes", disk_fills_up)
        result = run("train", *reference.args, "--snapshot-every", "1", "--out", out)
    assert_error_after_progress(result, "disk is full")
    assert "--resume" in result.stderr
    assert len(checkpoints) == 3
    assert (out / "last.pt").read_bytes() == previous["last.pt"]
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*")), "the partial checkpoint was left in the run"
    assert finished_epochs(out) == [1]

    resumed = run("train", "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    reference.assert_same_run(out)


# ---------------------------------------------------------------------------------------------
# 5. One process at a time.
# ---------------------------------------------------------------------------------------------

def test_a_second_process_cannot_resume_a_run_being_trained(stopped_run, tmp_path):
    """Two processes training one directory would interleave checkpoints and metrics of two runs."""
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    before = files_under(out)
    with RunDir.open(out).lock():
        result = run("train", "--resume", out)
        assert_one_line_error(result, "being trained by another process")
        assert files_under(out) == before
    resumed = run("train", "--resume", out, "--stop-after", "3")
    assert resumed.exit_code == 0, resumed.output
    assert trained_epochs(read_metrics(out)) == [1, 2, 3]


# ---------------------------------------------------------------------------------------------
# 6. A torn line in metrics.jsonl.
# ---------------------------------------------------------------------------------------------

def _append_half_a_record(metrics: Path) -> None:
    """A record written after the checkpoint (last.pt at most once a minute), cut by a kill."""
    line = json.dumps({"epoch": 3, "loss": 6.0, "lr": 0.375, "seconds": 0.5})
    with metrics.open("a") as file:
        file.write(line[: len(line) // 2])


def _tear_the_last_record(metrics: Path) -> None:
    """The record of the checkpointed epoch (written right after last.pt), cut by a kill."""
    text = metrics.read_text()
    last = text.rstrip("\n").rfind("\n") + 1
    metrics.write_text(text[: last + (len(text) - last) // 2])


@pytest.mark.slow
@pytest.mark.parametrize("tear", [_append_half_a_record, _tear_the_last_record], ids=["appended", "last-record"])
def test_a_torn_metrics_line_is_repaired_by_resume(reference, stopped_run, tmp_path, tear):
    """A kill during a metrics append must not make the run unresumable, nor leave an unparsable,
    duplicated or missing epoch in the file programs read the run's history from."""
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    tear(out / "metrics.jsonl")
    resumed = run("train", "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    records = read_metrics(out)  # every line whole JSON
    assert trained_epochs(records) == list(range(1, EPOCHS + 1)), records
    reference.assert_same_run(out)


# ---------------------------------------------------------------------------------------------
# 7. A run killed between its config and its first checkpoint.
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_run_with_a_config_but_no_checkpoint_is_started_over_by_resume(reference, tmp_path):
    """A kill while a run is being created leaves config.json (and perhaps the temporary file of the
    first checkpoint) but no last.pt: `--out` refuses the directory and says to resume, and
    `--resume` starts it over and ends as the uninterrupted run."""
    out = tmp_path / "run"
    out.mkdir()
    shutil.copyfile(reference.out / "config.json", out / "config.json")
    (out / ".tmp-last.pt.abc123.pt").write_bytes(b"half a checkpoint")

    assert_one_line_error(run("train", *reference.args, "--out", out), f"--resume {out}")
    resumed = run("train", "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    assert "starting it over" in resumed.stdout
    reference.assert_same_run(out)
    assert not list(out.glob(".*"))
