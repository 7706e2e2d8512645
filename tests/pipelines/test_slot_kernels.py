"""A RandAugment slot's kernels as declared: the table holds every declared column at its width, a
view that drew no op holds every kernel's identity and comes out unchanged, and a new kernel is one
declaration (the layout, the table and the dispatch follow it)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bcl_dali.pipelines import slot_kernels
from bcl_dali.pipelines.augment import Augmentation
from bcl_dali.pipelines.params import ViewParams
from bcl_dali.pipelines.slot_kernels import Column, SlotKernel
from bcl_dali.pipelines.steps import step_masks
from bcl_dali.pipelines.table import Layout, view_table
from tests.augmentation_cases import natural_images, plain_view


def test_every_declared_column_is_in_the_layout_at_its_width():
    layout = Layout(num_slots=2, size=24)
    for s in range(2):
        for column in slot_kernels.slot_columns():
            taken = layout.columns(f"slot{s}_{column.name}")
            assert taken.stop - taken.start == (column.width or 24)


@pytest.mark.parametrize("dense", [False, True])
def test_a_view_without_an_op_holds_each_kernels_identity_and_is_left_as_it_is(dense):
    """Dense, every kernel runs on every view and a view keeps its result only where its mask holds."""
    images = natural_images(6)
    table = view_table(ViewParams(**plain_view(6, 1)), np.arange(6), 32)
    layout = Layout(1, 32)
    for kernel in slot_kernels.SLOT_KERNELS:
        for column in kernel.columns:
            if column.width is not None:
                np.testing.assert_array_equal(layout.take(table, f"slot0_{column.name}"),
                                              np.broadcast_to(column.identity, (6, column.width)).squeeze())
    assert not any(mask.any() for name, mask in step_masks(lambda name: layout.take(table, name), 1, False).items()
                   if name.startswith("slot0_"))
    out = Augmentation(torch.as_tensor(images), 1)(torch.as_tensor(table), dense=dense)
    np.testing.assert_array_equal(out.numpy(), images)


def _darken(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    return (x.float() - amount.view(-1, 1, 1, 1)).clamp(0, 255).to(torch.uint8)


def test_a_new_kernel_is_one_declaration(monkeypatch):
    """A kernel on a stage no op used yet, with a column of its own: declared once, it widens the
    layout, gets its column in the table, its step mask and its place in the slot's dispatch."""
    darken = SlotKernel("darken", (99,), (Column("amount", 1, (0.0,)),), ("amount",), _darken)
    monkeypatch.setattr(slot_kernels, "SLOT_KERNELS", (*slot_kernels.SLOT_KERNELS, darken))
    narrow = sum(column.width or 8 for column in slot_kernels.slot_columns()[:-1])
    assert sum(column.width or 8 for column in slot_kernels.slot_columns()) == narrow + 1

    n = 4
    view = ViewParams(**plain_view(n, 1))
    table = view_table(view, np.arange(n), 32)
    layout = Layout(1, 32)
    assert (layout.take(table, "slot0_amount") == 0).all()
    table[[1, 3], layout.columns("slot0_stage").start] = 99
    table[[1, 3], layout.columns("slot0_amount").start] = 40
    images = natural_images(n)
    out = Augmentation(torch.as_tensor(images), 1)(torch.as_tensor(table))
    np.testing.assert_array_equal(out[[0, 2]].numpy(), images[[0, 2]])
    np.testing.assert_array_equal(out[[1, 3]].numpy(), np.clip(images[[1, 3]].astype(int) - 40, 0, 255))
