"""The supported backbones: every ``keras.applications`` constructor, SmallCNN and SmallVGG.

:data:`BACKBONES` is plain data, so that the start-up configuration check reads it without
TensorFlow; ``python -m tests.backbone_table`` generates it from Keras, and a test compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from fashionai.schema import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable

    import keras

SMALL_CNN, SMALL_VGG = "SmallCNN", "SmallVGG"
SMALL_CNN_FILTERS = (32, 64, 128)
# Convolutions per block. SmallVGG (no pooling after its last block): about 3 times SmallCNN's
# work, for about 2.5 points more on Fashion-MNIST (BENCHMARKS.md).
SMALL_NETS = {SMALL_CNN: (1, 1, 1), SMALL_VGG: (1, 2, 2)}
_HOST = "https://storage.googleapis.com"
_KERAS = f"{_HOST}/tensorflow/keras-applications/"

Channels = float | tuple[float, float, float]


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone: its ``keras.applications`` constructor and submodule (None for the small
    nets), minimum input size, ImageNet no-top weights' URL and hash (MD5, or SHA-256 when 64 hex
    digits; None: none published). ``rescale``: its ``preprocess_input`` as ``x * scale + offset``
    on 0..255 inputs (a number or one per channel), after RGB to BGR when ``bgr``; None when the
    application preprocesses inside itself."""

    application: str | None
    module: str | None
    rescale: tuple[Channels, Channels] | None
    min_size: int
    weights_url: str | None = None
    weights_hash: str | None = None
    bgr: bool = False

    @property
    def imagenet(self) -> bool:
        return self.weights_url is not None


# (``rescale``, ``bgr``) of each ``preprocess_input`` mode; "-": the application's own.
_MODES: dict[str, tuple[tuple[Channels, Channels] | None, bool]] = {
    "-": (None, False),
    "tf": ((1 / 127.5, -1.0), False),
    "caffe": ((1.0, (-103.939, -116.779, -123.68)), True),
    "torch": (((1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)),
               (-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225)), False),
}  # fmt: skip

# From `python -m tests.backbone_table` on keras 3.15.1: application, module, _MODES key,
# minimum size, no-top weights' URL relative to _KERAS, their hash ("-": none published).
_TABLE = """
ConvNeXtBase      convnext            -     32 convnext/convnext_base_notop.h5 40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45
ConvNeXtLarge     convnext            -     32 convnext/convnext_large_notop.h5 96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd
ConvNeXtSmall     convnext            -     32 convnext/convnext_small_notop.h5 6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab
ConvNeXtTiny      convnext            -     32 convnext/convnext_tiny_notop.h5 d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1
ConvNeXtXLarge    convnext            -     32 convnext/convnext_xlarge_notop.h5 de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05
DenseNet121       densenet            torch 32 densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5 30ee3e1110167f948a6b9946edeeb738
DenseNet169       densenet            torch 32 densenet/densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5 b8c4d4c20dd625c148057b9ff1c1176b
DenseNet201       densenet            torch 32 densenet/densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5 c13680b51ded0fb44dff2d8f86ac8bb1
EfficientNetB0    efficientnet        -     32 /keras-applications/efficientnetb0_notop.h5 50bc09e76180e00e4465e1a485ddc09d
EfficientNetB1    efficientnet        -     32 /keras-applications/efficientnetb1_notop.h5 74c4e6b3e1f6a1eea24c589628592432
EfficientNetB2    efficientnet        -     32 /keras-applications/efficientnetb2_notop.h5 111f8e2ac8aa800a7a99e3239f7bfb39
EfficientNetB3    efficientnet        -     32 /keras-applications/efficientnetb3_notop.h5 af6d107764bb5b1abb91932881670226
EfficientNetB4    efficientnet        -     32 /keras-applications/efficientnetb4_notop.h5 ebc24e6d6c33eaebbd558eafbeedf1ba
EfficientNetB5    efficientnet        -     32 /keras-applications/efficientnetb5_notop.h5 38879255a25d3c92d5e44e04ae6cec6f
EfficientNetB6    efficientnet        -     32 /keras-applications/efficientnetb6_notop.h5 9ecce42647a20130c1f39a5d4cb75743
EfficientNetB7    efficientnet        -     32 /keras-applications/efficientnetb7_notop.h5 cbcfe4450ddf6f3ad90b1b398090fe4a
EfficientNetV2B0  efficientnet_v2     -     32 efficientnet_v2/efficientnetv2-b0_notop.h5 893217f2bb855e2983157299931e43ff
EfficientNetV2B1  efficientnet_v2     -     32 efficientnet_v2/efficientnetv2-b1_notop.h5 0e80663031ca32d657f9caa404b6ec37
EfficientNetV2B2  efficientnet_v2     -     32 efficientnet_v2/efficientnetv2-b2_notop.h5 1dfe2e7a5d45b6632553a8961ea609eb
EfficientNetV2B3  efficientnet_v2     -     32 efficientnet_v2/efficientnetv2-b3_notop.h5 f6abf7b5849ac99a89b50dd3fd532856
EfficientNetV2L   efficientnet_v2     -     32 efficientnet_v2/efficientnetv2-l_notop.h5 b0b66b5c863aef5b46e8608fe1711615
EfficientNetV2M   efficientnet_v2     -     32 efficientnet_v2/efficientnetv2-m_notop.h5 1b8dc055df72dde80d614482840fe342
EfficientNetV2S   efficientnet_v2     -     32 efficientnet_v2/efficientnetv2-s_notop.h5 af0682fb74e8c54910f2d4393339c070
InceptionResNetV2 inception_resnet_v2 tf    75 inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5 d19885ff4a710c122648d3b5c3b684e4
InceptionV3       inception_v3        tf    75 inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 bcbd6486424b2319ff4ef7d526e38f63
MobileNet         mobilenet           tf    32 mobilenet/mobilenet_1_0_224_tf_no_top.h5 -
MobileNetV2       mobilenet_v2        tf    32 mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 -
MobileNetV3Large  mobilenet_v3        -     32 mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5 07fb09a5933dd0c8eaafa16978110389
MobileNetV3Small  mobilenet_v3        -     32 mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5 d3e8ec802a04aa4fc771ee12a9a9b836
NASNetLarge       nasnet              tf    32 nasnet/NASNet-large-no-top.h5 d81d89dc07e6e56530c4e77faddd61b5
NASNetMobile      nasnet              tf    32 nasnet/NASNet-mobile-no-top.h5 1ed92395b5b598bdda52abe5c0dbfd63
ResNet101         resnet              caffe 32 resnet/resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5 88cf7a10940856eca736dc7b7e228a21
ResNet101V2       resnet_v2           tf    32 resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5 c0ed64b8031c3730f411d2eb4eea35b5
ResNet152         resnet              caffe 32 resnet/resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5 ee4c566cf9a93f14d82f913c2dc6dd0c
ResNet152V2       resnet_v2           tf    32 resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5 ed17cf2e0169df9d443503ef94b23b33
ResNet50          resnet              caffe 32 resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 4d473c1dd8becc155b73f8504c6f6626
ResNet50V2        resnet_v2           tf    32 resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5 fac2f116257151a9d068a22e544a4917
VGG16             vgg16               caffe 32 vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 6d6bbae143d832006294945121d1f1fc
VGG19             vgg19               caffe 32 vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 253f8cb515780f3b799900260a226db6
Xception          xception            tf    71 xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5 b0042744bf5b25fce3cb969f33bebb97
"""  # noqa: E501


