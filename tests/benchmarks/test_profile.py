"""The cost model's counts (benchmarks/profile.py): the augmentation graph stays lean, and the
instruments that count it see what they claim to see."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from nvidia.dali import fn, pipeline_def
from nvidia.dali.ops import _registry

from bcl_dali.benchmarks.profile import StageTimer, _KernelCount, graph_census, iteration_census, pipeline_census
from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.inputs import ResidentInput
from bcl_dali.pipelines.plan import EpochPlan
from tests.augmentation_cases import natural_images
from tests.cli_support import run

MAX_OPERATORS_K2 = 80
MAX_LAUNCHES_224 = 3000
"""At most 3,000 kernel launches for a GPU iteration of 4,096 views of 224 pixels (k = 2, ImageNet-sized
files): the design makes 1,950 (3 resize chunks of ~440 launches, ~630 for the other stages)."""


def test_k2_graph_is_lean_expands_nothing_and_copies_nothing():
    """BCL-D's graph: the old graphs had 387 DALI operators, 13 of them splitting the sequence into one
    sample per frame, and 42 parameters crossing from the host each iteration. Now: the iteration's
    table rows, taken as they are on the device, and one fused torch operator; for image folders the
    files' source (one operator per output) and the decoder in front."""
    census = graph_census(2, "gpu")
    assert census["operators"] <= MAX_OPERATORS_K2, census["operators_by_kind"]
    assert census["operators_by_kind"] == {"ExternalSource": 1, "torch stage augment": 1}
    assert census["expansions"] == 0
    assert census["host_to_device_copies"] == 0
    folder = graph_census(2, "gpu", size=224, folder=True)
    assert folder["operators_by_kind"] == {"ExternalSource": 3, "ImageSlice": 1, "torch stage augment": 1}
    assert folder["expansions"] == 0 and folder["cpu_operators"] == 3  # the files, their anchors and shapes


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
    assert {"decoders__ImageSlice"} <= set(_registry.mixed_ops())
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
    assert not count.syncs


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_kernel_count_sees_every_read_back_to_the_host(device):
    """nonzero, .item(), bool() and a boolean mask (a data-dependent shape) each need the device's
    values on the host: four synchronisations, on real tensors and on meta ones (which have no values;
    the count goes on with stand-ins)."""
    x = torch.arange(6.0, device=device)
    count = _KernelCount(plane=6)
    with count:
        x.nonzero()
        x.sum().item()
        bool(x[0] > 1)
        x[x > 2]
    assert sum(count.syncs.values()) == 4, count.syncs


@pytest.mark.parametrize("k", [0, 1, 2])
def test_each_slot_adds_the_same_stage_and_nothing_reads_back(k):
    """A GPU iteration at 32 pixels (dense schedule): each slot adds the same kernels, the view count
    does not change the kernels per iteration, no stage reads a value back to the host, and a CUDA
    graph launches 3 things (plus DALI's copy of the output) where the eager stages launch hundreds."""
    census = iteration_census(k, views=64)
    assert set(census["kernels_by_stage"]) == {"crop", "colour", "normalize"} | {f"slot{s}" for s in range(k)}
    assert census["kernels"] == sum(census["kernels_by_stage"].values()) and census["launches"] == census["kernels"] + 1
    assert census["host_syncs"] == 0 and census["decodes_per_sample"] == 0
    assert 0 < census["full_image_passes_per_view"] < census["kernels"]
    assert iteration_census(k, views=256)["kernels"] == census["kernels"]
    assert iteration_census(k, views=64, graph=True)["launches"] == 4
    if k:
        fewer = iteration_census(k - 1, views=64)
        assert census["kernels"] - fewer["kernels"] == census["kernels_by_stage"][f"slot{k - 1}"] > 0
        assert census["bytes_per_view"] > fewer["bytes_per_view"]


def test_a_gpu_iteration_at_224_pixels_meets_the_targets():
    """4,096 views of ImageNet-sized files to 224 pixels, k = 2, the recipe's blur, on the GPU's
    schedule (sparse) and chunk budget: no read back to the host, one decode per sample, at most
    3,000 launches (the old resize chunked for the CPU: about 198,000 launches and 763 synchronisations)."""
    census = iteration_census(2, size=224, folder=True)
    assert census["views"] == 4096 and census["schedule"] == "sparse"
    assert census["host_syncs"] == 0, census["host_syncs_by_stage"]
    assert census["decodes_per_sample"] == 1.0
    assert census["launches"] <= MAX_LAUNCHES_224
    assert 1 < census["chunks"] <= 4


def test_stage_timer_times_every_stage():
    timer = StageTimer(torch.device("cpu"))
    images = natural_images(8, seed=0)
    executor = DaliExecutor(ResidentInput(images), size=32, num_slots=2, batch_size=4, device=torch.device("cpu"), threads=1,
                            timer=timer)
    rng = np.random.default_rng(0)
    list(executor.epoch(EpochPlan(np.arange(8), 4, BoostPolicy(2).sample(rng.random(8), rng, (32, 32)))))
    times = timer.milliseconds()
    assert set(times) == {"crop", "colour", "slot0", "slot1", "normalize"}
    assert all(t > 0 for t in times.values())


@pytest.mark.slow
def test_bench_pipeline_reports_the_cost_model_and_both_executors(tmp_path):
    report = tmp_path / "pipeline.json"
    result = run("bench", "pipeline", "--device", "cpu", "--batch-size", "8", "--iters", "1", "--workers", "1",
                 "--boost", "2", "--profile", "--json", report)
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    assert (figures["operators"], figures["expansions"], figures["host_to_device_copies"]) == (2, 0, 0)
    assert (figures["host_syncs"], figures["decodes_per_sample"]) == (0, 0) and figures["launches"] > 0
    assert figures["full_image_passes_per_view"] > 0 and figures["bytes_per_view"] > 0 and figures["kernels"] > 0
    assert figures["ratio"] > 0 and figures["dali"]["executor"] == "dali"
    assert figures["reference"]["executor"] == "reference"
    assert set(figures["dali"]["stage_milliseconds_per_iteration"]) == {"crop", "colour", "slot0", "slot1", "normalize"}
    assert "DALI operators: 2" in result.output and "DALI / reference" in result.output
    assert "0 host syncs" in result.output
