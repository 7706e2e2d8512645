"""Several CPU processes joined by gloo: a function run in them as torchrun would start them, the
training work they do for the distributed tests, and `cli.py` launched under torchrun itself."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist
import torch.multiprocessing

from bcl_dali.config import TrainConfig
from bcl_dali.distributed import World
from bcl_dali.train.executors import build_executor
from bcl_dali.train.trainer import Trainer
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.plan import share as plan_share
from tests.paths import REPO

CPU = torch.device("cpu")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(world_size: int, function: Callable, *args) -> None:
    """`function(*args)` in `world_size` processes with torchrun's environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT)."""
    torch.multiprocessing.spawn(_entry, args=(world_size, free_port(), function, args), nprocs=world_size, join=True)


def _entry(rank: int, world_size: int, port: int, function: Callable, args: tuple) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        function(*args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Models built inside are of `dtype` (these functions also run in the test process itself)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def tiny_config(method: str, batch_size: int, epochs: int = 2) -> TrainConfig:
    """A small learning rate: at the demonstration's 0.5 and batches of 32, SGD here amplifies a
    difference in the last bit tenfold per step (one thread against two shows it), which would hide
    whether two runs compute the same thing."""
    return TrainConfig(method=method, dataset="synthetic-lt", num_classes=3, width=16, batch_size=batch_size,
                       epochs=epochs, warmup_epochs=1, lr=0.01, device="cpu", workers=1, seed=5).resolve()


def one_step(out: Path, method: str, views: torch.Tensor, indices: torch.Tensor, batch_size: int) -> None:
    """One optimiser step on this process's share of a global batch (`views`: view 1 of every sample,
    then view 2, in the dtype the model is built in), in a run of batches of `batch_size` (the step
    may be a short last batch); writes the local losses, the model and the momentum state."""
    world = World.from_environment()
    world.start(CPU)
    config = tiny_config(method, batch_size)
    with default_dtype(views.dtype):
        trainer = Trainer(config, config.load_data(), CPU, executor=None, world=world)
    initial = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trainer.method.start_epoch(trainer.model)
    share = plan_share(world.rank, world.size, len(indices))
    first, second = views.chunk(2)
    loss = trainer.train_step(indices[share], torch.cat([first[share], second[share]]), len(indices))
    torch.save({"loss": loss.detach(), "model": trainer.model.state_dict(), "initial": initial,
                "ema": trainer.momentum.ema}, out / f"rank{world.rank}.pt")


def epochs(out: Path, method: str, batch_size: int, count: int, dtype: torch.dtype = torch.float32) -> None:
    """`count` epochs with the DALI CPU executor, the model built in `dtype`, then the next epoch's
    plan; writes, per epoch, the plan's augmentation decisions and the momentum state after it, and the
    next plan's decisions."""
    world = World.from_environment()
    world.start(CPU)
    config = tiny_config(method, batch_size, count + 1)
    data = config.load_data()
    with default_dtype(dtype):
        trainer = Trainer(config, data, CPU, build_executor(config, data, CPU, world), world)
    plans, planned = [], trainer.plan_epoch
    trainer.plan_epoch = lambda: plans.append(planned()) or plans[-1]
    records = []
    for _ in range(count):
        trainer.train_epoch()
        records.append(_decisions(plans[-1][0]) | {"ema": trainer.momentum.ema.clone()})
    records.append(_decisions(trainer.plan_epoch()[0]))
    torch.save(records, out / f"rank{world.rank}.pt")


def _decisions(plan: EpochPlan) -> dict:
    params = plan.params.view1
    return {"order": plan.order, "applied": params.op_applied, "op": params.op_id, "magnitude": params.op_magnitude}


def launch(*args: str) -> subprocess.Popen:
    """`python ARGS` in the repository, on one thread per process whatever launches it, so runs
    launched differently compute the same sums."""
    return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(processes: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    """Wait for every process; on a timeout or an error SIGTERM them, which torchrun passes on to
    its workers (a SIGKILL would leave them waiting for their peers)."""
    try:
        outputs = [process.communicate(timeout=600) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def torchrun(*args: str) -> subprocess.Popen:
    """cli.py under torchrun, two processes on this node; `finish` waits for it."""
    return launch("-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "cli.py", *args)


def two_nodes(*args: str) -> list[subprocess.Popen]:
    """cli.py under two torchrun invocations of one process each, meeting through c10d as two nodes would."""
    endpoint = f"127.0.0.1:{free_port()}"
    return [launch("-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", f"--node-rank={rank}",
                   "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", "--rdzv-id=bcl-test",
                   "--rdzv-conf=join_timeout=120", "cli.py", *args)
            for rank in range(2)]
