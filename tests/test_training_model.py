"""The classifier: feature extractor + head composed; freezing, fine-tuning, BN in inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_helpers import limit_threads

limit_threads()

import keras  # noqa: E402

from fashionai.training.model import (  # noqa: E402
    build_classifier,
    classifier_parts,
    compile_classifier,
    set_backbone_trainable,
)
from fashionai.training.settings import TrainSettings  # noqa: E402

SETTINGS = TrainSettings(backbone="SmallCNN", weights=None, image_size=16, batch_size=4,
                         augmentations=("flip", "brightness"), dropout=0.3)  # fmt: skip


def batch(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (n, 16, 16, 3)).astype("float32"), np.arange(n) % 3


def bn_and_conv(classifier) -> tuple[np.ndarray, np.ndarray]:
    backbone = classifier.backbone
    moving_mean = np.asarray(backbone.get_layer("block1_bn").moving_mean).copy()
    kernel = np.asarray(backbone.get_layer("block1_conv").kernel).copy()
    return moving_mean, kernel


def test_structure_and_reusable_parts() -> None:
    classifier = build_classifier(SETTINGS, n_classes=3, name="collar")
    model = classifier.model
    assert model.name == "collar"
    assert [layer.name for layer in model.layers] == [
        "image", "augmentation", "feature_extractor", "head",
    ]  # fmt: skip
    assert classifier.feature_extractor.output_shape == (None, 128)
    assert classifier.head.input_shape == (None, 128)
    assert model.output_shape == (None, 3)
    assert model.output.dtype == "float32"
    names = [layer.name for layer in classifier.feature_extractor.layers]
    assert names == ["image", "preprocess", "small_cnn", "pool"]
    images, _ = batch()
    probabilities = np.asarray(model(images, training=False))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    composed = classifier.head(classifier.feature_extractor(images, training=False), training=False)
    np.testing.assert_allclose(np.asarray(composed), probabilities, rtol=1e-5, atol=1e-6)
    # Inference (predict, or a call with training=False) never augments.
    np.testing.assert_allclose(model.predict(images, verbose=0), probabilities, rtol=1e-5)


def test_frozen_backbone_does_not_change_when_the_head_trains() -> None:
    classifier = build_classifier(SETTINGS, n_classes=3)
    assert not classifier.backbone.trainable
    assert len(classifier.model.trainable_weights) == 2  # the head's dense kernel and bias
    before = bn_and_conv(classifier)
    compile_classifier(classifier.model, 1e-2)
    classifier.model.fit(*batch(), batch_size=4, epochs=1, verbose=0)
    for old, new in zip(before, bn_and_conv(classifier), strict=True):
        np.testing.assert_array_equal(old, new)


def test_fine_tuning_trains_convolutions_but_keeps_batchnorm_in_inference_mode() -> None:
    classifier = build_classifier(SETTINGS, n_classes=3)
    set_backbone_trainable(classifier.model, True)
    compile_classifier(classifier.model, 1e-2)
    batchnorms = [layer for layer in classifier.backbone.layers
                  if isinstance(layer, keras.layers.BatchNormalization)]  # fmt: skip
    assert batchnorms and not any(layer.trainable for layer in batchnorms)
    moving_mean, kernel = bn_and_conv(classifier)
    classifier.model.fit(*batch(), batch_size=4, epochs=1, verbose=0)
    new_mean, new_kernel = bn_and_conv(classifier)
    np.testing.assert_array_equal(moving_mean, new_mean)
    assert not np.allclose(kernel, new_kernel)
    set_backbone_trainable(classifier.model, False)
    assert len(classifier.model.trainable_weights) == 2


def test_parts_are_found_again_in_a_saved_model(tmp_path: Path) -> None:
    classifier = build_classifier(SETTINGS, n_classes=3)
    path = tmp_path / "model.keras"
    classifier.model.save(path)
    loaded = classifier_parts(keras.models.load_model(path))
    assert loaded.backbone.name == "small_cnn"
    images, _ = batch(2)
    np.testing.assert_allclose(
        loaded.model.predict(images, verbose=0),
        classifier.model.predict(images, verbose=0),
        rtol=1e-5,
    )


def test_classifier_parts_rejects_other_models() -> None:
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError):
        classifier_parts(other)
