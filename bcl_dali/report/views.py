"""A picture of what BCL does: the same images under both views at several weights.

A head sample (low momentum loss, weight near 0) gets the plain SimCLR augmentation; a tail sample
(weight near 1) gets k RandAugment ops at the strongest magnitude. Rows are labelled with the
weight and the view; the first row holds the un-augmented images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from bcl_dali.atomic import atomic_path
from bcl_dali.data import ArrayImages, load_pool
from bcl_dali.device import cpu_count
from bcl_dali.errors import UserError
from bcl_dali.policy import BoostPolicy
from bcl_dali.runs.outputs import check_output_path
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.normalize import MEAN, STD
from bcl_dali.pipelines.plan import EpochPlan
from bcl_dali.pipelines.reference import ReferenceExecutor

LABEL_WIDTH = 64
PADDING = 2


def make_executor(name: str, images: ArrayImages, k: int) -> DaliExecutor | ReferenceExecutor:
    """A small in-process executor on the CPU for a handful of in-memory images."""
    size = images.view_size(0)
    if name == "reference":
        return ReferenceExecutor(images, size=size, workers=0)
    return DaliExecutor(images.dali_input(), size=size, num_slots=k, batch_size=len(images),
                        device=torch.device("cpu"), threads=cpu_count())


def augmentation_rows(executor, source: ArrayImages, weights: list[float], k: int,
                      seed: int) -> list[tuple[str, np.ndarray]]:
    """(label, uint8 NHWC row) for the originals, then view 1 and view 2 at each weight."""
    images = source.pixels
    rows = [("original", images)]
    rng = np.random.default_rng(seed)
    n = len(images)
    for weight in weights:
        params = BoostPolicy(k).sample(np.full(n, weight), rng, images.shape[1:3])
        ((_, views),) = list(executor.epoch(EpochPlan(np.arange(n), n, params)))
        view1, view2 = denormalize(views).reshape(2, n, *images.shape[1:])
        rows += [(f"w={weight:g} v1", view1), (f"w={weight:g} v2", view2)]
    return rows


def denormalize(views: torch.Tensor) -> np.ndarray:
    """Normalised NCHW views (any float dtype, any device) -> uint8 NHWC."""
    mean = torch.tensor(MEAN, device=views.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=views.device).view(1, 3, 1, 1)
    pixels = (views.float() * std + mean) * 255
    return pixels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def grid_image(rows: list[tuple[str, np.ndarray]]) -> Image.Image:
    """One row of images per entry, its label written in a margin on the left."""
    tiles = torch.as_tensor(np.concatenate([images for _, images in rows])).permute(0, 3, 1, 2)
    per_row = len(rows[0][1])
    grid = make_grid(tiles, nrow=per_row, padding=PADDING, pad_value=255).permute(1, 2, 0).numpy()
    canvas = Image.new("RGB", (grid.shape[1] + LABEL_WIDTH, grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid), (LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(canvas)
    row_height = rows[0][1].shape[1] + PADDING
    for r, (label, _) in enumerate(rows):
        draw.text((4, PADDING + r * row_height + row_height // 2 - 6), label, fill="black")
    return canvas


def save_picture(picture: Image.Image, out: Path) -> None:
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out {out}: give a .png or .jpg file name")
    check_output_path(out, "--out")
    with atomic_path(out) as temp:
        picture.save(temp)


def parse_weights(text: str) -> list[float]:
    """--weights' comma-separated BCL weights in [0, 1]."""
    try:
        levels = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--weights {text!r}: give numbers in [0, 1] separated by commas, e.g. 0,0.5,1") from None
    if not all(0.0 <= w <= 1.0 for w in levels):
        raise UserError(f"--weights {text!r}: every weight must lie in [0, 1]")
    return levels


def draw_augmentation(out: Path, *, executor: str = "dali", weights: list[float] = (0.0, 0.5, 1.0),
                      boost: int = 1, count: int = 8, seed: int = 0, dataset: str = "synthetic-lt",
                      data_seed: int = 0, data_dir: Path | None = None) -> str:
    """`show`: `count` images of an in-memory data set drawn by `seed`, under both views at each
    weight, with `boost` boosted slots, written to `out`; returns what was written, in one line."""
    check_output_path(out, "--out")
    pool = load_pool(dataset, data_dir=data_dir, seed=data_seed)
    images = pool.images(np.sort(np.random.default_rng(seed).choice(len(pool.labels), count, replace=False)))
    rows = augmentation_rows(make_executor(executor, images, boost), images, list(weights), boost, seed)
    save_picture(grid_image(rows), out)
    return f"wrote {out}: {count} images, weights {', '.join(f'{w:g}' for w in weights)}, {executor} executor"
