"""Backbones: each builds without top or pooling, matches its preprocessing, loads weight files.

Each keras.applications backbone is built once with random weights (smallest input size it
takes) and once more from a weights file the test writes: no download, ever.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import h5py
import numpy as np
import pytest
from training_helpers import limit_threads

limit_threads()

import keras  # noqa: E402

from fashionai.training.backbones import (  # noqa: E402
    BACKBONES,
    SMALL_CNN,
    build_backbone,
    preprocessing_layer,
)
from fashionai.training.weights import IMAGENET_NO_TOP, imagenet_weights_url  # noqa: E402

SIZES = {"ResNet50V2": 32, "InceptionResNetV2": 75, "EfficientNetV2B0": 32,
         "MobileNetV3Small": 32, SMALL_CNN: 16}  # fmt: skip


def write_legacy_weights(model: keras.Model, path: Path) -> None:
    """Weights in the legacy HDF5 format of Keras' downloadable no-top files."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


@pytest.fixture(scope="module", params=list(BACKBONES))
def built(request: pytest.FixtureRequest) -> tuple[str, int, keras.Model]:
    name = request.param
    return name, SIZES[name], build_backbone(name, SIZES[name], weights=None)


def test_every_backbone_is_covered() -> None:
    assert set(SIZES) == set(BACKBONES)
    assert set(IMAGENET_NO_TOP) == {name for name, spec in BACKBONES.items() if spec.imagenet}


def test_backbone_has_no_top_and_no_pooling(built: tuple[str, int, keras.Model]) -> None:
    name, size, model = built
    assert model.input_shape == (None, size, size, 3)
    assert len(model.output_shape) == 4, f"{name} pools or has a top: {model.output_shape}"


def test_preprocessing_layer_equals_preprocess_input(built: tuple[str, int, keras.Model]) -> None:
    name, size, _ = built
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    expected = np.asarray(BACKBONES[name].preprocess_input()(images.copy()))
    layer = preprocessing_layer(name)
    actual = images if layer is None else np.asarray(layer(images))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_weights_file_loads_into_a_new_backbone(
    built: tuple[str, int, keras.Model], tmp_path: Path
) -> None:
    """The legacy format of Keras' no-top files (SmallCNN: the Keras 3 format)."""
    name, size, model = built
    if name == SMALL_CNN:
        path = tmp_path / "small.weights.h5"
        model.save_weights(path)
    else:
        path = tmp_path / f"{name}_notop.h5"
        write_legacy_weights(model, path)
    loaded = build_backbone(name, size, weights=str(path))
    for original, copy in ((model.weights[0], loaded.weights[0]),
                           (model.weights[-1], loaded.weights[-1])):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(original), np.asarray(copy))


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.h5"
    with pytest.raises(ValueError, match="nowhere.h5 does not exist"):
        build_backbone(SMALL_CNN, 16, weights=str(missing))
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    mismatched = tmp_path / "dense.weights.h5"
    other.save_weights(mismatched)
    with pytest.raises(ValueError, match=r"dense\.weights\.h5 does not fit backbone SmallCNN"):
        build_backbone(SMALL_CNN, 16, weights=str(mismatched))
    legacy_named_new = tmp_path / "legacy.weights.h5"
    write_legacy_weights(other, legacy_named_new)
    with pytest.raises(ValueError, match=r"legacy\.weights\.h5 is in Keras' legacy.*rename"):
        build_backbone(SMALL_CNN, 16, weights=str(legacy_named_new))


def test_imagenet_urls_are_those_keras_uses() -> None:
    from keras.src.applications import efficientnet_v2, inception_resnet_v2, mobilenet_v3, resnet

    expected = {
        "ResNet50V2": (
            resnet.BASE_WEIGHTS_PATH + "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
            resnet.WEIGHTS_HASHES["resnet50v2"][1],
        ),
        "EfficientNetV2B0": (
            efficientnet_v2.BASE_WEIGHTS_PATH + "efficientnetv2-b0_notop.h5",
            efficientnet_v2.WEIGHTS_HASHES["b0"][1],
        ),
        "MobileNetV3Small": (
            mobilenet_v3.BASE_WEIGHT_PATH + "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
            mobilenet_v3.WEIGHTS_HASHES["small_224_1.0_float"][1],
        ),
    }
    for name, (url, md5) in expected.items():
        assert IMAGENET_NO_TOP[name] == (url, md5)
        assert imagenet_weights_url(name) == url
    url, md5 = IMAGENET_NO_TOP["InceptionResNetV2"]
    source = inspect.getsource(inception_resnet_v2)
    assert url == inception_resnet_v2.BASE_WEIGHT_URL + (
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    assert '"inception_resnet_v2_weights_"' in source
    assert '"tf_dim_ordering_tf_kernels_notop.h5"' in source
    assert f'file_hash="{md5}"' in source.split("tf_dim_ordering_tf_kernels_notop.h5")[1]
