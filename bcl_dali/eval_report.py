"""Evaluation results for people: the reference README's table with group columns, and a plot of
per-class accuracy against class size drawn with PIL (no plotting dependency for one scatter)."""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from bcl_dali.atomic import atomic_path
from bcl_dali.reports import check_output_path

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 40, 60
GROUP_COLOURS = {"few": (214, 39, 40), "medium": (255, 127, 14), "many": (31, 119, 180)}
SIZE_TICKS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def results_table(result: dict) -> str:
    """One row per shot setting (top-1, Many / Medium / Few, their std), then the kNN line."""
    head = f"{result['method']} at epoch {result['epoch']} on {result['dataset']} ({result['checkpoint']})"
    lines = [head, f"{'shot':<10}{'top-1':>16}{'Many':>8}{'Medium':>8}{'Few':>8}{'group std':>11}"]
    for shot, row in result["shots"].items():
        name = "full-shot" if shot == "full" else f"{shot}-shot"
        top1 = f"{row['top1']:.2f}" + (f" ± {row['top1_std']:.2f}" if row["subsets"] > 1 else "")
        lines.append(f"{name:<10}{top1:>16}{row['many']:>8.2f}{row['medium']:>8.2f}{row['few']:>8.2f}"
                     f"{row['group_std']:>11.2f}")
    lines.append(f"kNN top-1 (k = {result['settings']['knn']['k']}, probe pool as bank): {result['knn_top1']:.2f}")
    lines.append(f"accuracies in %; chance {100 / result['num_classes']:.2f}; ± is the std over "
                 "the few-shot subsets; group std is the std of Many / Medium / Few (lower is more balanced)")
    return "\n".join(lines)


def plot_per_class(result: dict, shot: str, path: Path) -> None:
    """Per-class accuracy of the `shot` probe against the class's training images (log scale)."""
    check_output_path(path, "--plot")
    counts = result["train_class_counts"]
    accuracy = result["shots"][shot]["per_class"]
    group_of = {c: name for name, ids in result["groups"].items() for c in ids}
    low, high = math.log10(max(min(counts), 1)), math.log10(max(max(counts), 2))
    high = high if high > low else low + 1

    def x(count: int) -> float:
        return LEFT + (math.log10(max(count, 1)) - low) / (high - low) * (WIDTH - LEFT - RIGHT)

    def y(percent: float) -> float:
        return HEIGHT - BOTTOM - percent / 100 * (HEIGHT - TOP - BOTTOM)

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM), outline="black")
    for percent in range(0, 101, 20):
        draw.line((LEFT - 4, y(percent), LEFT, y(percent)), fill="black")
        draw.text((LEFT - 30, y(percent) - 6), f"{percent}", fill="black")
    for tick in SIZE_TICKS:
        if 10 ** low <= tick <= 10 ** high:
            draw.line((x(tick), HEIGHT - BOTTOM, x(tick), HEIGHT - BOTTOM + 4), fill="black")
            draw.text((x(tick) - 8, HEIGHT - BOTTOM + 8), str(tick), fill="black")
    for c, (count, percent) in enumerate(zip(counts, accuracy)):
        if percent is None:
            continue
        cx, cy = x(count), y(percent)
        draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=GROUP_COLOURS[group_of[c]])
    for i, (name, colour) in enumerate(GROUP_COLOURS.items()):
        row = result["shots"][shot][name]
        draw.ellipse((WIDTH - RIGHT + 15, TOP + 10 + 20 * i, WIDTH - RIGHT + 23, TOP + 18 + 20 * i), fill=colour)
        draw.text((WIDTH - RIGHT + 30, TOP + 8 + 20 * i), f"{name} {row:.1f}%", fill="black")
    shot_name = "full-shot" if shot == "full" else f"{shot}-shot"
    draw.text((LEFT, 12), f"{result['method']}: per-class top-1 (%) of the {shot_name} probe", fill="black")
    draw.text((LEFT + 120, HEIGHT - 24), "training images of the class (log scale)", fill="black")
    with atomic_path(path) as temp:
        image.save(temp)
