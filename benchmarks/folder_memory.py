"""Memory of one folder iteration with one huge image among ordinary ones, against the same without it.

Padding every crop of an iteration to its largest would make one 6000 x 6000 JPEG among 343 files cost
13 GB of RAM instead of 1. The resize works in chunks of crops of similar size under a budget
(pipelines.resize), so the huge image costs about its own pixels. Peak memory is the process's resident
set on the CPU (measured in a fresh process, `python -m bcl_dali.benchmarks.folder_memory ROOT SIZE`), and
torch's peak allocation on a GPU.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bcl_dali.benchmarks import child_environment
from bcl_dali.data.folder import list_files
from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.plan import EpochPlan

HUGE_SIDE = 6000
FILES = 16
ORDINARY_SIDES = (256, 500)


def write_pair(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Two folders of FILES JPEGs with a train.txt each, the same but for one file, HUGE_SIDE square in the second."""
    rng = np.random.default_rng(seed)
    sides = rng.integers(*ORDINARY_SIDES, (FILES, 2))
    folders = []
    for name, huge in (("ordinary", False), ("huge", True)):
        folder = root / name
        (folder / "train").mkdir(parents=True, exist_ok=True)
        for i, (height, width) in enumerate(sides):
            if huge and i == FILES // 2:
                height = width = HUGE_SIDE
            rows, columns = np.mgrid[0:height, 0:width]
            pixels = np.stack([columns * 255 // width, rows * 255 // height, (rows + columns) % 256], -1)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / "train" / f"{i:02d}.jpg", quality=90)
        (folder / "train.txt").write_text("".join(f"train/{i:02d}.jpg {i % 3}\n" for i in range(FILES)))
        folders.append(folder)
    return folders[0], folders[1]


def one_iteration(root: Path, size: int, device: torch.device) -> None:
    """Every file of `root/train.txt` decoded and augmented to `size`-pixel views in one DALI iteration."""
    files = list_files(root, root / "train.txt")
    rng = np.random.default_rng(0)
    order = np.arange(len(files))
    params = BoostPolicy(2, crop_scale=(0.08, 1.0), blur=True).sample(rng.random(len(files)), rng,
                                                                      (files.heights, files.widths))
    executor = DaliExecutor(files.dali_input(), size=size, num_slots=2, batch_size=len(files), device=device, threads=2,
                                  batches_together=1, blur=True)
    for _ in executor.epoch(EpochPlan(order, len(files), params)):
        pass


def peak_on_the_cpu(root: Path, size: int) -> int:
    """Peak resident bytes of a fresh process that runs `one_iteration` on the CPU."""
    done = subprocess.run([sys.executable, "-m", "bcl_dali.benchmarks.folder_memory", str(root), str(size)],
                          capture_output=True, text=True, check=True, env=child_environment())
    return json.loads(done.stdout.splitlines()[-1])["peak_bytes"]


def peak_on_the_gpu(root: Path, size: int, device: torch.device) -> int:
    """torch's peak allocation on the GPU during `one_iteration`."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    one_iteration(root, size, device)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def compare(root: Path, size: int, device: torch.device) -> dict:
    """Peak memory with and without the huge image, and their ratio."""
    ordinary, huge = write_pair(root)
    measure = peak_on_the_cpu if device.type == "cpu" else lambda folder, side: peak_on_the_gpu(folder, side, device)
    without, with_huge = measure(ordinary, size), measure(huge, size)
    return {"benchmark": "folder_memory", "device": str(device), "view_size": size, "files": FILES,
            "huge_side": HUGE_SIDE, "peak_bytes_without": without, "peak_bytes_with": with_huge,
            "ratio": with_huge / without}


if __name__ == "__main__":
    one_iteration(Path(sys.argv[1]), int(sys.argv[2]), torch.device("cpu"))
    print(json.dumps({"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
