"""A regrouped category tree as a table, its stratified split, and tf.data pipelines.

Tree layout: ``<tree>/labels.json`` and ``<tree>/<slug>/<image files>``; class index = the
position of the class in ``labels.json``'s ``classes``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from fashionai.training.images import IMAGE_EXTENSIONS, decode, decode_and_resize
from fashionai.trees import read_labels

COLUMNS = ["image", "image_name", "label", "label_index"]
SPLIT_COLUMNS = [*COLUMNS, "subset"]
TRAIN, VALIDATION = "train", "validation"
MAX_LOGGED_FILES = 20
# The shuffle buffer behind an image file cache holds at most this many bytes of images.
SHUFFLE_BUFFER_BYTES = 256 * 1024**2


def list_images(tree_dir: Path, slugs: Sequence[str] | None = None) -> pd.DataFrame:
    """Every image file of the tree: columns image (path), image_name, label, label_index.

    ``slugs`` (default: the classes of ``labels.json``) gives the class order; a class folder
    may be missing (no images). A folder that is not a class raises ValueError; hidden files
    and files without an image extension are left out. Sorted by class, then file name.
    """
    tree_dir = Path(tree_dir)
    if slugs is None:
        slugs = [entry["slug"] for entry in read_labels(tree_dir)["classes"]]
    folders = {entry.name for entry in os.scandir(tree_dir) if entry.is_dir()}
    strays = sorted(folders - set(slugs))
    if strays:
        raise ValueError(
            f"{tree_dir / strays[0]} is not a class of {tree_dir / 'labels.json'} "
            f"(classes: {', '.join(slugs)})"
        )
    names: list[str] = []
    labels: list[str] = []
    for slug in slugs:
        if slug in folders:
            found = [entry.name for entry in os.scandir(tree_dir / slug) if entry.is_file()]
            names.extend(found)
            labels.extend([slug] * len(found))
    frame = pd.DataFrame({"image_name": names, "label": labels}, dtype=object)
    lowered = frame["image_name"].str.lower()
    keep = lowered.str.endswith(IMAGE_EXTENSIONS) & ~frame["image_name"].str.startswith(".")
    frame = frame[keep]
    index_of = {slug: i for i, slug in enumerate(slugs)}
    frame = frame.assign(
        image=str(tree_dir) + os.sep + frame["label"] + os.sep + frame["image_name"],
        label_index=frame["label"].map(index_of).astype(np.int64),
    )
    frame = frame.sort_values(["label_index", "image_name"], kind="stable")
    return frame[COLUMNS].reset_index(drop=True)


def split_dataset(frame: pd.DataFrame, validation_split: float, seed: int) -> pd.DataFrame:
    """``frame`` with a ``subset`` column: ``"train"`` or ``"validation"``, stratified by class.

    Each class sends ``round(n * validation_split)`` of its ``n`` images to validation, but at
    least one and at most ``n - 1`` when ``n >= 2`` (a single image trains). Reproducible:
    the same frame and seed give the same split (numpy Generator, classes in index order).
    """
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, not {validation_split}")
    rng = np.random.default_rng(seed)
    subset = np.full(len(frame), TRAIN, dtype=object)
    label_index = frame["label_index"].to_numpy()
    for label in np.unique(label_index):
        rows = np.flatnonzero(label_index == label)
        n = len(rows)
        if n < 2:
            continue
        n_val = min(max(int(np.floor(n * validation_split + 0.5)), 1), n - 1)
        subset[rows[rng.permutation(n)[:n_val]]] = VALIDATION
    return frame.assign(subset=subset)


def prepare_split(
    tree_dir: Path,
    slugs: list[str],
    validation_split: float,
    seed: int,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, list[str]]:
    """The decodable images of the tree split into train/validation, and the skipped files.

    The one split of a category: the feature cache and training both take it from here (the
    training job reads it from the cache when there is one), so they cannot disagree.
    """
    frame = list_images(tree_dir, slugs)
    if frame.empty:
        raise ValueError(f"{tree_dir}: no images to train on")
    skipped = find_undecodable(frame["image"].tolist(), threads=threads)
    if skipped:
        log_skipped(skipped, log)
        frame = frame[~frame["image"].isin(skipped)].reset_index(drop=True)
    split = split_dataset(frame, validation_split, seed)
    log_split(split, slugs, log)
    if not (split["subset"] == VALIDATION).any():
        raise ValueError(f"{tree_dir}: no class has the 2 images needed for a validation set")
    return split, skipped


def log_split(split: pd.DataFrame, slugs: list[str], log: Callable[[str], None]) -> None:
    """One line per class: its train and validation counts."""
    counts = pd.crosstab(split["label"], split["subset"]).reindex(
        index=slugs, columns=[TRAIN, VALIDATION], fill_value=0
    )
    for slug, (n_train, n_val) in counts.iterrows():
        note = "" if n_val else "  (no validation image)"
        log(f"  {slug}: {n_train} train, {n_val} validation{note}")


def make_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    image_size: int,
    batch_size: int,
    training: bool,
    seed: int,
    threads: int | None = None,
    cache: str | Path | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images 0..255, int labels), decoded in parallel, never all in memory.

    Training data is reshuffled every epoch (reproducibly from ``seed``). Images that fail to
    decode are dropped (:func:`find_undecodable` counts them beforehand). ``threads`` caps
    tf.data's own thread pool (None: TensorFlow's default). Batches are prefetched, so the
    model never waits for the next one while the decoders keep up.

    ``cache``: a file prefix (its folder must exist) where the first pass writes the resized
    images (uint8: the resized values rounded to whole grey levels, a quarter of float32's
    bytes); later passes read them from there instead of decoding the files again. The
    training order is then a fixed seeded permutation reshuffled every epoch in a buffer of
    :data:`SHUFFLE_BUFFER_BYTES` (a full shuffle would hold every image in memory). A pass
    stopped early leaves no cache behind; delete the files when done.
    """
    paths = np.asarray(paths, dtype=str)
    labels = np.asarray(labels, dtype=np.int32)
    if cache is not None:
        return _cached_dataset(
            paths, labels, image_size, batch_size, training, seed, cache
        ).with_options(dataset_options(threads))
    data = tf.data.Dataset.from_tensor_slices((paths, labels))
    if training:
        data = data.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    data = data.map(
        lambda path, label: (decode_and_resize(path, image_size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    data = data.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return data.with_options(dataset_options(threads))


def _cached_dataset(
    paths: np.ndarray,
    labels: np.ndarray,
    image_size: int,
    batch_size: int,
    training: bool,
    seed: int,
    cache: str | Path,
) -> tf.data.Dataset:
    if training:
        order = np.random.default_rng(seed).permutation(len(paths))
        paths, labels = paths[order], labels[order]
    data = tf.data.Dataset.from_tensor_slices((paths, labels))
    data = data.map(
        lambda path, label: (
            tf.cast(tf.round(decode_and_resize(path, image_size)), tf.uint8),
            label,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    data = data.ignore_errors().cache(str(cache))
    if training:
        buffer = max(SHUFFLE_BUFFER_BYTES // (image_size * image_size * 3), batch_size)
        data = data.shuffle(
            min(buffer, max(len(paths), 1)), seed=seed, reshuffle_each_iteration=True
        )
    data = data.map(
        lambda image, label: (tf.cast(image, tf.float32), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def find_undecodable(paths: Sequence[str], threads: int | None = None) -> list[str]:
    """The files among ``paths`` that the training decoder rejects (missing, empty, corrupt).

    A full decode of every file in parallel, without resizing or keeping the pixels. The image
    shape is the output, so TensorFlow cannot optimise the decoding away.
    """
    paths = [str(path) for path in paths]
    if not paths:
        return []
    data = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(paths), dtype=np.int64), np.asarray(paths, dtype=str))
    )
    data = data.map(
        lambda index, path: (index, tf.shape(decode(path))),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    data = data.ignore_errors().batch(4096).with_options(dataset_options(threads))
    decoded = np.zeros(len(paths), dtype=bool)
    for indices, _ in data.as_numpy_iterator():
        decoded[indices] = True
    return [paths[i] for i in np.flatnonzero(~decoded)]


def dataset_options(threads: int | None) -> tf.data.Options:
    """tf.data options: a private thread pool of ``threads`` threads (None: the default)."""
    options = tf.data.Options()
    if threads:
        options.threading.private_threadpool_size = threads
    return options


def log_skipped(skipped: Sequence[str], log: Callable[[str], None]) -> None:
    """Log the images that do not decode: the first few by name, then how many more."""
    if skipped:
        log(f"skipping {len(skipped)} image(s) that do not decode:")
        for path in skipped[:MAX_LOGGED_FILES]:
            log(f"  {path}")
        if len(skipped) > MAX_LOGGED_FILES:
            log(f"  ... and {len(skipped) - MAX_LOGGED_FILES} more (listed in training.json)")
