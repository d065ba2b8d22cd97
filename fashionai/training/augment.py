"""Named random augmentations: Keras preprocessing layers, active only while training.

The names are those of the configuration schema (``train.augmentations``), which checks them
at start-up; inputs are 0..255 images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

# name -> (keras.layers class, its arguments)
AUGMENTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "flip": ("RandomFlip", {"mode": "horizontal"}),
    "rotation": ("RandomRotation", {"factor": 0.2}),
    "translation": ("RandomTranslation", {"height_factor": 0.3, "width_factor": 0.3}),
    "brightness": ("RandomBrightness", {"factor": 0.4, "value_range": (0, 255)}),
    "contrast": ("RandomContrast", {"factor": 0.4, "value_range": (0, 255)}),
}


def build_augmentation(names: Sequence[str], seed: int) -> keras.Sequential | None:
    """The augmentations ``names`` in that order as one ``keras.Sequential``; None if empty.

    Layer ``i`` gets seed ``seed + i``, so runs with the same settings augment alike.
    """
    if not names:
        return None
    import keras

    layers = []
    for offset, name in enumerate(names):
        class_name, arguments = AUGMENTATIONS[name]
        layer_class = getattr(keras.layers, class_name)
        layers.append(layer_class(**arguments, seed=seed + offset, name=f"augment_{name}"))
    return keras.Sequential(layers, name="augmentation")
