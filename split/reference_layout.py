"""The reference's folder layout of split files, recognised from the path of a training split.

    split/cifar100/cifar100_trainIdxList.npy                            the balanced probe pool
    split/cifar100_imbSub_with_subsets/cifar100_split1_D_i.npy          a long-tailed training split
    split/cifar100_imbSub_with_subsets/cifar100_split{1..5}_test_{n}shot.npy   few-shot probe subsets

When a split sits in this layout, evaluation uses the reference's own probe pool and few-shot
files (all five subsets of each size, whichever split trains), so our numbers are comparable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SPLIT_NAME = re.compile(r"(?P<dataset>.+)_split\d+_D_i\.npy")
SHOT_NAME = "{dataset}_split{subset}_test_{shots}shot.npy"
SUBSETS = range(1, 6)
SHOT_SIZES = (100, 50, 10)


@dataclass(frozen=True)
class ReferenceFiles:
    probe: Path
    shots: dict[int, list[Path]]
    """Shots per class -> the few-shot files of that size that exist, subset 1 first."""


def find_reference_files(split: Path) -> ReferenceFiles | None:
    """The probe pool and few-shot files that belong with `split`, or None outside the reference layout."""
    split = Path(split)
    match = SPLIT_NAME.fullmatch(split.name)
    if match is None or split.parent.name != f"{match['dataset']}_imbSub_with_subsets":
        return None
    dataset = match["dataset"]
    probe = split.parent.parent / dataset / f"{dataset}_trainIdxList.npy"
    if not probe.is_file():
        return None
    shots = {}
    for size in SHOT_SIZES:
        files = [split.parent / SHOT_NAME.format(dataset=dataset, subset=k, shots=size) for k in SUBSETS]
        if present := [f for f in files if f.is_file()]:
            shots[size] = present
    return ReferenceFiles(probe=probe, shots=shots)
