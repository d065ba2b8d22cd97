"""tf.data pipelines of a split file's images, with an optional cache of the resized images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from fashionai.pixels import dataset_options, decode_and_resize, decoded_batches

CACHE_BATCH = 64  # images decoded at a time into an image cache


def make_dataset(
    paths: Sequence[str],
    labels: Sequence[int] | np.ndarray | tuple[Any, ...],
    image_size: int,
    batch_size: int,
    training: bool,
    seed: int,
    threads: int | None = None,
    cache: str | Path | None = None,
    pad: str | None = None,
) -> tf.data.Dataset:
    """Prefetched batches of (float32 images 0..255, the ``labels`` of their rows:
    :func:`row_values`), decoded in parallel; training data reshuffled every epoch (from
    ``seed``); undecodable images dropped. ``pad``: None stretches, an anchor pads. ``cache``: a
    file prefix in an existing folder: every image is decoded once into ``<cache>.npy`` (uint8),
    whose memory map gives every pass the same batches as without it; delete it when done."""
    paths = np.asarray(paths, dtype=str)
    values = row_values(labels)
    rows = tf.data.Dataset.range(len(paths))
    if training:
        rows = rows.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    if cache is None:
        path_table = tf.constant(paths)

        def load(row: tf.Tensor) -> tuple[tf.Tensor, ...]:
            return decode_and_resize(tf.gather(path_table, row), image_size, pad), *values(row)

        data = rows.map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors().batch(batch_size)
    else:  # the same rows, those that did not decode dropped, read from the cache
        images, decoded = _fill_image_cache(paths, image_size, pad, threads, Path(f"{cache}.npy"))
        decoded_table = tf.constant(decoded)

        def read(batch: tf.Tensor) -> tuple[tf.Tensor, ...]:
            pixels = tf.numpy_function(
                partial(read_rows, images), [batch], tf.uint8, stateful=False
            )
            shape = [None, image_size, image_size, 3]
            return tf.ensure_shape(tf.cast(pixels, tf.float32), shape), *values(batch)

        data = rows.filter(lambda row: tf.gather(decoded_table, row)).batch(batch_size)
        data = data.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE).with_options(dataset_options(threads))


def row_values(labels: Any) -> Callable[[tf.Tensor], tuple[Any, ...]]:
    """rows -> a batch's elements after its inputs, at those rows, of ``labels``: an array over
    the rows (class indices as int32, else float32), or a tuple of arrays or dicts of arrays
    (a multi-output model's targets and sample weights)."""

    def table(array: Any) -> tf.Tensor:
        array = np.asarray(array)
        return tf.constant(array.astype(np.int32 if array.dtype.kind in "iu" else np.float32))

    parts = labels if isinstance(labels, tuple) else (np.asarray(labels),)
    tables = [tf.nest.map_structure(table, part) for part in parts]

    def values(rows: tf.Tensor) -> tuple[Any, ...]:
        return tuple(tf.nest.map_structure(lambda t: tf.gather(t, rows), part) for part in tables)

    return values


def _fill_image_cache(
    paths: np.ndarray, image_size: int, pad: str | None, threads: int | None, file: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Every image of ``paths`` decoded and resized as uint8 into the ``.npy`` ``file``: its
    memory map and, per path, whether it decoded."""
    shape = (len(paths), image_size, image_size, 3)
    array = np.lib.format.open_memmap(file, mode="w+", dtype=np.uint8, shape=shape)
    decoded = np.zeros(len(paths), dtype=bool)
    for rows, images in decoded_batches(paths, image_size, pad, CACHE_BATCH, threads):
        array[rows] = np.round(images.numpy()).astype(np.uint8)
        decoded[rows] = True
    array.flush()
    del array
    return np.load(file, mmap_mode="r"), decoded


def read_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` of a (memory-mapped) array, read in file order (sequential reads)."""
    order = np.argsort(rows)
    found = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    found[order] = array[rows[order]]
    return found
