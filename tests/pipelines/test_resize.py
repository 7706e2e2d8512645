"""PIL's bicubic resize of boxes inside crops of any size, planned in chunks, against PIL."""
from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

from bcl_dali.pipelines.iteration import upload_indices
from bcl_dali.pipelines.resize import plan_resize, resize_views, vertical_first
from tests.augmentation_cases import FAR_TOLERANCE, MEAN_TOLERANCE


def test_pil_resize_of_boxes_inside_crops_of_any_size():
    """Two boxes inside each decoded crop, resized as the executor plans it, against PIL's bicubic
    resize of each box (and torchvision's flip): bit for bit for every view whose pass order is PIL's
    first choice, within F's tolerance for those this module starts vertically; the same views whether
    every crop is a chunk of its own or all share one."""
    rng = np.random.default_rng(3)
    n, out = 60, 24
    heights, widths = rng.integers(3, 100, n), rng.integers(3, 100, n)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in zip(heights, widths)]
    tops, lefts = (rng.integers(0, side, (2, n)) for side in (heights, widths))
    boxes = np.stack([tops, lefts, rng.integers(1, heights - tops + 1), rng.integers(1, widths - lefts + 1)], -1)
    boxes = boxes.transpose(1, 0, 2).reshape(2 * n, 4)
    sample_of_view = np.repeat(np.arange(n), 2)
    flips = rng.random(2 * n) < 0.5
    expected = []
    for (top, left, h, w), s, flip in zip(boxes, sample_of_view, flips):
        view = F.resize(Image.fromarray(crops[s][top:top + h, left:left + w]), [out, out], InterpolationMode.BICUBIC,
                        antialias=True)
        expected.append(np.asarray(F.hflip(view) if flip else view))
    expected = np.stack(expected)
    at_origin = np.stack([np.zeros(n), np.zeros(n), heights, widths], 1).astype(np.int64)

    def resized(budget: int) -> tuple[np.ndarray, int]:
        plan = upload_indices(plan_resize(boxes, sample_of_view, at_origin, out, budget), torch.device("cpu"))
        views = resize_views([torch.as_tensor(c) for c in crops], plan, torch.as_tensor(flips), out, 2 * n)
        return views.numpy(), len(plan.chunks)

    (alone, chunks_alone), (together, chunks_together) = resized(1), resized(1 << 40)
    assert (chunks_alone, chunks_together) == (n, 1)
    np.testing.assert_array_equal(alone, together)
    later = vertical_first(boxes[:, 2], boxes[:, 3], out)
    assert 0 < later.sum() < 2 * n
    np.testing.assert_array_equal(alone[~later], expected[~later])
    difference = np.abs(alone[later].astype(int) - expected[later])
    assert difference.mean() <= MEAN_TOLERANCE and (difference > 8).mean() <= FAR_TOLERANCE
