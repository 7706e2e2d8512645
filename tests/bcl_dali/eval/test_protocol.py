"""Evaluation: the probe against known answers, groups against a hand computation, a trained
checkpoint against an untrained one, and how `eval` refuses what it cannot evaluate."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bcl_dali.eval.probe import linear_probe, predict
from bcl_dali.eval.protocol import per_class_accuracy
from bcl_dali.split import class_groups, group_accuracy, load_index_file
from tests.paths import SPLITS

TINY = ("--dataset", "synthetic-lt", "--num-classes", "10", "--width", "16", "--batch-size", "64",
        "--lr", "0.15", "--device", "cpu", "--workers", "2", "--seed", "1")
"""10 classes that differ in texture (1,111 long-tailed images): 12 epochs take about a minute. At
this size a run's outcome depends on its seed (some seeds learn little in 12 epochs); the seed here
is fixed, and the CPU run is deterministic. The 100-class demonstration is in benchmarks/RESULTS.md."""


def _features(classes: int, per_class: int, seed: int, separable: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    features = torch.randn(len(labels), 32, generator=g)
    if separable:
        features[torch.arange(len(labels)), labels] += 6.0
    return features, labels


def test_probe_separates_linearly_separable_features():
    train_x, train_y = _features(10, 100, seed=0, separable=True)
    test_x, test_y = _features(10, 50, seed=1, separable=True)
    probe = linear_probe(train_x, train_y, 10)
    assert (predict(probe, test_x)[:, 0] == test_y).float().mean() > 0.99


def test_probe_on_random_labels_is_at_chance():
    train_x, _ = _features(10, 100, seed=0, separable=False)
    test_x, _ = _features(10, 100, seed=1, separable=False)
    g = torch.Generator().manual_seed(2)
    train_y, test_y = torch.randint(0, 10, (1000,), generator=g), torch.randint(0, 10, (1000,), generator=g)
    accuracy = (predict(linear_probe(train_x, train_y, 10), test_x)[:, 0] == test_y).float().mean()
    assert abs(accuracy - 0.10) < 0.04  # 1000 test samples: the std of a chance accuracy is 0.0095


def test_groups_and_their_std_by_hand():
    counts = np.array([5, 1, 3, 3, 9, 2])
    groups = class_groups(counts)  # ascending, ties by class id: 1 (1), 5 (2), 2 (3), 3 (3), 0 (5), 4 (9)
    assert groups.few.tolist() == [1, 5] and groups.medium.tolist() == [2, 3] and groups.many.tolist() == [0, 4]
    predictions = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 4, 5])
    labels = torch.tensor([0, 1, 1, 1, 1, 2, 3, 3, 4, 5])
    accuracy = per_class_accuracy(predictions, labels, 6)
    np.testing.assert_allclose(accuracy, [100, 75, 100, 50, 100, 100])
    result = group_accuracy(accuracy, groups)
    # few (75 + 100) / 2, medium (100 + 50) / 2, many (100 + 100) / 2; np.std with ddof 0
    assert (result.few, result.medium, result.many) == (87.5, 75.0, 100.0)
    assert result.std == pytest.approx(np.sqrt(((87.5 - 87.5) ** 2 + (75 - 87.5) ** 2 + (100 - 87.5) ** 2) / 3))


@pytest.mark.skipif(not SPLITS.exists(), reason="needs ../shared/splits")
def test_reference_splits_give_groups_of_33_33_34():
    for k in range(1, 6):
        indices = load_index_file(SPLITS / "cifar100_imbSub_with_subsets" / f"cifar100_split{k}_D_i.npy", 50000)
        counts = np.bincount(indices % 100, minlength=100)  # synthetic-lt's labels for the same 50,000 indices
        groups = class_groups(counts)
        assert (len(groups.few), len(groups.medium), len(groups.many)) == (33, 33, 34)


def test_a_class_without_test_images_is_left_out_of_its_group():
    predictions, labels = torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 1, 1])
    accuracy = per_class_accuracy(predictions, labels, 4)
    assert accuracy[0] == 100 and accuracy[1] == pytest.approx(200 / 3) and np.isnan(accuracy[2:]).all()
    groups = class_groups(np.array([1, 2, 3, 4]))  # few [0], medium [1], many [2, 3]
    result = group_accuracy(np.array([10.0, 20.0, np.nan, 40.0]), groups)
    assert (result.few, result.medium, result.many) == (10.0, 20.0, 40.0)


def test_top5_counts_a_label_among_the_five_highest_scores() -> None:
    """Hand-made scores over 7 classes: the label ranks 1st, 5th and 6th. Fails if top-5 takes the
    lowest scores, or fewer or more than five."""
    probe = torch.nn.Linear(7, 7, bias=False)
    with torch.no_grad():
        probe.weight.copy_(torch.eye(7))
    scores = torch.tensor([[9.0, 1, 2, 3, 4, 5, 6], [5.0, 9, 8, 7, 6, 1, 2], [5.0, 9, 8, 7, 6, 1, 2]])
    labels = torch.tensor([0, 0, 5])
    ranked = predict(probe, scores, k=5)
    assert ranked[:, 0].tolist() == [0, 1, 1]
    assert (ranked == labels[:, None]).any(dim=1).tolist() == [True, True, False]


def test_features_are_extracted_without_autocast(monkeypatch) -> None:
    """The official evaluation extracts in fp32; fails if extract_features enters an autocast region."""
    from bcl_dali.data import ArrayImages
    from bcl_dali.eval.features import extract_features
    from bcl_dali.methods import METHODS

    def refuse(*args, **kwargs):
        raise AssertionError("autocast during feature extraction")

    monkeypatch.setattr(torch, "autocast", refuse)
    features = extract_features(METHODS["simclr"]().build_model("resnet18", 16), ArrayImages(np.zeros((3, 32, 32, 3), np.uint8)),
                                torch.device("cpu"), size=32)
    assert features.dtype == torch.float32 and features.shape[0] == 3


def test_eval_of_several_runs_gives_the_papers_mean_and_std() -> None:
    """Fails if the std is the sample std (ddof 1) or a number is averaged over the wrong runs."""
    from bcl_dali.eval.protocol import ACROSS_RUNS, across_runs
    from bcl_dali.eval.result import Evaluation, ShotResult

    def evaluation(knn: float, value: float) -> Evaluation:
        row = {key: value + i for i, key in enumerate(ACROSS_RUNS)}
        return Evaluation(num_classes=3, train_class_counts=[1, 1, 1], grouping="thirds", groups={}, knn_top1=knn,
                          shots={"full": ShotResult(**row, top1_std_over_subsets=0.0, subsets=1, per_class=[])})

    runs = [evaluation(k, value) for k, value in ((30.0, 10.0), (32.0, 14.0), (37.0, 21.0))]
    summary = across_runs(runs)
    assert summary["full"]["few"]["mean"] == pytest.approx(15.0 + 4)
    assert summary["full"]["few"]["std"] == pytest.approx(np.std([10.0, 14.0, 21.0]))
    assert summary["full"]["top1"]["std"] == pytest.approx(np.sqrt(((10 - 15) ** 2 + 1 + 36) / 3))
    assert summary["knn"]["top1"]["mean"] == pytest.approx(33.0)
