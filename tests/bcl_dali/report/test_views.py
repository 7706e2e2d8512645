"""`cli.py show`: the picture of what BCL does, the same for both executors and for the same seed."""
from __future__ import annotations

import numpy as np
from PIL import Image

from tests.cli_support import assert_one_line_error, run


def picture(tmp_path, executor: str, name: str, seed: str = "3") -> np.ndarray:
    out = tmp_path / name
    result = run("show", "--executor", executor, "--weights", "0,0.5,1", "--seed", seed, "--images", "6",
                 "--method", "bcl-d", "--out", out)
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


def test_same_seed_and_executor_same_picture(tmp_path):
    first, again = picture(tmp_path, "dali", "a.png"), picture(tmp_path, "dali", "b.png")
    assert np.array_equal(first, again)
    assert not np.array_equal(first, picture(tmp_path, "dali", "c.png", seed="4"))


def test_dali_and_reference_draw_the_same_picture(tmp_path):
    """Both executors get the same parameters and compute the same pixels (tests/pipelines/test_dali_executor.py),
    so the pictures, labels and originals included, are identical."""
    dali, reference = picture(tmp_path, "dali", "dali.png"), picture(tmp_path, "reference", "reference.png")
    assert dali.shape == reference.shape == (7 * 34 + 2, 64 + 6 * 34 + 2, 3)
    np.testing.assert_array_equal(dali, reference)


def test_bad_weights_are_one_line(tmp_path):
    assert_one_line_error(run("show", "--weights", "0,2", "--out", tmp_path / "x.png"), "[0, 1]")
    assert_one_line_error(run("show", "--out", tmp_path / "missing" / "x.png"), "does not exist")
