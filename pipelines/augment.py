"""The augmentation's stages, from an iteration's plan to the uint8 views.

The first stage makes views of S x S pixels: `crop` (PIL's bicubic RandomResizedCrop and the flip,
gathered straight from the resident training images) or `resize` (the same from the crops an image
folder's decoder made); both are pipelines.resize. Then the colour stage (ColorJitter's six blend slots around the hue,
grayscale, the recipe's blur) and one stage per RandAugment slot. Views are the frames of one
(V, S, S, 3) tensor; every operation runs over all of them at once, each masked step on the schedule
of the plan (pipelines.steps).
"""
from __future__ import annotations

import functools

import torch

from bcl_dali.pipelines.blur import gaussian_blur
from bcl_dali.pipelines.colour import adjust_hue, enhance, grayscale
from bcl_dali.pipelines.iteration import IterationPlan, plan_on_the_fly
from bcl_dali.pipelines.resize import TapTables, columns_of, resize_resident, resize_views
from bcl_dali.pipelines import slot_kernels
from bcl_dali.pipelines.steps import DenseSteps, SparseSteps, Take, dense_for
from bcl_dali.pipelines.table import JITTER_SLOTS, PRE_HUE_SLOTS, Layout

Steps = DenseSteps | SparseSteps


class Augmentation:
    """The stages of one graph: k slots and S x S views, on one device."""

    def __init__(self, images: torch.Tensor | None, num_slots: int, size: int | None = None,
                 device: torch.device | None = None, blur: bool = False) -> None:
        """`images`: the uint8 (N, S, S, 3) training images, moved to `device` (default: where they are)
        once, already laid out for the crop; or None for decoded crops, with the views' `size` and the
        `device`. `blur`: the recipe's Gaussian blur ends the colour stage."""
        if images is not None:
            height, width = images.shape[1:3]
            if height != width:
                raise ValueError(f"the augmentation makes square views of square images, got {height}x{width}")
            size, device = height, device or images.device
        self.columns = None if images is None else columns_of(images).contiguous().to(device)
        """The resident images as the crop's horizontal pass reads them (pipelines.resize)."""
        self.taps = None if images is None else TapTables(size, size, device)
        self.size = size
        self.device = device
        self.layout = Layout(num_slots, size, blur)
        self.dense = dense_for(device, size)
        """The device's schedule for these views (pipelines.steps); the executor plans accordingly."""

    def take(self, plan: IterationPlan) -> Take:
        return functools.partial(self.layout.take, plan.table)

    def crop(self, plan: IterationPlan) -> torch.Tensor:
        take = self.take(plan)
        return resize_resident(self.columns, self.taps, take("crop").long(), take("image").long(), take("flip").long(),
                               self.size)

    def resize(self, crops: list[torch.Tensor], plan: IterationPlan) -> torch.Tensor:
        """Decoded crops (each sample's union of its views' boxes) -> the resized, flipped uint8 views."""
        return resize_views(crops, plan.resize, self.take(plan)("flip").long(), self.size, plan.views)

    def after_crop(self, x: torch.Tensor, plan: IterationPlan) -> torch.Tensor:
        """Every stage after the crop or resize, in order: colour, then the RandAugment slots."""
        steps = plan.steps(self.layout)
        x = self.colour(x, plan, steps)
        for s in range(self.layout.num_slots):
            x = self.slot(s, x, plan, steps)
        return x

    def colour(self, x: torch.Tensor, plan: IterationPlan, steps: Steps) -> torch.Tensor:
        take = self.take(plan)
        factor, grey, mean = (take(name).float() for name in ("jitter_factor", "jitter_grey", "jitter_mean"))
        x = x.float()
        for j in range(JITTER_SLOTS):
            if j == PRE_HUE_SLOTS:
                x = steps.apply("hue", adjust_hue, x, take("hue_shift"))
            x = steps.apply(f"jitter{j}", enhance, x, factor[:, j], grey[:, j], mean[:, j])
        x = steps.apply("grayscale", grayscale, x).to(torch.uint8)
        if self.layout.blur:
            x = steps.apply("blur", gaussian_blur, x, *(take(name).long() for name in ("blur_radius", "blur_ww", "blur_fw")))
        return x

    def slot(self, s: int, x: torch.Tensor, plan: IterationPlan, steps: Steps) -> torch.Tensor:
        """RandAugment slot s: each view runs the one kernel its op needs, if any (pipelines.slot_kernels)."""
        take = self.take(plan)
        for kernel in slot_kernels.SLOT_KERNELS:
            x = steps.apply(f"slot{s}_{kernel.name}", kernel.function, x,
                            *(take(f"slot{s}_{name}") for name in kernel.inputs))
        return x

    def __call__(self, table: torch.Tensor, dense: bool | None = None) -> torch.Tensor:
        """All stages in order, outside DALI: the uint8 views of the table's rows, on the device's
        schedule unless `dense` says which."""
        plan = plan_on_the_fly(table, self.layout, self.dense if dense is None else dense)
        return self.after_crop(self.crop(plan), plan)
