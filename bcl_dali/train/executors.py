"""Which executor turns a run's images and epoch plans into views, in the precision the run trains in."""
from __future__ import annotations

import torch

from bcl_dali.config import TrainConfig
from bcl_dali.data import LongTailedData
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
    size = images.view_size(config.image_size)
    workers = config.workers if config.workers is not None else max(1, cpu_count() // world.local_size)
    if config.executor == "reference":
        return ReferenceExecutor(images, size=size, workers=workers)
    dtype = torch.float16 if uses_bf16(config.precision, device) else torch.float32
    if config.graphs_augmentation and device.type != "cuda":
        raise UserError(f"--cuda-graphs {config.cuda_graphs} needs a GPU; use --device cuda, or --cuda-graphs none "
                        "on the CPU")
    return DaliExecutor(images.dali_input(), size=size, num_slots=config.rand_k, batch_size=config.batch_size // world.size,
                        device=device, threads=max(1, workers), dtype=dtype, blur=config.blur,
                        graph=config.graphs_augmentation)
