"""Which executor turns a run's images and epoch plans into views, in the precision the run trains in."""
from __future__ import annotations

import torch

from bcl_dali.config import TrainConfig
from bcl_dali.data import ImageSource, LongTailedData
from bcl_dali.device import cpu_count, uses_bf16
from bcl_dali.distributed import World
from bcl_dali.errors import UserError
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.reference import ReferenceExecutor


def build_executor(config: TrainConfig, data: LongTailedData, device: torch.device,
                   world: World = World()) -> DaliExecutor | ReferenceExecutor:
    """The executor of one process: it augments that process's share of every global batch, with the
    node's cores shared among the node's processes unless --workers says otherwise."""
    images = data.train.images
    if config.executor != "reference" and config.graphs_augmentation and device.type != "cuda":
        raise UserError(f"--cuda-graphs {config.cuda_graphs} needs a GPU; use --device cuda, or --cuda-graphs none "
                        "on the CPU")
    return make_executor(config.executor, images, size=images.view_size(config.image_size), boost=config.boost,
                         batch_size=config.batch_size // world.size, device=device,
                         workers=default_workers(world) if config.workers is None else config.workers,
                         dtype=torch.float16 if uses_bf16(config.precision, device) else torch.float32,
                         blur=config.blur, graph=config.graphs_augmentation)


def default_workers(world: World) -> int:
    """The node's cores shared among the node's processes."""
    return max(1, cpu_count() // world.local_size)


def make_executor(kind: str, images: ImageSource, *, size: int, boost: int, batch_size: int, device: torch.device,
                  workers: int, dtype: torch.dtype, blur: bool, graph: bool = False) -> DaliExecutor | ReferenceExecutor:
    """`images` to views: "dali" (the fused graph on `device`, `batch_size` samples per batch, in `dtype`)
    or "reference" (the reference's PIL transforms in `workers` processes)."""
    if kind == "reference":
        return ReferenceExecutor(images, size=size, workers=workers)
    return DaliExecutor(images.dali_input(), size=size, num_slots=boost, batch_size=batch_size, device=device,
                        threads=max(1, workers), dtype=dtype, blur=blur, graph=graph)
