"""TrainSettings: defaults, the train: mapping, and messages that name the key and the value."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from training_helpers import subprocess_env

from fashionai.training.backbones import BACKBONES, check_backbone
from fashionai.training.settings import TrainSettings


def test_defaults_match_the_design() -> None:
    settings = TrainSettings.from_config(None)
    assert settings == TrainSettings()
    assert settings.backbone == "ResNet50V2" and settings.weights == "imagenet"
    assert settings.image_size == 224
    assert (settings.batch_size, settings.epochs, settings.patience) == (32, 60, 15)
    assert (settings.validation_split, settings.test_split) == (0.2, 0.1)
    assert (settings.seed, settings.gpus) == (117, 1)
    assert settings.augmentations == () and settings.fine_tune is False
    assert (settings.learning_rate, settings.head_epochs, settings.dropout) == (1e-3, 10, 0.2)
    assert settings.class_weights is True and settings.mixed_precision is False
    assert settings.views is None and settings.cache_features and settings.cache_images


def test_from_config_takes_every_key() -> None:
    mapping = {
        "backbone": "InceptionResNetV2", "weights": "resources/weights/x.h5", "image_size": 299,
        "batch_size": 16, "epochs": 30, "patience": 5, "validation_split": 0.25, "seed": 1,
        "test_split": 0.05,
        "augmentations": ["flip", "contrast"], "fine_tune": True, "gpus": 2,
        "learning_rate": 0.01, "head_epochs": 3, "dropout": 0.0, "class_weights": False,
        "mixed_precision": True, "views": 4, "cache_features": False, "cache_images": False,
    }  # fmt: skip
    settings = TrainSettings.from_config(mapping)
    assert settings.augmentations == ("flip", "contrast")
    data = settings.to_dict()
    assert data == mapping
    json.dumps(data)
    hash(settings)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("backbone", "ResNet51"),
        ("weights", ""),
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
        ("augmentations", ["flip", "zoom"]),
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
    ],
)
def test_bad_values_name_the_key_and_the_value(key: str, value: object) -> None:
    with pytest.raises(ValueError) as error:
        TrainSettings.from_config({key: value})
    message = str(error.value)
    assert f"train.{key}" in message
    assert repr(value) in message or str(value) in message


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"train\.learningrate.*0\.1.*known keys"):
        TrainSettings.from_config({"learningrate": 0.1})


def test_small_cnn_has_no_imagenet_weights() -> None:
    with pytest.raises(ValueError, match=r"train\.weights: 'imagenet'.*SmallCNN"):
        TrainSettings.from_config({"backbone": "SmallCNN"})
    assert TrainSettings.from_config({"backbone": "SmallCNN", "weights": None, "image_size": 16})


def test_head_epochs_must_leave_fine_tuning_epochs() -> None:
    with pytest.raises(ValueError, match=r"train\.head_epochs: 10 .*train\.epochs \(10\)"):
        TrainSettings.from_config({"fine_tune": True, "epochs": 10})
    # Without fine-tuning head_epochs is not used, so it is not held against epochs.
    assert TrainSettings.from_config({"epochs": 5}).epochs == 5


def test_check_backbone_lists_the_supported_ones() -> None:
    for name in BACKBONES:
        check_backbone(name)
    with pytest.raises(ValueError) as error:
        check_backbone("VGG16")
    assert "'VGG16'" in str(error.value)
    for name in BACKBONES:
        assert name in str(error.value)


def test_settings_do_not_import_tensorflow() -> None:
    """The workflow checks settings at start-up: that must not load TensorFlow."""
    code = (
        "import sys; import fashionai.training.settings, fashionai.training.weights; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env())


def test_feature_views_default_to_one_per_augmentation_plus_the_image() -> None:
    assert TrainSettings().feature_views == 1
    assert TrainSettings(augmentations=("flip", "contrast")).feature_views == 3
    assert TrainSettings(augmentations=("flip",), views=5).feature_views == 5
    assert TrainSettings(augmentations=("flip",), views=1).feature_views == 1
