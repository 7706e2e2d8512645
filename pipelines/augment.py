"""The augmentation's stages, from a batch's parameter-table rows to the uint8 views.

Three kinds of stage, each a DALI operator of the graph (pipelines.dali_graph): the crop (PIL's
bicubic RandomResizedCrop and the flip, gathered straight from the resident training images), the
colour stage (ColorJitter's six blend slots around the hue, then grayscale), and one stage per
RandAugment slot. Views are the frames of one (2B, H, W, 3) tensor; every operation runs over all
of them at once.
"""
from __future__ import annotations

import functools

import torch

from pipelines.blur import gaussian_blur
from pipelines.colour import adjust_hue, enhance, grayscale
from pipelines.ops import POINT_TABLES
from pipelines.rand_stages import channel_tables, cutout, enhance_stage, warp
from pipelines.resample import CropTables, resized_crop
from pipelines.resize import resize_crops
from pipelines.rows import schedule
from pipelines.slot import Stage
from pipelines.table import JITTER_SLOTS, PRE_HUE_SLOTS, Layout


class Augmentation:
    """The stages of one graph: k slots and S x S views, on one device.

    Two first stages: `crop` gathers from resident square images and makes views of their own size;
    `resize` takes crops an image folder's decoder made (pipelines.dali_folder) to views of `size`.
    """

    def __init__(self, images: torch.Tensor | None, num_slots: int, size: int | None = None,
                 device: torch.device | None = None, blur: bool = False) -> None:
        """`images`: the uint8 (N, S, S, 3) training images, on the device the stages run on; or None
        for decoded crops, with the views' `size` and the `device`. `blur`: the recipe's Gaussian blur
        ends the colour stage."""
        if images is not None:
            height, width = images.shape[1:3]
            if height != width:
                raise ValueError(f"the augmentation makes square views of square images, got {height}x{width}")
            size, device = height, images.device
            self.crop_tables = CropTables(height, height, device)
        self.images = images
        self.size = size
        self.layout = Layout(num_slots, size, blur)
        self.rows = schedule(device, size)
        self._channel_tables = functools.partial(
            channel_tables, points=torch.as_tensor(POINT_TABLES.values, device=device))

    def crop(self, table: torch.Tensor) -> torch.Tensor:
        take = functools.partial(self.layout.take, table)
        sources = self.images[take("image").long()]
        return resized_crop(sources, self.crop_tables, take("crop").long(), take("flip").long())

    def resize(self, crops: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Decoded crops, padded to the batch's largest -> the resized, flipped uint8 views."""
        take = functools.partial(self.layout.take, table)
        box = take("crop").long()
        return resize_crops(crops, box[:, 2], box[:, 3], take("flip").long(), self.size, dense=self.rows.dense)

    def after_crop(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Every stage after the crop or resize, in order: colour, then the RandAugment slots."""
        x = self.colour(x, table)
        for s in range(self.layout.num_slots):
            x = self.slot(s, x, table)
        return x

    def colour(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        take = functools.partial(self.layout.take, table)
        factor, grey, mean = (take(name).float() for name in ("jitter_factor", "jitter_grey", "jitter_mean"))
        x = x.float()
        for j in range(JITTER_SLOTS):
            if j == PRE_HUE_SLOTS:
                x = self.rows.apply(adjust_hue, x, take("hue_active") > 0, take("hue_shift"))
            x = self.rows.apply(enhance, x, factor[:, j] != 1, factor[:, j], grey[:, j], mean[:, j])
        x = self.rows.apply(grayscale, x, take("grayscale") > 0).to(torch.uint8)
        if self.layout.blur:
            columns = (take(name).long() for name in ("blur_radius", "blur_ww", "blur_fw"))
            x = self.rows.apply(gaussian_blur, x, take("blur_active") > 0, *columns)
        return x

    def slot(self, s: int, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """RandAugment slot s: each view runs the one stage its op needs, if any."""
        take = functools.partial(self.layout.take, table)
        stage = take(f"slot{s}_stage")
        x = self.rows.apply(warp, x, stage == Stage.WARP, take(f"slot{s}_affine"), take(f"slot{s}_columns"),
                            take(f"slot{s}_rows"))
        x = self.rows.apply(enhance_stage, x, stage == Stage.ENHANCE, take(f"slot{s}_enhance"))
        tabled = (stage == Stage.AUTOCONTRAST) | (stage == Stage.POINT) | (stage == Stage.EQUALIZE)
        x = self.rows.apply(self._channel_tables, x, tabled, stage, take(f"slot{s}_point"))
        return self.rows.apply(cutout, x, stage == Stage.CUTOUT, take(f"slot{s}_cutout"))

    def __call__(self, table: torch.Tensor) -> torch.Tensor:
        """All stages in order, outside DALI: the uint8 views of the table's rows."""
        return self.after_crop(self.crop(table), table)
