"""BCL's boosted augmentation in a training loop of your own: your torchvision ResNet-18, your
optimiser, your loss call, on the built-in long-tailed data (no download).

    python examples/own_loop.py --epochs 2 --out own.pt
"""
from __future__ import annotations

import argparse

import torch
import torchvision
from torch import nn

import bcl_dali


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--classes", type=int, default=10, help="classes of the built-in synthetic-lt")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="own.pt", help="where the backbone and BCL's state are saved")
    args = parser.parse_args()

    data = bcl_dali.load_data("synthetic-lt", num_classes=args.classes)
    boost = bcl_dali.BoostedAugmentation(data.train.images, batch_size=args.batch_size, boost=1, device=args.device)

    model = torchvision.models.resnet18()
    model.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))  # projection head
    model = model.to(args.device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    for epoch in range(args.epochs):
        total = torch.zeros((), device=args.device)
        for indices, views in boost:
            z1, z2 = model(views).chunk(2)  # views: view 1 of every sample, then view 2
            losses = bcl_dali.nt_xent_per_sample(z1, z2, temperature=0.2)
            optimizer.zero_grad(set_to_none=True)
            losses.mean().backward()
            optimizer.step()
            boost.update(indices, losses)  # each sample's loss drives its next epoch's RandAugment ops
            total += losses.detach().sum()  # read back once per epoch, not per step
        weights = boost.weights  # what the next epoch's ops are drawn from
        print(f"epoch {epoch + 1}: loss {float(total) / len(data.train.labels):.3f}, next epoch's weights: mean "
              f"{float(weights.mean()):.3f}, std {float(weights.std()):.3f}")

    model.fc = nn.Identity()  # the backbone: evaluations read its features
    torch.save({"backbone": model.state_dict(), "boost": boost.state_dict(), "classes": args.classes}, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