def _parse_row(row: str) -> BackboneSpec:
    name, module, mode, size, url, digest = row.split()
    rescale, bgr = _MODES[mode]
    weights_hash = None if digest == "-" else digest
    return BackboneSpec(name, module, rescale, int(size), urljoin(_KERAS, url), weights_hash, bgr)


BACKBONES: dict[str, BackboneSpec] = {
    **{spec.application: spec for spec in map(_parse_row, _TABLE.strip().splitlines())},
    **{name: BackboneSpec(None, None, (1 / 255.0, 0.0), 8) for name in SMALL_NETS},
}


def notop_file_name(backbone: str) -> str:
    """The file name of ``backbone``'s fetched ImageNet weights in resources/weights/."""
    return f"{backbone}_imagenet_notop.h5"


def weights_url(backbone: str) -> str:
    """The URL of the ImageNet no-top weights Keras itself downloads for ``backbone``."""
    spec = BACKBONES.get(backbone)
    if spec is None or spec.weights_url is None:
        known = ", ".join(name for name, spec in BACKBONES.items() if spec.imagenet)
        raise ValueError(
            f"backbone {backbone!r} has no ImageNet weights; backbones with them: {known}"
        )
    return spec.weights_url


def unknown_backbone(name: str) -> str:
    """Why ``name`` is not a backbone, with close matches."""
    hint = did_you_mean(name, BACKBONES, n=5, cutoff=0.5)  # families of close names
    return (
        f"not a backbone; {hint}the names are those of the keras.applications constructors "
        f"(https://keras.io/api/applications/) and {', '.join(SMALL_NETS)}"
    )


