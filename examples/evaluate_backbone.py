"""The paper's evaluation of a backbone of your own: linear probes (full shot and few shot), kNN, and
the Many / Medium / Few accuracies, on the built-in long-tailed data.

    python examples/evaluate_backbone.py own.pt --shots full,10
"""
from __future__ import annotations

import argparse

import torch
import torchvision
from torch import nn

import bcl_dali


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="a file examples/own_loop.py saved; none: an untrained ResNet-18")
    parser.add_argument("--classes", type=int, default=10, help="classes of the built-in synthetic-lt")
    parser.add_argument("--shots", default="full", help="probe settings, e.g. full,100,10")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    backbone = torchvision.models.resnet18()
    backbone.fc = nn.Identity()
    classes = args.classes
    if args.checkpoint:
        saved = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        backbone.load_state_dict(saved["backbone"])
        classes = saved["classes"]
    data = bcl_dali.load_data("synthetic-lt", num_classes=classes)
    result = bcl_dali.evaluate_backbone(backbone.to(args.device), data, args.device, args.shots.split(","))
    for shot, numbers in result.shots.items():
        groups = ", ".join(f"{name} {numbers.group(name):.1f}" for name in ("many", "medium", "few")
                           if numbers.group(name) is not None)
        print(f"{shot}-shot probe: top-1 {numbers.top1:.1f}% ({groups})")
    print(f"kNN: top-1 {result.knn_top1:.1f}%")


if __name__ == "__main__":
    main()
