"""TrainConfig in sections: each field belongs to one section, which checks it and gives its rule on
resume; a resume is refused, allowed or recorded by that rule alone."""
from __future__ import annotations

import dataclasses

import pytest

from bcl_dali.config import ADJUSTABLE, FIXED, OPERATIONAL, SECTIONS, TrainConfig
from bcl_dali.errors import UserError


def test_every_setting_lives_in_exactly_one_section_with_a_rule_on_resume():
    owners = {}
    for section in SECTIONS:
        for field in dataclasses.fields(section):
            assert field.name not in owners, f"{field.name} in {owners.get(field.name)} and {section.__name__}"
            owners[field.name] = section.__name__
            assert field.metadata["resume"] in (FIXED, ADJUSTABLE, OPERATIONAL)
    assert set(owners) == {field.name for field in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: section.__name__)
def test_each_section_checks_its_own_fields(section):
    """A section's check refuses a bad value of one of its fields, whatever the other sections hold."""
    bad = {"ModelSettings": {"width": 8}, "DataSettings": {"num_classes": 2},
           "AugmentationSettings": {"crop_scale": 1.5}, "ObjectiveSettings": {"beta": 1.0},
           "OptimisationSettings": {"lr": -1.0}, "MachineSettings": {"workers": -1},
           "RecordSettings": {"eval_every": -1}}[section.__name__]
    with pytest.raises(UserError):
        section.check(section(**bad))
    section.check(section())


def test_a_resume_follows_each_field_s_rule():
    stored = TrainConfig(dataset="synthetic-lt", num_classes=3, epochs=4).resolve()
    moved = dataclasses.replace(stored, workers=3, device="cpu", eval_every=2)
    moved.check_resumable_as(stored)
    assert moved.adjustments_from(stored) == {}
    remedied = dataclasses.replace(stored, lr=0.1, epochs=6)
    remedied.check_resumable_as(stored)
    assert remedied.adjustments_from(stored) == {"epochs": [4, 6], "lr": [stored.lr, 0.1]}
    with pytest.raises(UserError, match="batch_size"):
        dataclasses.replace(stored, batch_size=stored.batch_size // 2).check_resumable_as(stored)
