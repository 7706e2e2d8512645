"""An iteration's plan, made on the host when its epoch is planned, and how the stage receives it.

DALI moves the pixels; everything else a stage needs to know about an iteration (its table rows, the
rows each masked step touches, for image folders the chunks its crops are resized in) is known on the
host before the epoch starts. The executor uploads an epoch's table and step rows once and gives each
iteration a plan made of slices of them, so a stage never reads a count back from the device.

The plan reaches the stage through a queue: the executor's source pushes it when DALI asks for the
iteration's data, the stage takes it when it runs. DALI runs an operator's iterations one after
another, in order (its dynamic executor makes every task of a node depend on that node's task of the
previous iteration), so the stage's n-th call is the n-th iteration the source gave; the stage checks
the plan against the size of its input, which the host knows too.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from bcl_dali.pipelines.steps import DenseSteps, SparseSteps, host_rows, step_masks, step_predicates
from bcl_dali.pipelines.table import Layout


@dataclass(frozen=True)
class IterationPlan:
    table: torch.Tensor
    """(V, P) float64: the iteration's view rows of the epoch table, on the stages' device."""
    rows: Mapping[str, torch.Tensor] | None
    """Sparse schedule: each masked step's view rows (pipelines.steps); None: dense."""
    resize: Any = None
    """Image folders: how the decoded crops become views (pipelines.resize.ResizePlan)."""

    @property
    def views(self) -> int:
        return self.table.shape[0]

    def steps(self, layout: Layout) -> DenseSteps | SparseSteps:
        if self.rows is not None:
            return SparseSteps(self.rows)
        return DenseSteps(lambda name: layout.take(self.table, name), step_predicates(layout.num_slots, layout.blur))


def step_rows(part: np.ndarray, layout: Layout, dense: bool) -> dict[str, np.ndarray] | None:
    """The sparse schedule's rows of each masked step, read from an iteration's host table rows; none
    for the dense schedule, which reads its masks on the device."""
    if dense:
        return None
    return host_rows(step_masks(lambda name: layout.take(part, name), layout.num_slots, layout.blur))


def plan_on_the_fly(table: torch.Tensor, layout: Layout, dense: bool) -> IterationPlan:
    """A plan for a table outside an executor (tests, benchmarks); sparse rows read from it here."""
    rows = step_rows(table.cpu().numpy(), layout, dense)
    return IterationPlan(table, None if rows is None else upload_indices(rows, table.device))


def upload_indices(tree: Any, device: torch.device) -> Any:
    """`tree` (dicts, lists and frozen dataclasses of host plans) with every int64 numpy array
    replaced by a slice of one tensor on `device`: an epoch's index arrays in one copy."""
    arrays: list[np.ndarray] = []

    def collect(node: Any) -> None:
        for child in _children(node):
            collect(child)
        if isinstance(node, np.ndarray) and node.dtype == np.int64:
            arrays.append(node)

    collect(tree)
    flat = torch.as_tensor(np.concatenate(arrays) if arrays else np.zeros(0, np.int64)).to(device)
    places = iter(np.cumsum([0] + [len(a) for a in arrays]))
    start = next(places, 0)

    def replace(node: Any) -> Any:
        nonlocal start
        if isinstance(node, np.ndarray) and node.dtype == np.int64:
            stop = next(places)
            part, start = flat[start:stop], stop
            return part
        if isinstance(node, dict):
            return {key: replace(value) for key, value in node.items()}
        if isinstance(node, list):
            return [replace(value) for value in node]
        if dataclasses.is_dataclass(node):
            return dataclasses.replace(node, **{f.name: replace(getattr(node, f.name)) for f in dataclasses.fields(node)})
        return node

    return replace(tree)


def _children(node: Any) -> list:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [getattr(node, f.name) for f in dataclasses.fields(node)]
    return []


class PlanQueue:
    """Plans in the order the source gave them; the stage takes the next one for every iteration it runs."""

    def __init__(self) -> None:
        self._plans: deque[IterationPlan] = deque()

    def push(self, plan: IterationPlan) -> None:
        self._plans.append(plan)

    def take(self, views: int) -> IterationPlan:
        """The next plan, which must be for `views` views (the size of the stage's input)."""
        if not self._plans:
            raise RuntimeError("a DALI stage ran an iteration that no source planned")
        plan = self._plans.popleft()
        if plan.views != views:
            raise RuntimeError(f"a DALI stage received {views} views for a plan of {plan.views}: iterations "
                               "reached it out of order")
        return plan

    def clear(self) -> None:
        self._plans.clear()
