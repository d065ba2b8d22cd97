"""Named random augmentations (``train.augmentations``): Keras layers active only in training.

:data:`AUGMENTATIONS` change each image alone, inside the model (:func:`build_augmentation`),
so they also make the feature cache's views; :data:`MIXING` (MixUp, CutMix) blend pairs of
images and their target rows, so they run on the input pipeline's training batches
(:func:`mix_batches`), never on cached features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# name -> (keras.layers class, its arguments)
AUGMENTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "flip": ("RandomFlip", {"mode": "horizontal"}),
    "rotation": ("RandomRotation", {"factor": 0.2}),
    "translation": ("RandomTranslation", {"height_factor": 0.3, "width_factor": 0.3}),
    "brightness": ("RandomBrightness", {"factor": 0.4, "value_range": (0, 255)}),
    "contrast": ("RandomContrast", {"factor": 0.4, "value_range": (0, 255)}),
    # Random erasing (Zhong et al. 2017): half the images get a random patch of noise.
    "random_erasing": (
        "RandomErasing",
        {"factor": (0.5, 0.5), "value_range": (0, 255), "fill_value": None},
    ),
    "randaugment": ("RandAugment", {"value_range": (0, 255), "num_ops": 2, "factor": 0.5}),
}
MIXING: dict[str, tuple[str, dict[str, Any]]] = {
    "mixup": ("MixUp", {"alpha": 0.2}),
    "cutmix": ("CutMix", {"factor": 1.0}),
}
NAMES = (*AUGMENTATIONS, *MIXING)  # the schema's list


def mixes(names: Sequence[str]) -> list[str]:
    """The augmentations among ``names`` that mix images and targets (MixUp, CutMix)."""
    return [name for name in names if name in MIXING]


def build_augmentation(names: Sequence[str], seed: int) -> keras.Sequential | None:
    """The per-image augmentations among ``names`` in that order as one ``keras.Sequential``
    (None: none); layer ``i`` of ``names`` gets seed ``seed + i``."""
    layers = [
        _layer(AUGMENTATIONS[name], name, seed + offset)
        for offset, name in enumerate(names)
        if name in AUGMENTATIONS
    ]
    if not layers:
        return None
    import keras

    return keras.Sequential(layers, name="augmentation")


def mix_batches(data: tf.data.Dataset, names: Sequence[str], seed: int) -> tf.data.Dataset:
    """``data`` (batches of 0..255 images and float target rows) with the mixing augmentations
    among ``names`` applied to each batch in turn; ``data`` itself if there are none."""
    mixing = [_layer(MIXING[name], name, seed + 1000 + i) for i, name in enumerate(mixes(names))]
    if not mixing:
        return data
    import tensorflow as tf

    def mix(images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        for layer in mixing:
            mixed = layer({"images": images, "labels": targets}, training=True)
            images, targets = mixed["images"], mixed["labels"]
        return images, targets

    return data.map(mix, num_parallel_calls=tf.data.AUTOTUNE)


def _layer(spec: tuple[str, dict[str, Any]], name: str, seed: int) -> keras.layers.Layer:
    import keras

    class_name, arguments = spec
    return getattr(keras.layers, class_name)(**arguments, seed=seed, name=f"augment_{name}")
