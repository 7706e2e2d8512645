"""What an evaluation gives: `Evaluation`, read by every table, page, plot and experiment, and
written as the eval-epochE.json files it has always been (`as_dict` / `from_dict`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FULL = "full"
"""The full-shot probe's name among the shot settings (the others are shots per class)."""


def shot_name(shot: str) -> str:
    return "full-shot" if shot == FULL else f"{shot}-shot"


@dataclass(frozen=True)
class ShotResult:
    """One probe setting: top-1 and top-5 (%) averaged over its subsets, the Many / Medium / Few
    accuracies and their std (None for a group without classes), and each class's accuracy."""

    top1: float
    top1_std_over_subsets: float | None
    """None in results from before it was kept, as `top5`."""
    subsets: int
    top5: float | None
    many: float | None
    medium: float | None
    few: float | None
    group_std: float | None
    per_class: list[float | None]

    def group(self, name: str) -> float | None:
        return getattr(self, name)


@dataclass(frozen=True)
class Evaluation:
    num_classes: int
    train_class_counts: list[int]
    grouping: str
    """How classes were grouped: "thirds" (CIFAR) or "counts" (ImageNet-LT's thresholds)."""
    groups: dict[str, list[int]]
    """Many / Medium / Few: the class ids of each."""
    knn_top1: float
    shots: dict[str, ShotResult]
    settings: dict[str, Any] = field(default_factory=dict)
    """The protocol's constants (probe optimiser, kNN's k and temperature)."""
    checkpoint: str | None = None
    epoch: int | None = None
    method: str | None = None
    dataset: str | None = None
    split: str | None = None
    device: str | None = None

    def with_provenance(self, **provenance: Any) -> Evaluation:
        return dataclasses.replace(self, **provenance)

    def with_earlier_shots(self, earlier: Evaluation) -> Evaluation:
        """These results plus the shot settings an earlier evaluation of the same checkpoint has and
        these do not (eval --shots 10 after eval --shots full keeps both)."""
        if (earlier.checkpoint, earlier.epoch) != (self.checkpoint, self.epoch):
            return self
        return dataclasses.replace(self, shots=earlier.shots | self.shots)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form, keys in the order the files have always had."""
        provenance = {key: getattr(self, key) for key in ("checkpoint", "epoch", "method", "dataset", "split", "device")
                      if getattr(self, key) is not None or key == "split"}
        return {**provenance, "settings": self.settings, "num_classes": self.num_classes,
                "train_class_counts": self.train_class_counts, "grouping": self.grouping, "groups": self.groups,
                "knn_top1": self.knn_top1, "shots": {shot: dataclasses.asdict(row) for shot, row in self.shots.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["shots"] = {shot: ShotResult(**{"top1_std_over_subsets": None, "top5": None, **row})
                           for shot, row in data["shots"].items()}
        values.setdefault("grouping", "thirds")
        return cls(**values)
