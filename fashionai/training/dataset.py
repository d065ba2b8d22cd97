"""A regrouped category tree (:mod:`fashionai.trees`) as a table, its stratified split, and
tf.data pipelines; class index = the position of the class in ``labels.json``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from fashionai.images import check_image
from fashionai.pixels import dataset_options, decode_and_resize, decoded_batches, find_undecodable
from fashionai.training.settings import TrainSettings
from fashionai.trees import read_labels

COLUMNS = ["image", "image_name", "label", "label_index"]
SPLIT_COLUMNS = [*COLUMNS, "subset"]
TRAIN, VALIDATION, TEST = "train", "validation", "test"
SUBSETS = (TRAIN, VALIDATION, TEST)
MAX_LOGGED_FILES = 20
UNDECODABLE = "the training decoder cannot decode it"
CACHE_BATCH = 64  # images decoded at a time into an image cache


def list_images(tree_dir: Path, slugs: Sequence[str] | None = None) -> pd.DataFrame:
    """Every entry of the tree's class folders, whatever its name (decoding decided which
    files are images): columns image (path), image_name, label, label_index, sorted by class,
    then name. ``slugs`` (default: the classes of ``labels.json``) gives the class order; a
    class folder may be missing (no images); a folder that is not a class raises ValueError.
    """
    tree_dir = Path(tree_dir)
    if slugs is None:
        slugs = [entry["slug"] for entry in read_labels(tree_dir)["classes"]]
    folders = {entry.name for entry in os.scandir(tree_dir) if entry.is_dir()}
    if strays := sorted(folders - set(slugs)):
        raise ValueError(
            f"{tree_dir / strays[0]} is not a class of {tree_dir / 'labels.json'} "
            f"(classes: {', '.join(slugs)})"
        )
    rows = [
        (slug, index, entry.name)
        for index, slug in enumerate(slugs)
        if slug in folders
        for entry in os.scandir(tree_dir / slug)
    ]
    frame = pd.DataFrame(rows, columns=["label", "label_index", "image_name"])
    frame = frame.astype({"label": object, "image_name": object, "label_index": np.int64})
    frame["image"] = str(tree_dir) + os.sep + frame["label"] + os.sep + frame["image_name"]
    frame = frame.sort_values(["label_index", "image_name"], kind="stable")
    return frame[COLUMNS].reset_index(drop=True)


def split_dataset(
    frame: pd.DataFrame, slugs: Sequence[str], validation_split: float, test_split: float, seed: int
) -> pd.DataFrame:
    """``frame`` with a ``subset`` column: train, validation or test, stratified by class.

    Each class of ``n`` images sends ``round(n * validation_split)`` to validation and
    ``round(n * test_split)`` to test, at least one to each part whose share is above 0, and
    keeps at least one for training; a smaller class raises ValueError naming it and its
    count. The split depends only on the rows, ``seed`` and the shares.
    """
    if not (0 < validation_split < 1 and 0 <= test_split < 1 - validation_split):
        raise ValueError(
            f"validation_split ({validation_split}) must be above 0 and test_split "
            f"({test_split}) at least 0, together below 1"
        )
    parts = 3 if test_split > 0 else 2
    counts = frame["label"].value_counts().reindex(slugs, fill_value=0)
    if len(small := counts[counts < parts]):
        raise ValueError(
            f"class {small.index[0]!r} has {small.iloc[0]} image(s), too few for "
            f"{parts} parts (training, validation_split {validation_split}, test_split "
            f"{test_split}): each needs at least one image; merge or drop the class "
            "in regroup:"
        )
    rng = np.random.default_rng(seed)
    subset = np.full(len(frame), TRAIN, dtype=object)
    label_index = frame["label_index"].to_numpy()
    for label in np.unique(label_index):
        rows = np.flatnonzero(label_index == label)
        n = len(rows)
        n_val = max(int(np.floor(n * validation_split + 0.5)), 1)
        n_test = max(int(np.floor(n * test_split + 0.5)), 1) if test_split > 0 else 0
        while n_val + n_test >= n:  # training keeps one: take from the larger held-out part
            n_val, n_test = (n_val - 1, n_test) if n_val >= n_test else (n_val, n_test - 1)
        order = rows[rng.permutation(n)]
        subset[order[:n_val]] = VALIDATION
        subset[order[n_val : n_val + n_test]] = TEST
    return frame.assign(subset=subset)


def fold_split(split: pd.DataFrame, folds: int, fold: int, seed: int) -> pd.DataFrame:
    """``split`` (:func:`split_dataset`'s) with its test rows kept and its other rows cut into
    ``folds`` stratified folds: fold ``fold`` (1..folds) validates, the others train.

    The folds depend only on the rows, ``seed`` and ``folds``, not on ``fold``: the members of
    a k-fold experiment validate on disjoint parts that cover every non-test image. Each class's
    non-test rows, in a seeded random order, are dealt to the folds in turn (continuing from
    class to class), so a class's count differs by at most one between folds; a class with
    fewer non-test images than folds raises ValueError naming it.
    """
    if not 1 <= fold <= folds:
        raise ValueError(f"fold {fold} of {folds}: must be 1 to {folds}")
    held = split["subset"].to_numpy() != TEST
    labels = split["label_index"].to_numpy()
    counts = split.loc[held, "label"].value_counts()
    if len(small := counts[counts < folds]):
        raise ValueError(
            f"class {small.index[0]!r} has {small.iloc[0]} image(s) outside the test part, "
            f"too few for {folds} folds; merge or drop the class in regroup:"
        )
    order = np.lexsort((np.random.default_rng([seed, folds]).random(len(split)), labels))
    order = order[held[order]]  # the non-test rows by class, shuffled within each
    member = np.full(len(split), -1)
    member[order] = np.arange(len(order)) % folds
    subset = np.where(~held, TEST, np.where(member == fold - 1, VALIDATION, TRAIN))
    return split.assign(subset=subset.astype(object))


def prepare_split(
    tree_dir: Path,
    slugs: list[str],
    settings: TrainSettings,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The usable images of the tree split into train/validation/test (with ``folds``, fold
    ``fold`` of the non-test images validates: :func:`fold_split`), and the skipped files
    (``{path: reason}``: refused by :func:`fashionai.images.check_image`, or not decoded by
    the training decoder). The feature cache and training both take their split from here."""
    frame = list_images(tree_dir, slugs)
    # In this process: forking one that runs TensorFlow is unsafe, and 20k checks take 2 s.
    reasons = {path: check_image(path) for path in frame["image"]}
    skipped = {path: reason for path, reason in reasons.items() if reason is not None}
    checked = [path for path, reason in reasons.items() if reason is None]
    skipped.update(dict.fromkeys(find_undecodable(checked, threads), UNDECODABLE))
    log_skipped(skipped, log)
    frame = frame[~frame["image"].isin(list(skipped))].reset_index(drop=True)
    split = split_dataset(
        frame, slugs, settings.validation_split, settings.test_split, settings.seed
    )
    if settings.folds is not None:
        split = fold_split(split, settings.folds, settings.fold, settings.seed)
        log(f"fold {settings.fold} of {settings.folds} validates")
    log_split(split, slugs, log)
    return split, skipped


def log_split(split: pd.DataFrame, slugs: list[str], log: Callable[[str], None]) -> None:
    """One line per class: its train, validation and test counts."""
    counts = pd.crosstab(split["label"], split["subset"]).reindex(
        index=slugs, columns=list(SUBSETS), fill_value=0
    )
    for slug, (n_train, n_val, n_test) in counts.iterrows():
        log(f"  {slug}: {n_train} train, {n_val} validation, {n_test} test")


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
    """Prefetched batches of (float32 images 0..255, ``labels``: a class index or a float32
    target row per path; or a tuple of those, of dicts of them, for several elements after the
    images, :func:`row_values`), decoded in parallel, never all in memory; training data reshuffled
    every epoch (from ``seed``); images that fail to decode dropped. ``pad``: None stretches,
    an anchor (``pad_anchor``) pads first. ``threads`` caps tf.data's thread pool. ``cache``:
    a file prefix (its folder must exist): every image is decoded and resized once, into
    ``<cache>.npy`` (uint8, rounded to whole grey levels), and every pass reads the same
    batches as without a cache from that memory map. Delete the file when done."""
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
            pixels = tf.cast(gather_rows(images, batch), tf.float32)
            shape = [None, image_size, image_size, 3]
            return tf.ensure_shape(pixels, shape), *values(batch)

        data = rows.filter(lambda row: tf.gather(decoded_table, row)).batch(batch_size)
        data = data.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE).with_options(dataset_options(threads))


