"""The recipe's Gaussian blur against PIL's."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter

from bcl_dali.pipelines.blur import SIGMA_RANGE, box_weights, gaussian_blur


def test_gaussian_blur_is_pils():
    """PIL's ImageFilter.GaussianBlur (three box passes each way, 8.24 fixed point), bit for bit,
    over the recipe's sigma range, on views of odd sizes."""
    rng = np.random.default_rng(5)
    n = 150
    images = np.clip(np.cumsum(rng.integers(-40, 41, (n, 19, 26, 3)), axis=2) + 128, 0, 255).astype(np.uint8)
    sigma = rng.uniform(*SIGMA_RANGE, n).astype(np.float32)
    expected = np.stack([np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=float(s))))
                         for image, s in zip(images, sigma)])
    radius, ww, fw = box_weights(sigma)
    assert set(radius.tolist()) == {0, 1}
    got = gaussian_blur(*(torch.as_tensor(a) for a in (images, radius, ww, fw))).numpy()
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got, images)
