"""The hand-off of DALI's output buffers to the consumer (pipelines.handoff): an iteration's output is
let go only after the consumer's stream has passed the point where it asked for the next one. A fake
pipeline and fake stream markers stand for DALI and CUDA, so the rule is checked on the CPU."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import torch

from bcl_dali.policy import BoostPolicy
from bcl_dali.pipelines.dali_executor import DaliExecutor
from bcl_dali.pipelines.handoff import MAX_HELD, HeldOutputs
from bcl_dali.pipelines.inputs import ResidentInput
from bcl_dali.pipelines.plan import EpochPlan
from tests.augmentation_cases import natural_images

BATCH = 4


class FakeMarker:
    """A point in the consumer's stream, passed when the test says so."""

    def __init__(self) -> None:
        self.passed = False
        self.waited = False

    def query(self) -> bool:
        return self.passed

    def synchronize(self) -> None:
        self.waited = self.passed = True


class FakeOutput:
    """An iteration's output as DALI hands it out: one sample holding the iteration's views."""

    def __init__(self, views: torch.Tensor) -> None:
        self.views = views

    def is_dense_tensor(self) -> bool:
        return True

    def as_tensor(self) -> torch.Tensor:
        return self.views


class FakePipeline:
    """Makes `iterations` outputs an epoch and remembers each by a weak reference only."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations
        self.made: list[weakref.ref] = []
        self._this_epoch = 0

    def run(self, stream=None) -> tuple[FakeOutput]:
        if self._this_epoch == self.iterations:
            raise StopIteration
        self._this_epoch += 1
        output = FakeOutput(torch.full((1, 2 * BATCH, 32, 32, 3), float(len(self.made))))
        self.made.append(weakref.ref(output))
        return (output,)

    def reset(self) -> None:
        self._this_epoch = 0

    def alive(self) -> list[bool]:
        gc.collect()
        return [ref() is not None for ref in self.made]


def _executor(iterations: int) -> tuple[DaliExecutor, FakePipeline, list[FakeMarker]]:
    executor = DaliExecutor(ResidentInput(natural_images(iterations * BATCH)), size=32, num_slots=0, batch_size=BATCH,
                            device=torch.device("cpu"), threads=1)
    markers: list[FakeMarker] = []

    def marker() -> FakeMarker:
        markers.append(FakeMarker())
        return markers[-1]

    executor.pipeline = FakePipeline(iterations)
    executor.held = HeldOutputs(marker)
    return executor, executor.pipeline, markers


def _plan(n: int) -> EpochPlan:
    rng = np.random.default_rng(0)
    return EpochPlan(np.arange(n), BATCH, BoostPolicy(0).sample(np.zeros(n), rng, (32, 32)))


def test_an_output_lives_until_the_consumer_has_passed_its_marker():
    """The consumer drops each batch's views at once, as a training loop does after queuing its step.
    The output stays held after the consumer asks for the next batch (its marker not yet passed) and
    goes at the first request after the marker has passed, never before. Fails if the executor lets
    an output go when the consumer asks for the next one (mutation tried: HeldOutputs.consumed popping
    every marked entry without its query), or never holds it (mutation tried: no `held.hold`)."""
    executor, pipeline, markers = _executor(4)
    batches = executor.epoch(_plan(4 * BATCH))
    for expected in range(2):
        _, views = next(batches)
        assert float(views[0, 0, 0, 0]) == expected
        del views
    assert pipeline.alive()[:2] == [True, True] and len(markers) == 1 and not markers[0].passed
    markers[0].passed = True
    _, views = next(batches)
    del views
    assert pipeline.alive()[:3] == [False, True, True]
    assert len(list(batches)) == 1
    assert pipeline.alive() == [False, True, True, True]  # marked when asked past them, not yet passed
    for marker in markers:
        marker.passed = True
    executor.held.consumed()
    assert pipeline.alive() == [False] * 4
    assert not any(marker.waited for marker in markers)


def test_a_consumer_far_behind_its_stream_is_waited_for_not_outrun():
    """Markers that never pass (a GPU far behind the host): the executor holds MAX_HELD outputs, and
    for each further one waits on the oldest marker before letting that output go."""
    executor, pipeline, markers = _executor(MAX_HELD + 3)
    for _ in executor.epoch(_plan((MAX_HELD + 3) * BATCH)):
        pass
    held = pipeline.alive()
    assert held.count(True) == MAX_HELD and held[-MAX_HELD:] == [True] * MAX_HELD
    assert [marker.waited for marker in markers] == [True] * 3 + [False] * MAX_HELD


def test_an_epoch_left_early_is_marked_when_the_next_begins():
    """A consumer that stops mid-epoch queued its reads before the next epoch starts: the held output
    is marked then, and goes once its marker passes."""
    executor, pipeline, markers = _executor(3)
    batches = executor.epoch(_plan(3 * BATCH))
    next(batches)
    batches.close()
    assert markers == []
    again = executor.epoch(_plan(3 * BATCH))
    next(again)
    assert len(markers) == 1 and pipeline.alive()[0]
    assert pipeline.alive()[1:3] == [False, False]  # the rest of the old epoch, run out and never handed out
    markers[0].passed = True
    next(again)
    assert not pipeline.alive()[0]


def test_on_the_cpu_an_output_goes_at_the_next_request():
    """No stream on the CPU: the consumer has read a batch when it asks for the next."""
    held = HeldOutputs.on(torch.device("cpu"))
    first = FakeOutput(torch.zeros(1))
    reference = weakref.ref(first)
    held.hold(first)
    del first
    gc.collect()
    assert reference() is not None
    held.consumed()
    gc.collect()
    assert reference() is None and len(held) == 0
