"""Image files to model inputs: float32 ``size x size x 3`` tensors with values in 0..255.

One decoder for training, validation and prediction, so all three see the same pixels; the format
is recognised by content and ``channels=3`` turns grayscale and RGBA into RGB.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

JPEG_SCALES = (1, 2, 4, 8)  # libjpeg decodes at 1/1, 1/2, 1/4, 1/8 of the size


def decode(path: tf.Tensor | str) -> tf.Tensor:
    """The image file at ``path`` as a uint8 ``H x W x 3`` tensor (first frame of a GIF)."""
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def decode_for_size(path: tf.Tensor | str, image_size: int) -> tf.Tensor:
    """The image at ``path`` as uint8 ``H x W x 3``; a JPEG decoded at the smallest DCT scale
    (1, 1/2, 1/4, 1/8) that keeps its short side at least ``image_size``."""
    data = tf.io.read_file(path)

    def jpeg() -> tf.Tensor:
        shape = tf.io.extract_jpeg_shape(data)
        short = tf.minimum(shape[0], shape[1])
        halvings = tf.reduce_sum(tf.cast(short >= image_size * tf.constant([2, 4, 8]), tf.int32))
        branches = [
            functools.partial(tf.io.decode_jpeg, data, channels=3, ratio=ratio)
            for ratio in JPEG_SCALES
        ]
        return tf.switch_case(halvings, branches)

    other = functools.partial(tf.io.decode_image, data, channels=3, expand_animations=False)
    image = tf.cond(tf.io.is_jpeg(data), jpeg, other)
    return tf.ensure_shape(image, [None, None, 3])


def decode_and_resize(path: tf.Tensor | str, image_size: int, pad: str | None = None) -> tf.Tensor:
    """The image at ``path`` as float32 ``image_size`` square in [0, 255]: padded to a square
    at ``pad`` (:func:`fashionai.attributes.pad_anchor`) or stretched; bilinear, antialiased
    only when a side shrinks 2x or more (below that bilinear does not alias)."""
    image = decode_for_size(path, image_size)
    if pad is not None:  # zeros: a wide image keeps its content at the pad edge, a tall one centred
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.maximum(height, width)
        top = side - height if pad == "bottom" else 0
        image = tf.image.pad_to_bounding_box(image, top, (side - width) // 2, side, side)
    resize = functools.partial(tf.image.resize, image, (image_size, image_size))
    shrinks_2x = tf.reduce_max(tf.shape(image)[:2]) >= 2 * image_size
    resized = tf.cond(shrinks_2x, functools.partial(resize, antialias=True), resize)
    return tf.clip_by_value(resized, 0.0, 255.0)


def load_images(paths: Sequence[str | Path], image_size: int, pad: str | None = None) -> np.ndarray:
    """The images at ``paths`` as one float32 array ``(n, size, size, 3)``; ValueError naming
    a file that cannot be read or decoded."""
    images = np.empty((len(paths), image_size, image_size, 3), dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            images[i] = decode_and_resize(str(path), image_size, pad).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            raise ValueError(f"cannot decode image {path}: {error.message}") from None
    return images


def decoded_batches(
    paths: Sequence[str] | np.ndarray,
    image_size: int,
    pad: str | None,
    batch_size: int,
    threads: int | None,
) -> Iterator[tuple[np.ndarray, tf.Tensor]]:
    """(row indices, float32 images) of ``paths`` in batches, decoded in parallel and
    prefetched; the rows of files that do not decode are left out."""
    data = _each_file(paths, lambda path: decode_and_resize(path, image_size, pad), threads)
    for rows, images in data.batch(batch_size).prefetch(tf.data.AUTOTUNE):
        yield rows.numpy(), images


def find_undecodable(paths: Sequence[str], threads: int | None = None) -> list[str]:
    """The files among ``paths`` the training decoder rejects, by a full decode in parallel
    (its shape kept so that it is not optimised away)."""
    paths = [str(path) for path in paths]
    decoded = np.zeros(len(paths), dtype=bool)
    shapes = _each_file(paths, lambda path: tf.shape(decode(path)), threads)
    for rows, _ in shapes.batch(4096).as_numpy_iterator():
        decoded[rows] = True
    return [paths[i] for i in np.flatnonzero(~decoded)]


def _each_file(
    paths: Sequence[str] | np.ndarray, function: Callable[..., tf.Tensor], threads: int | None
) -> tf.data.Dataset:
    """(row index, ``function(path)``) of ``paths`` in parallel, leaving out those it fails on."""
    rows = np.arange(len(paths), dtype=np.int64)
    data = tf.data.Dataset.from_tensor_slices((rows, np.asarray(paths, dtype=str)))
    data = data.map(lambda row, path: (row, function(path)), num_parallel_calls=tf.data.AUTOTUNE)
    return data.ignore_errors().with_options(dataset_options(threads))


def dataset_options(threads: int | None) -> tf.data.Options:
    """tf.data options: a private pool of ``threads`` threads (None: the default), autotuning
    off (``AUTOTUNE`` = the pool's size): deleting an iterator waits for the autotuning thread,
    up to 60 s in TF 2.21, at every epoch of ``fit`` (BENCHMARKS.md, "Real photographs, round 5").
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    if threads:
        options.threading.private_threadpool_size = threads
    return options
