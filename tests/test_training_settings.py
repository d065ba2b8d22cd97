"""TrainSettings: defaults, the train: mapping, and messages that name the key and the value."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from training_helpers import subprocess_env

from fashionai.config import validate_config
from fashionai.schema import ConfigError, load_schema, schema_defaults
from fashionai.training.augment import NAMES
from fashionai.training.backbones import BACKBONES
from fashionai.training.settings import TrainSettings, check_train


def test_defaults_are_the_schema_defaults() -> None:
    defaults = schema_defaults("train")
    settings = TrainSettings.from_config(None)
    assert settings == TrainSettings()
    for field in fields(TrainSettings):
        expected = None if field.name == "fold" else defaults[field.name]  # fold: no config key
        assert getattr(settings, field.name) == (
            tuple(expected) if isinstance(expected, list) else expected
        ), field.name
    assert TrainSettings.from_config({"epochs": 3}) == TrainSettings(epochs=3)


def test_schema_names_the_augmentations_of_the_code_and_python_the_backbones() -> None:
    train = load_schema()["properties"]["train"]["properties"]
    assert "enum" not in train["backbone"]  # check_train reads BACKBONES
    assert train["augmentations"]["items"]["enum"] == list(NAMES)
    for name in BACKBONES:
        check_train(
            {**schema_defaults("train"), "backbone": name, "image_size": 331, "weights": None}
        )


def test_from_config_takes_every_key() -> None:
    mapping = {
        "backbone": "InceptionResNetV2",
        "weights": "resources/weights/x.h5",
        "image_size": 299,
        "batch_size": 16,
        "epochs": 30,
        "patience": 5,
        "validation_split": 0.25,
        "seed": 1,
        "test_split": 0.05,
        "init_seed": 5,
        "augmentations": ["flip", "contrast"],
        "fine_tune": True,
        "grouped": True,
        "learning_rate": 0.01,
        "head_epochs": 3,
        "dropout": 0.0,
        "class_weights": False,
        "mixed_precision": True,
        "views": 4,
        "cache_features": False,
        "resize": "pad",
        "maybe_labels": "soft",
        "maybe_weight": 0.5,
        "optimizer": "sgd",
        "weight_decay": 0.001,
        "lr_schedule": "cosine",
        "warmup_epochs": 2,
        "label_smoothing": 0.1,
        "folds": 5,
        "fold": 2,
    }
    settings = TrainSettings.from_config(mapping)
    assert settings.augmentations == ("flip", "contrast")
    data = settings.to_dict()
    assert data == mapping
    json.dumps(data)
    hash(settings)


def config_with(**train: object) -> dict:
    """A whole configuration whose train: block is ``train`` (the archives are generated)."""
    return {
        "archives": ["resources/synthetic/fashionAI_attributes_train_20180222.tar"],
        "categories": ["skirt_length_labels"],
        "train": {"backbone": "ResNet50V2", "weights": None, **train},
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("backbone", "ResNet51"),
        ("weights", 3),
        ("image_size", 16),  # below ResNet50V2's 32 px
        ("image_size", "224"),
        ("image_size", True),
        ("batch_size", 0),
        ("epochs", 2.5),
        ("patience", 0),
        ("validation_split", 0),
        ("validation_split", 1.5),
        ("test_split", -0.1),
        ("test_split", 0.8),  # with validation_split 0.2 nothing is left to train on
        ("seed", -1),
        ("augmentations", ["flip", "flip"]),
        ("augmentations", "flip"),
        ("fine_tune", "yes"),
        ("gpus", -1),
        ("learning_rate", 0),
        ("head_epochs", 0),
        ("dropout", 1.0),
        ("class_weights", 1),
        ("mixed_precision", None),
        ("views", 0),
        ("views", 2),  # without augmentations every view is the same
        ("cache_features", "no"),
        ("cache_images", 0),
        ("weights", "resources/weights/missing.h5"),
    ],
)
def test_bad_values_name_the_key_and_the_value(
    key: str, value: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as error:
        validate_config(config_with(**{key: value}))
    assert str(error.value).startswith(f"train.{key} = {value!r}: ")


def test_validation_fills_the_defaults_in() -> None:
    config = validate_config(config_with(epochs=3))
    assert config["train"] == {**schema_defaults("train"), "weights": None, "epochs": 3}
    assert config["eval"] == schema_defaults("eval")
    assert config["questions"] is None


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(TypeError, match="learningrate"):
        TrainSettings.from_config({"learningrate": 0.1})
    with pytest.raises(ConfigError, match=r"^train\.learningrate = 0\.1: not a known key"):
        validate_config(config_with(learningrate=0.1))


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"backbone": "SmallCNN", "weights": "imagenet"}, "ImageNet weights for train.backbone"),
        ({"fine_tune": True, "epochs": 10}, "must be below train.epochs (10) with"),
        ({"views": 2}, "more than one view needs train.augmentations"),
        ({"image_size": 31}, "'ResNet50V2' needs at least 32 px"),
        ({"backbone": "InceptionResNetV2", "image_size": 74}, "needs at least 75 px"),
    ],
)
def test_check_train_names_where_the_settings_come_from(train: dict, message: str) -> None:
    settings = {**schema_defaults("train"), **train}
    with pytest.raises(ConfigError) as error:
        check_train(settings, where="experiments.wide")
    assert str(error.value).startswith("experiments.wide.")
    assert message.replace("train.", "experiments.wide.") in str(error.value)


def test_dependent_train_values_that_fit() -> None:
    # Without fine-tuning head_epochs is not used, so it is not held against epochs.
    check_train({**schema_defaults("train"), "epochs": 5})
    check_train({**schema_defaults("train"), "views": 2, "augmentations": ["flip"]})
    small = {"backbone": "SmallCNN", "weights": None, "image_size": 8}
    check_train({**schema_defaults("train"), **small})


# Fine-tuning pretrained weights: a head phase of head_epochs, then epochs - head_epochs.
TWO_PHASES = {**schema_defaults("train"), "fine_tune": True, "lr_schedule": "cosine", "epochs": 10}


@pytest.mark.parametrize(
    ("train", "phase", "raised"),
    [
        ({"head_epochs": 3, "warmup_epochs": 3}, "the head phase's train.head_epochs (3)", "head_"),
        (
            {"head_epochs": 8, "warmup_epochs": 2},
            "the fine-tuning phase's train.epochs - train.head_epochs (10 - 8 = 2)",
            "",
        ),
        ({"fine_tune": False, "warmup_epochs": 10}, "train.epochs (10)", ""),
    ],
    ids=["head phase", "fine-tuning phase", "one phase"],
)
def test_warmup_must_be_shorter_than_each_phase(train: dict, phase: str, raised: str) -> None:
    """The warm-up restarts in each phase: a phase no longer than it never reaches its rate."""
    with pytest.raises(ConfigError) as error:
        check_train({**TWO_PHASES, **train})
    warmup = train["warmup_epochs"]
    assert str(error.value).startswith(f"train.warmup_epochs = {warmup}: must be below {phase} ")
    assert str(error.value).endswith(f"; lower train.warmup_epochs or raise train.{raised}epochs")


@pytest.mark.parametrize(
    "train",
    [
        {"head_epochs": 3, "epochs": 6, "warmup_epochs": 2},  # each phase one epoch longer
        {"head_epochs": 3, "warmup_epochs": 5, "weights": None},  # random: one phase of 10
        {"head_epochs": 3, "warmup_epochs": 9, "fine_tune": False},  # one head phase of 10
    ],
)
def test_warmup_shorter_than_each_phase_fits(train: dict) -> None:
    check_train({**TWO_PHASES, **train})


def test_settings_and_config_import_nothing_heavy() -> None:
    """The workflow checks the configuration at parse time: no TensorFlow, numpy or Pillow."""
    code = (
        "import sys, fashionai.config, fashionai.training.settings, fashionai.training.weights; "
        "assert not {'tensorflow', 'keras', 'numpy', 'pandas', 'PIL'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env())


def test_feature_views_default_to_one_per_augmentation_plus_the_image() -> None:
    assert TrainSettings().feature_views == 1
    assert TrainSettings(augmentations=("flip", "contrast")).feature_views == 3
    assert TrainSettings(augmentations=("flip",), views=5).feature_views == 5
    assert TrainSettings(augmentations=("flip",), views=1).feature_views == 1
