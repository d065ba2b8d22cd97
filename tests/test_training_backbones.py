"""Backbones: each builds without top or pooling, matches its preprocessing, loads weight files.

Each keras.applications backbone is built once with random weights (smallest input size it
takes), and from a weights file the test writes both by Keras (``weights="imagenet"``, its
download served that file) and by the project: no download, ever.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from urllib.parse import urlsplit

import h5py
import numpy as np
import pytest
from training_helpers import limit_threads

limit_threads()

import keras  # noqa: E402

from fashionai.training.backbones import (  # noqa: E402
    _TABLE,
    BACKBONES,
    SMALL_CNN,
    SMALL_NETS,
    SMALL_VGG,
    _imagenet_build,
    _parse_row,
    build_backbone,
    notop_file_name,
    preprocessing_layer,
    weights_url,
)
from tests.backbone_table import (  # noqa: E402
    _table_row,
    application_names,
    describe_application,
    same_spec,
)

# Built in every run: the cheapest backbone of each Keras module but the three whose backbones
# are costly even at their minimum size (inception_v3, inception_resnet_v2, nasnet: 300 to 800
# layers), so every preprocessing mode and weights host; the rest (minutes) with
# `make test-backbones` (pytest --all-backbones).
CHEAP = ["ResNet50V2", "EfficientNetV2B0", "MobileNetV3Small", SMALL_CNN, SMALL_VGG,
         "ConvNeXtTiny", "DenseNet121", "ResNet50", "MobileNet", "Xception", "EfficientNetB0",
         "VGG16"]  # fmt: skip
EXPENSIVE = [name for name in BACKBONES if name not in CHEAP]
# Built from a weights file against Keras' own ImageNet build (two builds and a file each): the
# network that differs with weights="imagenet" (EfficientNetB0), one with no published hash
# (MobileNet), one that preprocesses inside itself, one of plain convolutions, the small nets;
# the whole table with --all-backbones.
COMPARED = ["EfficientNetB0", "MobileNet", "MobileNetV3Small", "VGG16", SMALL_CNN, SMALL_VGG]


def write_legacy_weights(model: keras.Model, path: Path) -> None:
    """Weights in the legacy HDF5 format of Keras' downloadable no-top files."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


@pytest.fixture(
    scope="module",
    params=CHEAP + [pytest.param(name, marks=pytest.mark.all_backbones) for name in EXPENSIVE],
)
def built(request: pytest.FixtureRequest) -> tuple[str, int, keras.Model]:
    """Each backbone built with random weights at its minimum input size."""
    name = request.param
    size = BACKBONES[name].min_size
    return name, size, build_backbone(name, size, weights=None)


def test_the_table_names_every_keras_application() -> None:
    assert sorted(set(BACKBONES) - set(SMALL_NETS)) == application_names()
    assert not any(BACKBONES[name].imagenet for name in SMALL_NETS)


