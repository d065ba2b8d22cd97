"""The frozen backbone's pooled features, computed once per image and view for the head to train
on: a training image's views are the image then augmentations drawn at random, a held-out image's
the image then its mirror image (flip-TTA). :func:`open_features` refuses a damaged cache or one
of other settings, weights or classes; rule ``features`` reruns when the split file changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fashionai.atomic import atomic_folder
from fashionai.attributes import pad_anchor
from fashionai.pixels import dataset_options, decoded_batches
from fashionai.splits import SUBSETS, TEST, TRAIN, VALIDATION, read_split
from fashionai.training.augment import build_augmentation
from fashionai.training.dataset import read_rows, row_values
from fashionai.training.devices import configure_devices
from fashionai.training.model import backbone_of, build_feature_extractor
from fashionai.training.resume import differences
from fashionai.training.settings import TrainSettings, feature_settings
from fashionai.training.weights import file_hash
from fashionai.trees import read_labels, slugs_of

FORMAT_VERSION = 5  # bump when the same inputs would give other features (decoder, extractor)
IN_MEMORY_BYTES = 1024**3  # larger feature arrays are read batch by batch from the memory map
MANIFEST = "manifest.json"
BACKBONE_WEIGHTS = "backbone.weights.h5"
DTYPE = np.float32  # of the stored features
HELD_OUT_VIEWS = 2  # plain, then mirrored (as flip-TTA prediction mirrors it)

Log = Callable[[str], None]


class StaleFeatures(ValueError):
    """A feature cache that is missing, incomplete, damaged, or of other settings or data."""

    def __init__(self, folder: Path, problem: str) -> None:
        super().__init__(
            f"{problem}: delete {folder} and rerun snakemake (or rerun it with --forcerun "
            "features) to recompute the features"
        )


def features_file(subset: str) -> str:
    return f"{subset}_features.npy"


def subset_views(subset: str, views: int) -> int:
    """How many views of each image of ``subset`` a cache of ``views`` training views holds."""
    return views if subset == TRAIN else HELD_OUT_VIEWS


def weights_fingerprint(weights: str | None) -> dict[str, Any] | None:
    """None (random init), Keras' own ImageNet weights, or a weights file's size and SHA-256."""
    if weights is None:
        return None
    if weights == "imagenet":
        return {"imagenet": f"keras {keras.__version__}"}
    path = Path(weights).resolve()
    info = path.stat()
    return {
        "file": path.name,
        "bytes": info.st_size,
        "sha256": _sha256(path, info.st_size, info.st_mtime_ns),
    }


@functools.cache
def _sha256(path: Path, size: int, modified_ns: int) -> str:
    """A weights file's SHA-256, once per job: the cache's check and the backup's signature
    both need it, for each category of a group (a ResNet50V2 file: 94 MB)."""
    return file_hash(path)


def feature_dependencies(settings: TrainSettings) -> dict[str, Any]:
    """What the cached features depend on beside the images (rule ``features``' params, the
    views, the weights file's content, the cache format); a cache with other values is stale."""
    dependencies = feature_settings(settings.to_dict())
    dependencies.update(weights=weights_fingerprint(settings.weights), views=settings.feature_views)
    return {"format": FORMAT_VERSION, **dependencies}


class FeatureCache:
    """A complete, checked cache folder; its rows follow the split file it was computed from."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        text = (self.folder / MANIFEST).read_bytes()
        self.manifest: dict[str, Any] = json.loads(text)
        # Identifies these features: a recomputed cache is another cache (its time differs).
        self.fingerprint = hashlib.sha256(text).hexdigest()
        self.views = int(self.manifest["views"])
        self.dim = int(self.manifest["dim"])
        self.nbytes = int(self.manifest["bytes"])  # of the feature arrays

    def fits(self, max_in_memory_bytes: int) -> bool:
        """Whether the features are read into memory (else from the memory map, by batch)."""
        return self.nbytes <= max_in_memory_bytes

    def check_split(self, split: pd.DataFrame, split_file: Path) -> None:
        """StaleFeatures unless the cache holds as many images of each subset as ``split``."""
        for subset in SUBSETS:
            rows, cached = int((split["subset"] == subset).sum()), self.manifest["images"][subset]
            if rows != cached:
                raise StaleFeatures(
                    self.folder,
                    f"{self.folder / MANIFEST}: {cached} {subset} image(s), {split_file} "
                    f"lists {rows}: the cache was computed from another split",
                )

    def describe(self, max_in_memory_bytes: int) -> dict[str, Any]:
        """For ``training.json``."""
        return {
            "cache": str(self.folder),
            "views": self.views,
            "dim": self.dim,
            "bytes": self.nbytes,
            "read_from": "memory" if self.fits(max_in_memory_bytes) else "memory map",
            "extract_seconds": self.manifest["seconds"],
        }

    def held_out(self, subset: str) -> np.ndarray:
        """(:data:`HELD_OUT_VIEWS`, images, features) of a held-out subset, in the split's order."""
        return np.load(self.folder / features_file(subset))

    def load_backbone_weights(self, backbone: keras.Model) -> None:
        """Put the randomly initialised backbone the features came from into ``backbone``."""
        name = self.manifest.get("backbone_weights")
        if name:
            backbone.load_weights(self.folder / name)


class FeatureCaches:
    """Caches of one frozen backbone (a category's, or a group's categories') read as one table
    of their rows."""

    def __init__(self, caches: Sequence[FeatureCache]) -> None:
        self.caches = list(caches)
        first = self.caches[0]
        for cache in self.caches[1:]:
            if (cache.views, cache.dim) != (first.views, first.dim):
                raise StaleFeatures(
                    cache.folder,
                    f"{cache.folder}: {cache.views} view(s) of {cache.dim} features per image, "
                    f"{first.folder} has {first.views} of {first.dim}; "
                    "a group's caches must come from the same settings",
                )
        self.views, self.dim = first.views, first.dim
        self.nbytes = sum(cache.nbytes for cache in self.caches)

    fits = FeatureCache.fits

    def dataset(
        self,
        subset: str,
        batch_size: int,
        seed: int,
        threads: int | None,
        max_in_memory_bytes: int,
        labels: Any,
    ) -> tf.data.Dataset:
        """Batches of (float32 features, ``labels`` of their rows: see
        :func:`~fashionai.training.dataset.row_values`) of ``subset``: held-out images in order,
        plain; every training image once per epoch, in a new order (from ``seed``), as one of its
        views drawn at random. From memory if :meth:`fits`, else from the memory maps."""
        counts = np.array([int(cache.manifest["images"][subset]) for cache in self.caches])
        starts = np.concatenate([[0], np.cumsum(counts)])
        views, dim = (self.views if subset == TRAIN else 1), self.dim
        mmap_mode = None if self.fits(max_in_memory_bytes) else "r"
        tables = [
            np.load(cache.folder / features_file(subset), mmap_mode=mmap_mode).reshape(-1, dim)
            for cache in self.caches
        ]
        rows = tf.data.Dataset.range(int(starts[-1]))
        if subset == TRAIN:
            rows = rows.shuffle(max(int(starts[-1]), 1), seed=seed, reshuffle_each_iteration=True)
        # Each row's view, drawn at random: always 0, the plain view, where there is one view.
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        pairs = tf.data.Dataset.zip(rows, draws.map(lambda draw: tf.math.floormod(draw, views)))
        values = row_values(labels)

        def read(rows: np.ndarray, views_drawn: np.ndarray) -> np.ndarray:
            found = np.empty((len(rows), dim), dtype=DTYPE)
            owner = np.searchsorted(starts, rows, side="right") - 1
            for index, table in enumerate(tables):
                mine = np.flatnonzero(owner == index)
                at = views_drawn[mine] * counts[index] + rows[mine] - starts[index]
                found[mine] = read_rows(table, at)
            return found

        def to_model(rows: tf.Tensor, views_drawn: tf.Tensor) -> tuple[Any, ...]:
            features = tf.numpy_function(read, [rows, views_drawn], tf.float32, stateful=False)
            return tf.ensure_shape(features, [None, dim]), *values(rows)

        # An unknown length, like the image pipelines' (they drop undecodable files): Keras
        # then makes one iterator per epoch, not two, and the seeded shuffle gives the batches
        # of training on the images in the same order, epoch after epoch.
        data = pairs.batch(batch_size).filter(lambda rows, views_drawn: True)
        data = data.map(to_model, num_parallel_calls=tf.data.AUTOTUNE)
        return data.prefetch(tf.data.AUTOTUNE).with_options(dataset_options(threads))


def open_features(folder: Path, dependencies: dict[str, Any], classes: list[str]) -> FeatureCache:
    """The cache in ``folder`` if complete, computed from ``dependencies`` with the label indices
    of ``classes`` (``labels.json``'s order) and whole (each file's SHA-256 the one recorded when
    it was written), else :class:`StaleFeatures`."""
    folder = Path(folder)
    try:
        cache = FeatureCache(folder)
    except FileNotFoundError:
        problem = f"{folder} holds no feature cache ({MANIFEST} is missing)"
        raise StaleFeatures(folder, problem) from None
    except (ValueError, TypeError, KeyError) as error:
        problem = f"{folder / MANIFEST} is not a complete manifest: {error}"
        raise StaleFeatures(folder, problem) from None
    manifest = cache.manifest
    cached = manifest.get("dependencies")
    cached = {key: cached.get(key) for key in dependencies} if isinstance(cached, dict) else {}
    if cached != dependencies:  # only these keys count: a manifest may record more
        details = differences(cached, dependencies)
        raise StaleFeatures(folder, f"{folder} is stale, computed from other inputs ({details})")
    if manifest.get("classes") != classes:
        problem = (
            f"{folder / MANIFEST}: its label indices are of the classes {manifest.get('classes')}, "
            f"labels.json lists {classes}"
        )
        raise StaleFeatures(folder, problem)
    for subset, count in manifest["images"].items():
        path = folder / features_file(subset)
        shape = (subset_views(subset, cache.views), count, cache.dim)
        try:
            found = np.load(path, mmap_mode="r").shape
        except (OSError, ValueError) as error:
            raise StaleFeatures(folder, f"{path} is unreadable: {error}") from None
        if found != shape:
            raise StaleFeatures(folder, f"{path} has shape {found}, its manifest says {shape}")
    # About 0.6 s per GB: small beside a training job, which reads the features every epoch.
    checksums = manifest.get("sha256")
    if not isinstance(checksums, dict) or not checksums:
        problem = f"{folder / MANIFEST} records no checksums of the cache's files"
        raise StaleFeatures(folder, problem)
    for name, recorded in checksums.items():
        try:
            digest = file_hash(folder / name)
        except OSError as error:
            raise StaleFeatures(folder, f"{folder / name} is unreadable: {error}") from None
        if digest != recorded:
            raise StaleFeatures(
                folder,
                f"{folder / name} is damaged: its SHA-256 is not the one {MANIFEST} recorded "
                "when it was written",
            )
    return cache


def extract_features(
    tree_dir: Path,
    folder: Path,
    settings: TrainSettings,
    *,
    split: Path,
    threads: int = 1,
    log: Log = print,
    batch_size: int | None = None,
) -> FeatureCache:
    """Compute into ``folder`` (replaced atomically) the cache of the images of the split file
    ``split`` of the tree ``tree_dir``, subset by subset in its row order, with a training job's
    threads and precision; ``batch_size`` images at a time (default: the training batch size)."""
    configure_devices(threads, settings.mixed_precision, log=log)
    started = time.monotonic()
    folder, labels = Path(folder), read_labels(Path(tree_dir))
    slugs = slugs_of(labels)
    log(f"features of {labels['category']} from {split} into {folder}")
    table = read_split(split, slugs)
    # The seed and build order of train_category, so a random init is the same there.
    keras.utils.set_random_seed(settings.run_seed)
    extractor = build_feature_extractor(settings.backbone, settings.image_size, settings.weights)
    views, dim = settings.feature_views, int(extractor.output_shape[-1])
    drawn = f" (the image + {views - 1} drawn from {list(settings.augmentations)})"
    log(
        f"extractor: {settings.backbone} at {settings.image_size} px -> {dim} features; "
        f"{views} view(s) per training image{drawn if views > 1 else ''}"
    )
    view_functions = _view_functions(extractor, settings)
    pad, batch = pad_anchor(settings.resize, labels["category"]), batch_size or settings.batch_size
    sizes = {}
    with atomic_folder(folder) as partial:
        for subset in SUBSETS:
            rows = table[table["subset"] == subset]
            sizes[subset] = len(rows)
            paths = rows["image"].tolist()
            batches = decoded_batches(paths, settings.image_size, pad, batch, threads)
            file = partial / features_file(subset)
            _run_extractor(view_functions[subset], paths, batches, file, dim, log, subset)
            np.save(partial / f"{subset}_labels.npy", rows["label_index"].to_numpy(dtype=np.int32))
        if settings.weights is None:
            backbone_of(extractor).save_weights(partial / BACKBONE_WEIGHTS)
        rows = sum(subset_views(subset, views) * sizes[subset] for subset in SUBSETS)
        nbytes = np.dtype(DTYPE).itemsize * dim * rows
        manifest = {
            "dependencies": feature_dependencies(settings),
            "category": labels["category"],
            "classes": slugs,
            "views": views,
            "dim": dim,
            "dtype": np.dtype(DTYPE).name,
            "images": sizes,
            "bytes": nbytes,
            "backbone_weights": BACKBONE_WEIGHTS if settings.weights is None else None,
            "sha256": {path.name: file_hash(path) for path in sorted(partial.iterdir())},
            "seconds": round(time.monotonic() - started, 2),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    log(
        f"wrote {folder}: {sizes[TRAIN]} train x {views} view(s) + {sizes[VALIDATION]} "
        f"validation + {sizes[TEST]} test x {HELD_OUT_VIEWS} (plain, mirrored) features "
        f"({nbytes / 1e6:.1f} MB) in {manifest['seconds']:.1f} s"
    )
    return FeatureCache(folder)


def _view_functions(
    extractor: keras.Model, settings: TrainSettings
) -> dict[str, list[Callable[[tf.Tensor], tf.Tensor]]]:
    """Per subset, images -> features of each view, each function traced once: a training
    image's views are the image then ``feature_views - 1`` augmentations of it, a held-out
    image's the image then its mirror image."""
    spec = tf.TensorSpec([None, settings.image_size, settings.image_size, 3], tf.float32)

    def traced(transform: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
        @tf.function(input_signature=[spec])
        def features(images: tf.Tensor) -> tf.Tensor:
            return extractor(transform(images), training=False)

        return features

    plain, mirrored = traced(tf.identity), traced(tf.image.flip_left_right)
    train = [plain]
    if settings.feature_views > 1:
        augmentation = build_augmentation(settings.augmentations, settings.seed)
        augmented = traced(lambda images: augmentation(images, training=True))
        train += [augmented] * (settings.feature_views - 1)
    return {TRAIN: train, VALIDATION: [plain, mirrored], TEST: [plain, mirrored]}


def _run_extractor(
    functions: list[Callable[[tf.Tensor], tf.Tensor]],
    paths: list[str],
    batches: Iterable[tuple[np.ndarray, tf.Tensor]],
    file: Path,
    dim: int,
    log: Log,
    subset: str,
) -> None:
    """Write to ``file`` (an array of views x images x ``dim`` features) the features of
    ``paths``, decoded in ``batches``, running each batch through each view's function."""
    n = len(paths)
    shape = (len(functions), n, dim)
    outputs = np.lib.format.open_memmap(file, mode="w+", dtype=DTYPE, shape=shape)
    done = np.zeros(n, dtype=bool)
    started = time.monotonic()
    next_report = started + 60
    for rows, images in batches:
        for function, output in zip(functions, outputs, strict=True):
            features = np.asarray(function(images), dtype=DTYPE)
            if not np.isfinite(features).all():
                raise ValueError(
                    f"the backbone computes non-finite features (inf or NaN) for "
                    f"{paths[rows[0]]} or another image of its batch: check train.weights and "
                    "train.mixed_precision"
                )
            output[rows] = features
        done[rows] = True
        if time.monotonic() > next_report:
            count = int(done.sum())
            rate = count / (time.monotonic() - started)
            log(f"  {subset}: {count}/{n} images ({rate:.1f} images/s)")
            next_report += 60
    missing = np.flatnonzero(~done)
    if len(missing):
        raise ValueError(
            f"{len(missing)} {subset} image(s) did not decode while computing features, "
            f"e.g. {paths[missing[0]]}: they decoded when the split was made; rerun the job"
        )
    outputs.flush()
    seconds = time.monotonic() - started
    log(
        f"  {subset}: {n} images x {len(outputs)} view(s) in {seconds:.1f} s "
        f"({n * len(outputs) / max(seconds, 1e-9):.1f} features/s)"
    )
