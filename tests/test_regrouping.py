"""Regroup plans: identity, the defaults of config.yaml, chains, and every configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fashionai.attributes import ATTRIBUTES, CATEGORIES
from fashionai.regrouping import (
    LabelGroup,
    plan_regroup,
)

LAPEL = "lapel_design_labels"
VALID = "valid names: Invisible, Notched, Collarless, Shawl Collar, Plus Size Shawl"
SLEEVE = "sleeve_length_labels"


def members(plan) -> dict[str, tuple[str, ...]]:
    return {group.name: group.members for group in plan.groups}


@pytest.mark.parametrize("spec", [None, {}, {"merge": None, "drop": None}, {"merge": {}}])
def test_identity(spec):
    plan = plan_regroup("pant_length_labels", spec)
    assert plan.category == "pant_length_labels"
    assert [g.name for g in plan.groups] == list(ATTRIBUTES["pant_length_labels"])
    assert plan.groups[3] == LabelGroup("3_4_length", "3/4 Length", ("3/4 Length",))
    assert plan.dropped == ()


@pytest.fixture(scope="module")
def configured() -> dict:
    """The ``regroup:`` block of the repository's config.yaml: the defaults users get."""
    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    return {
        category: plan_regroup(category, config["regroup"].get(category))
        for category in config["categories"]
    }


def test_config_yaml_regroups_lapel_and_neck(configured):
    assert members(configured[LAPEL]) == {
        "Invisible": ("Invisible", "Collarless"),
        "Notched": ("Notched",),
        "Shawl Collar": ("Shawl Collar", "Plus Size Shawl"),
    }
    assert [g.slug for g in configured[LAPEL].groups] == ["invisible", "notched", "shawl_collar"]
    assert members(configured["neck_design_labels"]) == {
        "Invisible": ("Invisible",),
        "Turtle Neck": ("Turtle Neck", "Low Turtle Neck"),
        "Ruffle Semi-High Collar": ("Ruffle Semi-High Collar",),
        "Draped Collar": ("Draped Collar",),
    }


def test_config_yaml_regroups_sleeve(configured):
    plan = configured[SLEEVE]
    assert members(plan) == {
        "Sleeveless": ("Sleeveless",),
        "Short Sleeves": ("Cup Sleeves", "Short Sleeves"),
        "Elbow Sleeves": ("Elbow Sleeves", "3/4 Sleeves"),
        "Long Sleeves": ("Wrist Length", "Long Sleeves", "Extra Long Sleeves"),
    }
    assert plan.dropped == ("Invisible",)
    assert plan.target_of("Invisible") is None
    assert plan.target_of("Cup Sleeves").slug == "short_sleeves"


def test_config_yaml_keeps_the_other_categories_as_they_are(configured):
    assert set(configured) == set(CATEGORIES)
    regrouped = {LAPEL, "neck_design_labels", SLEEVE}
    for category in set(CATEGORIES) - regrouped:
        assert [g.members for g in configured[category].groups] == [
            (name,) for name in ATTRIBUTES[category]
        ]
        assert configured[category].dropped == ()


def test_chains_resolve_to_the_end():
    spec = {"merge": {"Micro Length": "High Waist Length", "High Waist Length": "Regular Length"}}
    plan = plan_regroup("coat_length_labels", spec)
    assert members(plan)["Regular Length"] == (
        "High Waist Length",
        "Regular Length",
        "Micro Length",
    )
    assert "High Waist Length" not in members(plan)
    assert plan.target_of("Micro Length").name == "Regular Length"


def test_target_of_unknown_name():
    plan = plan_regroup(LAPEL, None)
    with pytest.raises(ValueError, match="'Hood' is not a class of lapel_design_labels"):
        plan.target_of("Hood")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"merge": {"Hood": "Invisible"}}, ["merge from 'Hood' is not a class", VALID]),
        ({"merge": {"Notched": "Hood"}}, ["merge into 'Hood' is not a class", VALID]),
        ({"drop": ["Hood"]}, ["drop 'Hood' is not a class", VALID]),
        (
            {"merge": {"Notched": "Collarless"}, "drop": ["Collarless"]},
            ["'Notched' is merged into 'Collarless', which is dropped", VALID],
        ),
        (
            {"merge": {"Notched": "Collarless", "Collarless": "Invisible"}, "drop": ["Invisible"]},
            ["'Notched' is merged into 'Invisible', which is dropped", VALID],
        ),
        (
            {"merge": {"Notched": "Invisible"}, "drop": ["Notched"]},
            ["'Notched' is both merged and dropped", VALID],
        ),
        (
            {"merge": {"Notched": "Collarless", "Collarless": "Notched"}},
            ["cycle: Notched -> Collarless -> Notched", VALID],
        ),
        ({"merge": {"Notched": "Notched"}}, ["cycle: Notched -> Notched", VALID]),
        (
            {"drop": ["Invisible", "Notched", "Collarless", "Shawl Collar", "Plus Size Shawl"]},
            ["every class is dropped", VALID],
        ),
        (
            {
                "merge": {"Notched": "Invisible"},
                "drop": ["Collarless", "Shawl Collar", "Plus Size Shawl", "Invisible"],
            },
            ["which is dropped", VALID],
        ),
    ],
)
def test_errors_name_the_category_and_the_name(spec, words):
    with pytest.raises(ValueError) as info:
        plan_regroup(LAPEL, spec)
    message = str(info.value)
    assert "regroup of lapel_design_labels" in message
    for word in words:
        assert word in message


def test_unknown_category():
    with pytest.raises(KeyError, match="unknown attribute 'hat_labels'"):
        plan_regroup("hat_labels", None)
