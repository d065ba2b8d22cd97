"""Image files to model inputs: float32 ``size x size x 3`` tensors with values in 0..255.

One decoder for training, validation and prediction, so all three see the same pixels.
``tf.io.decode_image`` recognises the format by content (a PNG named ``.jpg`` is fine) and
``channels=3`` turns grayscale and RGBA into RGB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def decode(path: tf.Tensor | str) -> tf.Tensor:
    """The image file at ``path`` as a uint8 ``H x W x 3`` tensor (first frame of a GIF)."""
    data = tf.io.read_file(path)
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def decode_and_resize(path: tf.Tensor | str, image_size: int) -> tf.Tensor:
    """The image at ``path`` resized to ``image_size`` square, float32 in [0, 255].

    Bilinear with antialiasing (FashionAI images are about 512 px, models take 224-299).
    Raises ``tf.errors.InvalidArgumentError`` / ``NotFoundError`` for a bad file.
    """
    image = decode(path)
    resized = tf.image.resize(image, (image_size, image_size), antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0)


def load_images(paths: Sequence[str | Path], image_size: int) -> np.ndarray:
    """The images at ``paths`` as one float32 array ``(n, size, size, 3)``, for prediction.

    A file that cannot be read or decoded raises ValueError naming it.
    """
    images = np.empty((len(paths), image_size, image_size, 3), dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            images[i] = decode_and_resize(str(path), image_size).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            raise ValueError(f"cannot decode image {path}: {error.message}") from None
    return images