def row_values(labels: Any) -> Callable[[tf.Tensor], tuple[Any, ...]]:
    """rows -> the elements of a batch after its inputs, at those rows: of ``labels``, an array
    whose first axis is the rows (class indices become int32, anything else float32), or a
    tuple of arrays or of dicts of arrays (a multi-output model's targets and sample weights:
    one element each)."""

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
    """Every image of ``paths`` decoded, resized and rounded to uint8 into ``file`` (``.npy``);
    its memory map and, per path, whether it decoded."""
    array = np.lib.format.open_memmap(
        file, mode="w+", dtype=np.uint8, shape=(len(paths), image_size, image_size, 3)
    )
    decoded = np.zeros(len(paths), dtype=bool)
    for rows, images in decoded_batches(paths, image_size, pad, CACHE_BATCH, threads):
        array[rows] = np.round(images.numpy()).astype(np.uint8)
        decoded[rows] = True
    array.flush()
    del array
    return np.load(file, mmap_mode="r"), decoded


def gather_rows(array: np.ndarray, rows: tf.Tensor) -> tf.Tensor:
    """``array[rows]`` of a (memory-mapped) array, read in file order (sequential reads)."""

    def read(rows: np.ndarray) -> np.ndarray:
        order = np.argsort(rows)
        found = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
        found[order] = array[rows[order]]
        return found

    return tf.numpy_function(read, [rows], tf.as_dtype(array.dtype), stateful=False)


def log_skipped(skipped: dict[str, str], log: Callable[[str], None]) -> None:
    """Log the files not trained on: the first few by name and reason, then how many more."""
    if skipped:
        log(f"skipping {len(skipped)} image(s) that cannot be used:")
        for path, reason in list(skipped.items())[:MAX_LOGGED_FILES]:
            log(f"  {path}: {reason}")
        if len(skipped) > MAX_LOGGED_FILES:
            log(f"  ... and {len(skipped) - MAX_LOGGED_FILES} more (listed in training.json)")
