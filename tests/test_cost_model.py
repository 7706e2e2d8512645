"""The cost model's counts (benchmarks/profile.py): the augmentation graph stays lean, and the
instruments that count it see what they claim to see."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from nvidia.dali import fn, pipeline_def
from nvidia.dali.ops import _registry

from benchmarks.profile import StageTimer, _KernelCount, graph_census, kernel_census, pipeline_census
from bcl_dali.policy import BoostPolicy
from pipelines.dali_executor import DaliExecutor
from pipelines.plan import EpochPlan
from tests.augmentation_cases import natural_images
from tests.cli_support import run

MAX_OPERATORS_K2 = 80


def test_k2_graph_is_lean_expands_nothing_and_copies_nothing():
    """BCL-D's graph: at most 80 DALI operators per iteration (the old graph had 387), no operator
    that splits the sequence into one sample per frame (it had 13), no parameter crossing from the
    host each iteration (it had 42)."""
    census = graph_census(2, "gpu")
    assert census["operators"] <= MAX_OPERATORS_K2, census["operators_by_kind"]
    assert census["operators"] == 2 + 4  # the source, crop, colour, one per slot, normalise
    assert census["expansions"] == 0
    assert census["host_to_device_copies"] == 0
    assert census["operators_by_kind"]["torch stage slot1"] == 1


def test_census_counts_expanding_operators_and_host_to_device_copies():
    """The instrument itself: a graph with a per-frame warp, a colour matrix, an equalisation and a
    CPU parameter used on the GPU is reported as such."""
    @pipeline_def(batch_size=1, num_threads=1, device_id=0)
    def graph():
        frames = fn.external_source(name="frames", device="gpu", layout="FHWC")
        matrix = fn.external_source(name="matrix")
        warped = fn.warp_affine(frames, matrix=fn.per_frame(matrix))
        grey = fn.coord_transform(warped, M=[0.3, 0.6, 0.1])
        return fn.equalize(grey) * matrix.gpu()

    census = pipeline_census(graph())
    assert census["expansions"] == 3 and census["cpu_operators"] == 2  # the matrix and its per-frame wrapper
    assert census["host_to_device_copies"] == 1
    assert census["operators_by_kind"]["WarpAffine"] == 1


def test_every_operator_of_the_gpu_graph_runs_on_the_gpu():
    census = graph_census(2, "gpu")
    assert census["cpu_operators"] == 0
    kinds = {kind for kind in census["operators_by_kind"] if not kind.startswith("torch stage")}
    assert kinds == {"ExternalSource"} and {"ExternalSource", "DLTensorPythonFunction"} <= set(_registry.gpu_ops())
    assert graph_census(2, "cpu")["cpu_operators"] == census["operators"]


def test_kernel_count_sees_kernels_bytes_and_full_passes():
    """Two elementwise kernels on a (4, 2, 2) float32 tensor, a view in between (no kernel) and a
    reduction: 3 kernels, each a full pass but the reduction's output, bytes read plus written."""
    x = torch.ones(4, 2, 2)
    count = _KernelCount(plane=16)
    with count:
        y = (x + 1).view(4, 4) * 2
        y.sum()
    assert count.kernels[""] == 3
    assert count.full_passes == 3
    assert count.bytes == (16 + 16) * 4 + (16 + 16) * 4 + 16 * 4 + 4


def test_kernel_census_grows_by_one_slot_stage_per_slot():
    """Each slot adds the same stage; the views' count does not change the kernels per iteration."""
    census = [kernel_census(k, views=32) for k in (0, 1, 2)]
    for k, counts in enumerate(census):
        assert set(counts["kernels_by_stage"]) == {"crop", "colour", "normalize"} | {f"slot{s}" for s in range(k)}
        assert counts["kernels"] == sum(counts["kernels_by_stage"].values())
        assert 0 < counts["full_image_passes_per_view"] < counts["kernels"]
    slot = census[1]["kernels_by_stage"]["slot0"]
    assert census[2]["kernels"] - census[1]["kernels"] == census[1]["kernels"] - census[0]["kernels"] == slot > 0
    assert census[2]["bytes_per_view"] > census[1]["bytes_per_view"] > census[0]["bytes_per_view"]
    assert kernel_census(2, views=64)["kernels"] == census[2]["kernels"]


def test_stage_timer_times_every_stage():
    timer = StageTimer(torch.device("cpu"))
    images = natural_images(8, seed=0)
    executor = DaliExecutor(images, size=32, num_slots=2, batch_size=4, device=torch.device("cpu"), threads=1,
                            timer=timer)
    rng = np.random.default_rng(0)
    list(executor.epoch(EpochPlan(np.arange(8), 4, BoostPolicy(2).sample(rng.random(8), rng, (32, 32)))))
    times = timer.milliseconds()
    assert set(times) == {"crop", "colour", "slot0", "slot1", "normalize"}
    assert all(t > 0 for t in times.values())


def test_bench_pipeline_reports_the_cost_model_and_both_executors(tmp_path):
    report = tmp_path / "pipeline.json"
    result = run("bench", "pipeline", "--device", "cpu", "--batch-size", "8", "--iters", "1", "--workers", "1",
                 "--rand-k", "2", "--profile", "--json", report)
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    assert (figures["operators"], figures["expansions"], figures["host_to_device_copies"]) == (6, 0, 0)
    assert figures["full_image_passes_per_view"] > 0 and figures["bytes_per_view"] > 0 and figures["kernels"] > 0
    assert figures["ratio"] > 0 and figures["dali"]["executor"] == "dali"
    assert figures["reference"]["executor"] == "reference"
    assert set(figures["dali"]["stage_milliseconds_per_iteration"]) == {"crop", "colour", "slot0", "slot1", "normalize"}
    assert "DALI operators: 6" in result.output and "DALI / reference" in result.output
