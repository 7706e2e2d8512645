"""The boosting experiment's arms, its mean +- std over seeds and its table (the training it drives
is train's, tested in tests/test_end_to_end.py)."""
from __future__ import annotations

import statistics

import pytest

from bcl_dali.errors import UserError
from bcl_dali.experiments.boosting import Arm, boosting_markdown, parse_arms, parse_seeds, summarise
from tests.cli_support import assert_one_line_error, run


def test_arms_are_a_method_its_boost_and_its_weight_normalisation_named_as_runs_are():
    """A preset keeps its own boost (bcl-d boosts twice) unless the arm gives one."""
    arms = parse_arms("simclr,simclr:1:rank,moco:1,byol,bcl-d,bcl-i:0:rank")
    assert arms[1] == Arm("simclr", 1, "rank") and arms[4] == Arm("bcl-d", 2)
    assert [arm.name for arm in arms] == ["simclr", "bcl-i-rank", "moco-boost1", "byol", "bcl-d", "simclr-rank"]
    assert arms[2].settings() == {"method": "moco", "boost": 1, "weight_norm": "paper"}


@pytest.mark.parametrize("text", ["swav", "simclr:x", "simclr:\u0661", "simclr:1:median", "simclr:1:rank:2",
                                  "simclr,simclr:0", "simclr:1,bcl-i", ""])
def test_bad_arms_are_refused(text):
    with pytest.raises(UserError, match="--arms"):
        parse_arms(text)


def test_seeds_are_different_integers():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    for text in ("0,0", "a", "-1", ""):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(text)


def _numbers(top1: float, rho: dict[str, float]) -> dict:
    return {"run": "r", "top1": top1, "many": top1 + 10, "medium": top1, "few": None, "knn_top1": top1 / 2, "rho": rho}


def test_the_summary_is_the_mean_and_the_sample_std_over_seeds_per_number_and_epoch():
    runs = [_numbers(40.0, {"2": -0.5, "3": -0.2}), _numbers(44.0, {"2": -0.1}), _numbers(45.0, {"2": -0.3})]
    table = summarise(runs)
    assert table["top1"] == [statistics.fmean([40, 44, 45]), statistics.stdev([40, 44, 45])]
    assert table["many"][0] == pytest.approx(53.0) and table["few"] == [None, None]
    assert table["rho"]["2"] == [pytest.approx(-0.3), pytest.approx(0.2)]
    assert table["rho"]["3"] == [-0.2, 0.0]
    page = boosting_markdown({"settings": {"epochs": 3}, "seeds": [0, 1, 2], "shot": "100", "arms": ["simclr"],
                              "table": {"simclr": table}})
    assert "| simclr | 43.00 +- 2.65 | 53.00 +- 2.65 | 43.00 +- 2.65 | n/a | 21.50 +- 1.32 |" in page
    assert "| 2 | -0.300 +- 0.200 |" in page and "100-shot" in page


def test_a_bad_arm_on_the_command_line_is_one_line(tmp_path):
    assert_one_line_error(run("experiment", "boosting", "--out", tmp_path / "e", "--arms", "simclr:two"), "--arms")
    assert not (tmp_path / "e").exists()
