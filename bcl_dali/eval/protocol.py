"""The reference's evaluation of a trained backbone, plus what it left unwired.

Linear probes on frozen fp32 features of un-augmented images (full shot on the probe pool; 100-,
50- and 10-shot averaged over the five subsets), top-1 and top-5, the Many / Medium / Few
accuracies and their std (classes grouped by their size in the training split), per-class
accuracy, and weighted kNN. Two different ± exist: one model's std over its few-shot probe subsets,
and the papers' std over models pretrained on five splits (`across_runs`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from bcl_dali.data import LongTailedData
from bcl_dali.errors import UserError
from bcl_dali.eval.features import extract_features
from bcl_dali.eval.knn import KNN_K, KNN_TEMPERATURE, knn_predict
from bcl_dali.eval.probe import PROBE_BATCH, PROBE_EPOCHS, PROBE_FINAL_LR, PROBE_LR, PROBE_WEIGHT_DECAY, linear_probe, predict
from bcl_dali.eval.result import FULL, Evaluation, ShotResult, shot_name
from bcl_dali.split import group_accuracy

TOP_K = 5
ACROSS_RUNS = ("top1", "top5", "many", "medium", "few", "group_std")
"""The numbers that the papers report as mean ± std over models pretrained on splits 1-5."""


def shot_subsets(data: LongTailedData, shot: str) -> list[np.ndarray]:
    """Positions into the probe pool that each probe of a shot setting trains on."""
    if shot == FULL:
        return [np.arange(len(data.probe))]
    if not shot.isdigit() or int(shot) not in data.shots:
        available = ", ".join([FULL, *map(str, sorted(data.shots, reverse=True))])
        raise UserError(f"--shots {shot!r} is not available for {data.name}; choose from {available}")
    return data.shots[int(shot)]


def evaluate(model: nn.Module, data: LongTailedData, device: torch.device, shots: list[str], seed: int = 0,
             on_probe: Callable[[str], None] = lambda _: None, size: int | None = None) -> Evaluation:
    """Every number of the evaluation for one model (see the module docstring); `on_probe` hears
    of each probe before it trains (500 epochs each: minutes on a CPU). `size`: the views' side,
    for image folders (bcl_dali.eval.features)."""
    subsets = {shot: shot_subsets(data, shot) for shot in shots}
    probe_features = extract_features(model, data.probe.images, device, size=size)
    test_features = extract_features(model, data.test.images, device, size=size)
    probe_labels = torch.as_tensor(data.probe.labels, device=device)
    test_labels = torch.as_tensor(data.test.labels, device=device)
    counts = data.train_class_counts
    groups = data.class_groups()
    results: dict[str, ShotResult] = {}
    for shot, positions_list in subsets.items():
        per_subset, top1, top5 = [], [], []
        for i, positions in enumerate(positions_list):
            on_probe(f"{shot_name(shot)} probe {i + 1} of {len(positions_list)}")
            rows = torch.as_tensor(positions, device=device)
            probe = linear_probe(probe_features[rows], probe_labels[rows], data.num_classes, seed=seed + i)
            ranked = predict(probe, test_features, k=TOP_K)
            top1.append(_top1(ranked[:, 0], test_labels))
            top5.append(float((ranked == test_labels[:, None]).any(dim=1).double().mean() * 100))
            per_subset.append(per_class_accuracy(ranked[:, 0], test_labels, data.num_classes))
        per_class = np.mean(per_subset, axis=0)
        grouped = group_accuracy(per_class, groups)
        results[shot] = ShotResult(
            top1=float(np.mean(top1)), top1_std_over_subsets=float(np.std(top1)), subsets=len(per_subset),
            top5=float(np.mean(top5)), many=_number(grouped.many), medium=_number(grouped.medium),
            few=_number(grouped.few), group_std=_number(grouped.std),
            per_class=[None if np.isnan(a) else float(a) for a in per_class])
    return Evaluation(num_classes=data.num_classes, train_class_counts=counts.tolist(), grouping=data.grouping,
                      groups={name: ids.tolist() for name, ids in groups.items()},
                      knn_top1=knn_top1(probe_features, probe_labels, test_features, test_labels, data.num_classes),
                      shots=results, settings=settings())


def evaluate_backbone(backbone: nn.Module, data: LongTailedData, device: torch.device | str, shots: list[str],
                      seed: int = 0, size: int | None = None) -> Evaluation:
    """`evaluate` for any network whose forward gives one feature vector per image (e.g. a torchvision
    ResNet whose `fc` is `nn.Identity()`), on normalised (B, 3, S, S) images."""
    return evaluate(_Features(backbone), data, torch.device(device), shots, seed, size=size)


class _Features(nn.Module):
    """A backbone as `extract_features` takes a model: its forward, flattened, is `features`."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images).flatten(1)


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Accuracy (%) of each class on the test set; NaN for a class without test images."""
    hits = torch.zeros(num_classes, device=labels.device).index_add_(0, labels, (predictions == labels).float())
    totals = torch.bincount(labels, minlength=num_classes).float()
    return (hits / totals * 100).cpu().numpy()


def knn_top1(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, query_labels: torch.Tensor,
             num_classes: int) -> float:
    """Top-1 (%) of weighted kNN (see bcl_dali.eval.knn) of the queries against a labelled bank."""
    return _top1(knn_predict(bank, bank_labels, queries, num_classes), query_labels)


def _top1(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions == labels).double().mean() * 100)


def settings() -> dict[str, Any]:
    """The protocol's constants, recorded beside every result."""
    return {"probe": {"optimizer": "adam", "lr": PROBE_LR, "final_lr": PROBE_FINAL_LR,
                      "weight_decay": PROBE_WEIGHT_DECAY, "epochs": PROBE_EPOCHS, "batch": PROBE_BATCH},
            "knn": {"k": KNN_K, "temperature": KNN_TEMPERATURE, "similarity": "cosine"}}


def check_shots(data: LongTailedData, shots: list[str]) -> None:
    """Refuse, before any work, a probe setting that the data cannot give."""
    for shot in shots:
        shot_subsets(data, shot)


def across_runs(results: list[Evaluation]) -> dict[str, dict[str, dict[str, float]]]:
    """The papers' summary of several models (one per pretraining split): per shot setting, the mean
    and the population std over the runs of each number in ACROSS_RUNS, and kNN top-1."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for shot in results[0].shots:
        summary[shot] = {key: _mean_std([getattr(r.shots[shot], key) for r in results]) for key in ACROSS_RUNS}
    summary["knn"] = {"top1": _mean_std([r.knn_top1 for r in results])}
    return summary


def _mean_std(values: list[float | None]) -> dict[str, float | None]:
    """Over the runs that have the number (a group can be empty in every run: then None)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(present)), "std": float(np.std(present))}


def _number(value: float) -> float | None:
    """JSON has no NaN: an empty group's accuracy is null."""
    return None if np.isnan(value) else float(value)