def test_small_vgg_doubles_the_last_blocks_and_keeps_their_resolution() -> None:
    small, vgg = build_backbone(SMALL_CNN, 28, None), build_backbone(SMALL_VGG, 28, None)
    convs = [
        [layer.name for layer in model.layers if "conv" in layer.name] for model in (small, vgg)
    ]
    assert convs == [
        ["block1_conv", "block2_conv", "block3_conv"],
        ["block1_conv", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2"],
    ]
    assert small.output_shape == (None, 3, 3, 128)
    assert vgg.output_shape == (None, 7, 7, 128)
    assert vgg.count_params() > 2.5 * small.count_params()


DESCRIBED = ["ResNet50V2", "ConvNeXtTiny", "DenseNet121", "ResNet50", "MobileNet",
             "MobileNetV3Small"]  # fmt: skip


@pytest.mark.parametrize(
    "name",
    DESCRIBED + [pytest.param(name, marks=pytest.mark.all_backbones)
                 for name in application_names() if name not in DESCRIBED],
)  # fmt: skip
def test_the_table_is_what_keras_says(name: str) -> None:
    """Constructor, module, preprocessing, minimum size and weights URL and hash, read from
    the installed Keras; ``python -m tests.backbone_table`` regenerates the table."""
    described = describe_application(name)
    assert same_spec(BACKBONES[name], described), (BACKBONES[name], described)


def test_the_table_is_its_printed_form() -> None:
    """Each spec prints as its row of the table (``python -m tests.backbone_table``),
    and the row reads back as the spec."""
    rows = _TABLE.strip().splitlines()
    assert len(rows) == len(BACKBONES) - len(SMALL_NETS)
    for name, spec in BACKBONES.items():
        if name not in SMALL_NETS:
            assert _table_row(spec) in rows
            assert _parse_row(_table_row(spec)) == spec
    with pytest.raises(ValueError, match="no row"):
        _table_row(dataclasses.replace(BACKBONES["ResNet50"], rescale=(2.0, 0.0)))


def test_same_spec_sees_each_difference() -> None:
    spec = BACKBONES["DenseNet121"]
    assert same_spec(spec, spec)
    for change in ({"min_size": 33}, {"weights_url": "x"}, {"weights_hash": None}, {"bgr": True},
                   {"rescale": (1 / 255, 0.0)}, {"rescale": None}):  # fmt: skip
        assert not same_spec(spec, dataclasses.replace(spec, **change)), change


def test_backbone_has_no_top_and_no_pooling(built: tuple[str, int, keras.Model]) -> None:
    name, size, model = built
    assert model.input_shape == (None, size, size, 3)
    assert len(model.output_shape) == 4, f"{name} pools or has a top: {model.output_shape}"


def test_below_the_minimum_size_keras_refuses(built: tuple[str, int, keras.Model]) -> None:
    name, size, _ = built
    if name not in SMALL_NETS:
        with pytest.raises(ValueError, match=f"at least {size}"):
            build_backbone(name, size - 1, weights=None)


def test_preprocessing_layer_equals_preprocess_input(built: tuple[str, int, keras.Model]) -> None:
    name, size, _ = built
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    module = BACKBONES[name].module  # the application's own preprocess_input; SmallCNN: / 255
    preprocess = (
        getattr(keras.applications, module).preprocess_input if module else (lambda x: x / 255)
    )
    expected = np.asarray(preprocess(images.copy()))
    layer = preprocessing_layer(name)
    actual = images if layer is None else np.asarray(layer(images))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def keras_imagenet_build(name: str, size: int, path: Path) -> keras.Model:
    """Keras' own ``weights="imagenet"`` network of ``name``, its download served ``path``."""
    from keras.src.utils import file_utils

    asked: list[str] = []

    def serve(fname: str, origin: str, **kwargs: object) -> str:
        asked.append(origin)
        return str(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(file_utils, "get_file", serve)
        constructor = getattr(keras.applications, name)
        model = constructor(include_top=False, weights="imagenet", input_shape=(size, size, 3))
    assert asked == [weights_url(name)]
    return model


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined")  # MobileNets below 224 px
@pytest.mark.parametrize(
    "name",
    COMPARED
    + [pytest.param(n, marks=pytest.mark.all_backbones) for n in BACKBONES if n not in COMPARED],
)
def test_weights_file_builds_what_keras_builds_with_imagenet(name: str, tmp_path: Path) -> None:
    """A file in the format and under the name of Keras' no-top file gives the features of
    Keras' own ``weights="imagenet"`` build served that file (SmallCNN, SmallVGG: their
    ``.weights.h5`` gives the features of the network saved)."""
    size = BACKBONES[name].min_size
    model = build_backbone(name, size, weights=None)
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    if name in SMALL_NETS:
        path = tmp_path / "small.weights.h5"
        model.save_weights(path)
        expected = model(images)
    else:
        images = getattr(keras.applications, BACKBONES[name].module).preprocess_input(images)
        path = tmp_path / Path(urlsplit(weights_url(name)).path).name
        write_legacy_weights(model, path)
        expected = keras_imagenet_build(name, size, path)(images)
    assert np.std(expected) > 0  # features that can tell two networks apart
    loaded = build_backbone(name, size, weights=str(path))
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(expected), rtol=1e-6)


def test_own_weights_file_loads_into_the_imagenet_network(tmp_path: Path) -> None:
    """A ``.weights.h5`` of EfficientNet's random network loads into its ImageNet network
    (a weights file gives that one), which has one more layer (weightless: a scaling)."""
    random = build_backbone("EfficientNetB0", 32, weights=None)
    path = tmp_path / "own.weights.h5"
    random.save_weights(path)
    loaded = build_backbone("EfficientNetB0", 32, weights=str(path))
    for original, copy in zip(random.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(original), np.asarray(copy))


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (Exception("URL fetch failure on https://x: None -- [Errno -3] no name"), OSError),
        (Exception("some other failure"), Exception),
    ],
    ids=["offline", "other"],
)
def test_keras_failing_to_download_imagenet_weights_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, failure: Exception, expected: type[Exception]
) -> None:
    """As Keras' get_file fails without internet: a bare Exception, made an OSError that says
    what to do (the job ends in that one line); any other failure passes unchanged."""
    from keras.src.utils import file_utils

    def offline(*args: object, **kwargs: object) -> str:
        raise failure

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(expected) as error:
        build_backbone("MobileNetV3Small", 32, "imagenet")
    assert type(error.value) is expected
    if expected is OSError:
        assert str(error.value).startswith(
            "MobileNetV3Small: Keras cannot download its ImageNet weights (URL fetch failure"
        )
        assert "set train.fetch_weights: true" in str(error.value)
        assert "mobilenet_v3/weights_mobilenet_v3_small" in str(error.value)


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
    legacy = tmp_path / "dense.h5"  # into Keras' ImageNet network: its loading errors alone
    write_legacy_weights(other, legacy)
    with pytest.raises(ValueError, match=r"dense\.h5 does not fit backbone VGG16: ValueError"):
        build_backbone("VGG16", 32, weights=str(legacy))
    with pytest.raises(ValueError, match="at least 32") as error:
        build_backbone("VGG16", 31, weights=str(legacy))
    assert "does not fit" not in str(error.value)
    with pytest.raises(RuntimeError, match=r"VGG16 no longer loads .*dense\.h5: Keras changed"):
        _imagenet_build(lambda weights: other, legacy, "VGG16")  # a Keras that ignores the file


def test_imagenet_urls_are_those_keras_uses() -> None:
    from keras.src.applications import convnext, inception_resnet_v2, resnet

    assert weights_url("ResNet50V2") == (
        resnet.BASE_WEIGHTS_PATH + "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    assert BACKBONES["ResNet50V2"].weights_hash == resnet.WEIGHTS_HASHES["resnet50v2"][1]
    assert weights_url("ConvNeXtTiny") == convnext.BASE_WEIGHTS_PATH + "convnext_tiny_notop.h5"
    assert BACKBONES["ConvNeXtTiny"].weights_hash == convnext.WEIGHTS_HASHES["convnext_tiny"][1]
    source = inspect.getsource(inception_resnet_v2)
    assert weights_url("InceptionResNetV2") == inception_resnet_v2.BASE_WEIGHT_URL + (
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    md5 = BACKBONES["InceptionResNetV2"].weights_hash
    assert f'file_hash="{md5}"' in source.split("tf_dim_ordering_tf_kernels_notop.h5")[1]
    assert notop_file_name("DenseNet201") == "DenseNet201_imagenet_notop.h5"
    with pytest.raises(ValueError, match="SmallCNN.*no ImageNet weights.*ConvNeXtBase"):
        weights_url(SMALL_CNN)