def small_cnn(input_shape: tuple[int, int, int], name: str = SMALL_CNN) -> keras.Model:
    """A 3-block conv-BN-ReLU net for CPU demos and small images (``SMALL_NETS[name]`` convolutions
    per block), max-pooled after each block but SmallVGG's last; 0..1 inputs, no top."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="small_cnn_input")
    x = inputs
    blocks = zip(SMALL_CNN_FILTERS, SMALL_NETS[name], strict=True)
    for block, (filters, convs) in enumerate(blocks, start=1):
        for conv in range(1, convs + 1):
            at = f"block{block}_{{}}{'' if convs == 1 else conv}"
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=at.format("conv"))(x)
            x = layers.BatchNormalization(name=at.format("bn"))(x)
            x = layers.ReLU(name=at.format("relu"))(x)
        if name == SMALL_CNN or block < len(SMALL_CNN_FILTERS):
            x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name="small_cnn" if name == SMALL_CNN else "small_vgg")


def preprocessing_layer(name: str) -> keras.layers.Layer | None:
    """A layer equal to the backbone's ``preprocess_input`` (None: identity)."""
    spec = BACKBONES[name]
    if spec.rescale is None:
        return None
    import numpy as np
    from keras import layers

    scale, offset = spec.rescale
    if not spec.bgr:
        return layers.Rescaling(scale, offset, name="preprocess")
    kernel = np.fliplr(np.eye(3)) * np.broadcast_to(np.asarray(scale, "float32"), (3,))
    dense = layers.Dense(3, trainable=False, name="preprocess")
    dense.build((None, 3))
    dense.set_weights([kernel.astype("float32"), np.broadcast_to(offset, (3,)).astype("float32")])
    return dense


def build_backbone(name: str, image_size: int, weights: str | Path | None) -> keras.Model:
    """The backbone without top and pooling, for ``image_size`` square RGB inputs, with
    ``weights``: ``"imagenet"`` (Keras downloads them), a weights file (Keras' no-top ``.h5``, or
    a ``.weights.h5``; ValueError if it does not fit) built as Keras' ``"imagenet"`` network
    (not always its ``weights=None`` one: EfficientNet scales its inputs), or None."""
    import keras

    shape = (image_size, image_size, 3)
    path = None if weights in (None, "imagenet") else Path(weights)
    if path is not None:
        check_weights_file(path)
    if name in SMALL_NETS:
        model = small_cnn(shape, name)
        if path is not None:
            try:
                model.load_weights(str(path))
            except Exception as error:  # ValueError, OSError, KeyError... for bad files
                raise _misfit(path, name, error) from error
        return model
    constructor = getattr(keras.applications, BACKBONES[name].application)
    build = partial(constructor, include_top=False, input_shape=shape)
    if path is not None:
        return _imagenet_build(build, path, name)
    try:
        return build(weights=weights)
    except Exception as error:  # Keras' bare Exception when it cannot download the weights
        if not str(error).startswith("URL fetch failure"):
            raise
        raise OSError(
            f"{name}: Keras cannot download its ImageNet weights ({error}). Without internet "
            "here, set train.fetch_weights: true and run the workflow once where there is "
            "internet (rule fetch_weights keeps the file for every job), or download "
            f"{weights_url(name)} elsewhere and set train.weights to that file"
        ) from None


def _imagenet_build(build: Callable[..., keras.Model], path: Path, name: str) -> keras.Model:
    """``build(weights="imagenet")`` loading ``path`` instead of downloading: Keras has no
    public way, so its private ``file_utils.get_file`` returns ``path`` during the build (a test
    compares with Keras' own build)."""
    from keras.src.utils import file_utils

    get_file, asked = file_utils.get_file, []

    def local_file(*args: object, **kwargs: object) -> str:
        asked.append(path)
        return str(path)

    file_utils.get_file = local_file
    try:
        model = build(weights="imagenet")
    except Exception as error:  # Keras raises ValueError, OSError, KeyError... for bad files
        if not asked:  # not a loading error: Keras' own, as without a weights file
            raise
        raise _misfit(path, name, error) from error
    finally:
        file_utils.get_file = get_file
    if not asked:  # Keras downloaded its file some other way, and ignored ours
        raise RuntimeError(f"keras.applications.{name} no longer loads {path}: Keras changed")
    return model


def _misfit(path: Path, name: str, error: Exception) -> ValueError:
    return ValueError(
        f"weights file {path} does not fit backbone {name}: {type(error).__name__}: {error}"
    )


def check_weights_file(path: Path, name: str | None = None) -> None:
    """ValueError if ``path`` is missing or its name (``name``, if to be renamed) misfits it."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    if not name.endswith((".h5", ".hdf5", ".keras")):
        raise ValueError(f"weights file {path}: expected an .h5 / .weights.h5 file")
    if name.endswith(".keras"):
        return
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            legacy = "layer_names" in handle.attrs or "model_weights" in handle
    except OSError as error:
        raise ValueError(f"weights file {path} is not an HDF5 file: {error}") from error
    if legacy and name.endswith(".weights.h5"):
        raise ValueError(
            f"weights file {path} is in Keras' legacy HDF5 format: rename it to *.h5 "
            "(the .weights.h5 suffix makes Keras read it as the Keras 3 format)"
        )
    if not legacy and not name.endswith(".weights.h5"):
        raise ValueError(
            f"weights file {path} is in the Keras 3 weights format: rename it to *.weights.h5"
        )
