"""The supported backbones: how each is built, preprocessed and loaded with weights.

The registry is plain data, so that the configuration check at start-up reads it without
TensorFlow; Keras is imported only when a backbone is built. Names, sizes and weights are
checked there (:func:`fashionai.config.check_train`), not again here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

SMALL_CNN = "SmallCNN"
SMALL_CNN_FILTERS = (32, 64, 128)


@dataclass(frozen=True)
class BackboneSpec:
    """One supported backbone: its ``keras.applications`` constructor and submodule (None for
    SmallCNN), and its ``preprocess_input`` as ``x * scale + offset`` on 0..255 inputs (a
    ``Rescaling`` layer, so saved models load without custom code; None when the application
    preprocesses inside itself)."""

    application: str | None
    module: str | None
    rescale: tuple[float, float] | None
    min_size: int
    imagenet: bool = True

    def constructor(self) -> Callable[..., keras.Model]:
        """The ``keras.applications`` constructor, or the built-in SmallCNN builder."""
        if self.application is None:
            return small_cnn
        import keras

        return getattr(keras.applications, self.application)

    def preprocess_input(self) -> Callable[[Any], Any]:
        """The application's own ``preprocess_input`` (SmallCNN: rescaling to [0, 1])."""
        if self.module is None:
            return lambda x: x / 255.0
        import keras

        return getattr(keras.applications, self.module).preprocess_input


BACKBONES: dict[str, BackboneSpec] = {
    "ResNet50V2": BackboneSpec("ResNet50V2", "resnet_v2", (1 / 127.5, -1.0), 32),
    "InceptionResNetV2": BackboneSpec(
        "InceptionResNetV2", "inception_resnet_v2", (1 / 127.5, -1.0), 75
    ),
    "EfficientNetV2B0": BackboneSpec("EfficientNetV2B0", "efficientnet_v2", None, 32),
    "MobileNetV3Small": BackboneSpec("MobileNetV3Small", "mobilenet_v3", None, 32),
    SMALL_CNN: BackboneSpec(None, None, (1 / 255.0, 0.0), 8, imagenet=False),
}


def small_cnn(
    input_shape: tuple[int, int, int], weights: None = None, include_top: bool = False
) -> keras.Model:
    """A small 3-block CNN (conv-BN-ReLU-maxpool, 32/64/128 filters) for CPU demos and tests.

    Takes 0..1 inputs (its preprocessing rescales); no top, no pooling, like the
    ``keras.applications`` backbones built with ``include_top=False``.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="small_cnn_input")
    x = inputs
    for block, filters in enumerate(SMALL_CNN_FILTERS, start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name="small_cnn")


def preprocessing_layer(name: str) -> keras.layers.Layer | None:
    """A ``Rescaling`` layer equal to the backbone's ``preprocess_input`` (None: identity)."""
    rescale = BACKBONES[name].rescale
    if rescale is None:
        return None
    from keras import layers

    scale, offset = rescale
    return layers.Rescaling(scale, offset, name="preprocess")


def build_backbone(name: str, image_size: int, weights: str | Path | None) -> keras.Model:
    """The backbone without top and without pooling, for ``image_size`` square RGB inputs.

    ``weights``: ``"imagenet"`` (Keras downloads and caches them), a path to a weights file
    (Keras' own no-top ``.h5`` files, or a ``.weights.h5`` saved from the same backbone), or
    None for random initialisation. A weights file that does not fit raises ValueError naming
    the backbone and the file.
    """
    imagenet = "imagenet" if weights == "imagenet" else None
    shape = (image_size, image_size, 3)
    model = BACKBONES[name].constructor()(include_top=False, weights=imagenet, input_shape=shape)
    if weights not in (None, "imagenet"):
        load_backbone_weights(model, name, Path(weights))
    return model


def load_backbone_weights(model: keras.Model, name: str, path: Path) -> None:
    """Load a weights file into a built backbone, with an error naming the file on failure."""
    from fashionai.training.weights import check_weights_file

    check_weights_file(path)
    try:
        model.load_weights(str(path))
    except Exception as error:  # Keras raises ValueError, OSError, KeyError... for bad files
        raise ValueError(
            f"weights file {path} does not fit backbone {name}: {type(error).__name__}: {error}"
        ) from error
