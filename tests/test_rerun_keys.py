"""Which train: keys rerun what: for every key of the schema, a changed value changes rule
train's params (so Snakemake retrains) exactly when the key makes a model, and rule features'
params exactly when it defines the features. tests/test_workflow_train.py shows the same on a
real run (run-only keys rerun nothing, a model key retrains)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fashionai.config import validate_config
from fashionai.schema import load_schema
from fashionai.training.settings import (
    FEATURE_KEYS,
    RUN_ONLY_KEYS,
    TrainSettings,
    feature_set,
    feature_settings,
    model_settings,
)
from tests.workflow_helpers import workflow_config

TRAIN_SCHEMA = load_schema()["properties"]["train"]["properties"]


def another_value(key: str, value: Any) -> Any:
    """A value of ``key`` other than ``value`` (not necessarily valid with the other keys)."""
    spec = TRAIN_SCHEMA[key]
    if "enum" in spec:
        return next(option for option in spec["enum"] if option != value)
    if value is None:
        return "resources/weights/other.h5" if key in ("weights", "weights_url") else 3
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2
    if isinstance(value, list):
        return value[:-1] if value else ["rotation"]
    return f"{value}-other"


@pytest.fixture(scope="module")
def train() -> dict[str, Any]:
    """A validated train: block with every default filled in, ImageNet weights fetched."""
    config = validate_config(workflow_config(train={"backbone": "MobileNetV3Small"}))
    return {**config["train"], "weights": "imagenet"}


def test_every_schema_key_is_a_model_setting_or_run_only() -> None:
    fields = set(TrainSettings.__dataclass_fields__)
    # fold: not a config key; each fold member of train.folds gets its own (below).
    assert set(TRAIN_SCHEMA) | {"fold"} == fields | set(RUN_ONLY_KEYS) | {"fetch_weights"}
    assert not fields & set(RUN_ONLY_KEYS)


@pytest.mark.parametrize("key", sorted(TRAIN_SCHEMA))
def test_a_changed_key_retrains_exactly_when_it_makes_a_model(train: dict, key: str) -> None:
    changed = copy.deepcopy(train)
    changed[key] = another_value(key, train[key])
    before, after = model_settings(train), model_settings(changed)
    assert (before != after) == (key not in RUN_ONLY_KEYS), (key, train[key], changed[key])
    # fetch_weights chooses the weights file (an input of rule features and train); init_seed
    # draws a random backbone only (below), and these weights are ImageNet's.
    defines_features = key in set(FEATURE_KEYS) - {"init_seed"} or key == "fetch_weights"
    assert (feature_settings(before) != feature_settings(after)) == defines_features, key


def test_the_fold_makes_a_model_and_features_of_its_own(train: dict) -> None:
    one, two = (model_settings({**train, "folds": 2, "fold": fold}) for fold in (1, 2))
    assert one != two and feature_settings(one) != feature_settings(two)
    assert TrainSettings.from_config(two).fold == 2


def test_init_seed_defines_the_features_of_a_random_backbone(train: dict) -> None:
    random = {**train, "weights": None, "init_seed": None}
    other = model_settings({**random, "init_seed": 5})
    assert feature_settings(model_settings(random)) != feature_settings(other)


def test_the_model_settings_are_what_training_takes(train: dict) -> None:
    settings = TrainSettings.from_config(model_settings(train))
    assert settings.weights == "resources/weights/MobileNetV3Small_imagenet_notop.h5"
    assert TrainSettings.from_config(model_settings({**train, "fetch_weights": False})).weights == (
        "imagenet"
    )


@pytest.mark.parametrize(
    "weights", [{"weights": "imagenet"}, {"weights": "imagenet", "fetch_weights": False},
                {"weights": None}, {"weights": "resources/weights/own.weights.h5"}]
)  # fmt: skip
def test_rule_features_computes_the_cache_its_training_jobs_accept(
    train: dict, weights: dict
) -> None:
    """The feature settings of rule features' job (its params, rules/common.smk) are those a
    training job checks the cache against: the same weights file, an input of both rules."""
    experiment = {**train, **weights}
    params = feature_set(experiment)[1]
    job = TrainSettings.from_config(model_settings(experiment))  # rule train's params
    extracted = TrainSettings.from_config(params)  # workflow_scripts/extract_features.py
    assert feature_settings(extracted.to_dict()) == feature_settings(job.to_dict())
