"""Train one category's classifier from its regrouped tree: :func:`train_category`.

A run is four steps, one function each: :func:`prepare_data` (the split, the feature cache),
:func:`build_model`, :func:`run_phases` (resumable epochs) and :func:`write_outputs` (which also
predicts the held-out images, so that evaluation needs no TensorFlow of its own). A
:class:`Job` runs the phases of a category's model or, with its own pipelines and several
outputs, of a group's (:mod:`fashionai.training.groups`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fashionai.atomic import atomic_file, remove, write_text
from fashionai.attributes import pad_anchor
from fashionai.model_folder import Predictions, write_held_out, write_summary
from fashionai.outputs import (
    HELD_OUT_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    WEIGHTS_FILE,
)
from fashionai.prediction.predict import TrainedModel, predict_files
from fashionai.splits import (
    SUBSETS,
    TEST,
    TRAIN,
    VALIDATION,
    log_skipped,
    log_split,
    read_skipped,
    read_split,
)
from fashionai.training.augment import mix_batches
from fashionai.training.callbacks import EpochBackup, EpochLogger, HeadMeans, ProgressRecorder
from fashionai.training.dataset import make_dataset
from fashionai.training.devices import configure_devices, describe_devices
from fashionai.training.features import (
    IN_MEMORY_BYTES,
    FeatureCache,
    FeatureCaches,
    feature_dependencies,
    open_features,
    weights_fingerprint,
)
from fashionai.training.model import (
    HEAD,
    OWN_LOSS,
    Classifier,
    build_classifier,
    build_group_classifier,
    compile_classifier,
    load_weights_quietly,
    set_backbone_trainable,
)
from fashionai.training.resume import BACKUP_DIR, HISTORY_COLUMNS, Backup, RunState
from fashionai.training.settings import TrainSettings, has_head_phase
from fashionai.training.targets import load_soft_targets, one_hot
from fashionai.trees import read_labels

IMAGE_CACHE_DIR = "images"  # in .backup/: resized images cached while the backbone trains

Log = Callable[[str], None]


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs with one backbone state and learning rate, up to ``end_epoch``;
    ``batchnorm_trainable``: the backbone's BatchNorm layers train too."""

    name: str
    backbone_trainable: bool
    learning_rate: float
    end_epoch: int
    batchnorm_trainable: bool = False


def plan_phases(settings: TrainSettings) -> list[Phase]:
    """The phases of a run: the head on the frozen backbone; with ``fine_tune``, then the
    whole network at a tenth of the rate, BatchNorm frozen (the Keras transfer-learning
    recipe), or for a random backbone the whole network from the first epoch at the full rate,
    BatchNorm included (:func:`~fashionai.training.settings.has_head_phase`)."""
    rate, epochs = settings.learning_rate, settings.epochs
    if not settings.fine_tune:
        return [Phase("head", False, rate, epochs)]
    if not has_head_phase(settings.to_dict()):
        return [Phase("fine_tune", True, rate, epochs, batchnorm_trainable=True)]
    return [
        Phase("head", False, rate, settings.head_epochs),
        Phase("fine_tune", True, rate / 10, epochs),
    ]


@dataclass(frozen=True)
class Data:
    """The images of a run: the split and its file, the files skipped, the feature cache (if
    any), and with soft targets the training images' targets (rows in the split's order) and
    how many of their codes have an ``m``."""

    split: pd.DataFrame
    split_file: Path | None  # None for a group's (each category has its own)
    skipped: dict[str, str]  # path -> reason
    features: FeatureCache | FeatureCaches | None  # a group's: FeatureCaches
    targets: np.ndarray | None = None
    coded_maybe: int = 0

    @property
    def train(self) -> pd.DataFrame:
        return self.split[self.split["subset"] == TRAIN]

    @property
    def validation(self) -> pd.DataFrame:
        return self.split[self.split["subset"] == VALIDATION]


Pipelines = Callable[["Job", Phase, bool], tuple[tf.data.Dataset, tf.data.Dataset]]


@dataclass(frozen=True)
class Job:
    """A run: ``name`` is its category's, or its group's (then ``outputs`` names the model's
    outputs, ``data`` holds the group's images, and ``pipelines`` feed every head)."""

    name: str
    settings: TrainSettings
    strategy: tf.distribute.Strategy
    classifier: Classifier
    backup: Backup
    state: RunState
    data: Data
    class_weight: dict[int, float] | None
    threads: int
    cache_images: bool
    max_in_memory_bytes: int
    elapsed: Callable[[], float]
    log: Log
    pipelines: Pipelines  # (job, phase, on_features) -> training and validation data
    outputs: tuple[str, ...] = ()


def train_category(
    tree_dir: Path,
    out_dir: Path,
    settings: TrainSettings,
    *,
    split: Path,
    skipped: Path,
    threads: int = 1,
    cache_images: bool = True,
    log: Log = print,
    features: Path | None = None,
    max_in_memory_bytes: int = IN_MEMORY_BYTES,
    decoded: Path | None = None,
) -> dict[str, Any]:
    """Train on the images of the split file ``split`` (rule ``split``'s, of the regrouped
    category tree ``tree_dir``, whose ``labels.json`` gives the classes) and write the results
    to ``out_dir``: its ``split.csv`` is a copy of ``split``, and ``training.json`` lists the
    images of the skipped file ``skipped``. No image is checked and no split drawn here.

    At the end, writes the outputs of :mod:`fashionai.outputs` (``held_out.csv``: the best
    model's predictions on the validation and test images; ``training.json``, also returned).
    Until then the run lives in ``out_dir/.backup/``: rerun after a crash or kill, it continues
    from its last finished epoch if the backup was made from the same inputs
    (:func:`run_signature`). ``threads`` bounds TensorFlow's thread pools; ``cache_images``
    keeps the resized images on disk while the backbone trains. Given ``features`` (rule
    ``features``' cache of the same split), the frozen-backbone epochs train the head on the
    cached features, read batch by batch from their memory map when larger than
    ``max_in_memory_bytes``. With ``maybe_labels: soft`` the training targets come from the
    codes in ``decoded``.
    """
    started, clock = now(), time.monotonic()
    tree_dir, out_dir = Path(tree_dir), Path(out_dir)
    labels = read_labels(tree_dir)
    slugs = [entry["slug"] for entry in labels["classes"]]
    log(f"training {labels['category']}: {len(slugs)} classes from {tree_dir}")
    strategy = configure_devices(threads, settings.mixed_precision, log=log)
    backup = Backup(out_dir / BACKUP_DIR)
    data = prepare_data(Path(split), Path(skipped), slugs, settings, features, log)
    data = with_targets(data, labels, settings, decoded, log)
    state = backup.load(run_signature(settings, data), log)
    previous_seconds = state.seconds

    def elapsed() -> float:
        return previous_seconds + time.monotonic() - clock

    classifier = build_model(settings, labels["category"], len(slugs), strategy, [data], log)
    class_weight = class_weights(data, slugs, settings, log)
    job = Job(
        labels["category"],
        settings,
        strategy,
        classifier,
        backup,
        state,
        data,
        class_weight,
        threads,
        cache_images,
        max_in_memory_bytes,
        elapsed,
        log,
        _phase_data,
    )
    run_phases(job)
    summary = write_outputs(job, out_dir, labels, started)
    backup.remove()
    log(
        f"best val_accuracy {state.best_val_accuracy:.4f} at epoch {state.best_epoch} "
        f"(from 0) of epochs 0..{len(state.history) - 1}; wrote {out_dir}"
    )
    if warning := chance_level(state.best_val_accuracy, data.validation["label_index"]):
        log(warning)
    return summary


def chance_level(best: float, validation_labels: pd.Series) -> str | None:
    """A warning when the best validation accuracy is no better than always answering the
    validation images' most frequent class (the model has learned nothing usable)."""
    majority = validation_labels.value_counts(normalize=True).max()
    if best > majority + 0.5 / len(validation_labels):  # better by at least half an image
        return None
    return (
        f"WARNING: best val_accuracy {best:.4f} is at chance level (always answering the most "
        f"frequent class scores {majority:.4f}): the model learned nothing usable; check the "
        "labels and the learning curves, then train longer (epochs) or at another learning_rate"
    )


def prepare_data(
    split_file: Path,
    skipped_file: Path,
    slugs: list[str],
    settings: TrainSettings,
    features: Path | None,
    log: Log,
) -> Data:
    """The split and skipped files' images, and the feature cache ``features`` (checked
    against the current inputs and the split) that the run trains its head on, if any."""
    split, skipped = read_split(split_file, slugs), read_skipped(skipped_file)
    log(f"split from {split_file}")
    if settings.folds is not None:
        log(f"fold {settings.fold} of {settings.folds} validates")
    log_skipped(skipped, log)
    log_split(split, slugs, log)
    cache = None
    if features is not None:
        cache = open_features(features, feature_dependencies(settings), slugs)
        cache.check_split(split, split_file)
        log(f"features from {cache.folder}")
    return Data(split, split_file, skipped, cache)


def with_targets(
    data: Data, labels: dict[str, Any], settings: TrainSettings, decoded: Path | None, log: Log
) -> Data:
    """``data`` with its training images' target rows when the settings need them: soft
    targets from the codes of ``decoded``, else (label smoothing, MixUp, CutMix) one-hot."""
    if settings.maybe_labels == "soft":
        targets, coded = load_soft_targets(decoded, labels, data.train, settings.maybe_weight, log)
        return dataclasses.replace(data, targets=targets, coded_maybe=coded)
    if settings.target_rows:
        n_classes = len(labels["classes"])
        return dataclasses.replace(data, targets=one_hot(data.train["label_index"], n_classes))
    return data


def class_weights(
    data: Data, slugs: list[str], settings: TrainSettings, log: Log
) -> dict[int, float] | None:
    """With ``class_weights``, the balanced weights of the training images' classes, logged."""
    if not settings.class_weights:
        return None
    weights = balanced_class_weights(data.train["label_index"].to_numpy(), len(slugs))
    log(f"class weights: {', '.join(f'{slug} {weights[i]:.3f}' for i, slug in enumerate(slugs))}")
    return weights


def run_signature(settings: TrainSettings, data: Data) -> dict[str, Any]:
    """What a backup must have been made from to be resumed: the settings, the exact split,
    the weights file's content, the feature cache the head trains on and the soft targets."""
    digest = hashlib.sha256()
    for row in data.split[["image", "label_index", "subset"]].itertuples(index=False):
        digest.update(f"{row.image}\t{row.label_index}\t{row.subset}\n".encode())
    return {
        "settings": settings.to_dict(),
        "split": digest.hexdigest(),
        "weights": weights_fingerprint(settings.weights),
        "features": data.features.fingerprint if data.features is not None else None,
        "targets": None if data.targets is None else hashlib.sha256(data.targets).hexdigest(),
    }


def build_model(
    settings: TrainSettings,
    name: str,
    n_classes: int | dict[str, int],
    strategy: tf.distribute.Strategy,
    parts: Sequence[Data],
    log: Log,
) -> Classifier:
    """The seeded classifier, backbone frozen: of one category (``n_classes`` a number), or of
    a group (a number per category: :func:`build_group_classifier`); with feature caches (of
    the ``parts``: a category's data, or each of a group's), their random backbone (a cache's
    freshness is Snakemake's: rule features reruns when its inputs or feature keys change)."""
    keras.utils.set_random_seed(settings.run_seed)
    cached = [part.features for part in parts if part.features is not None]
    with strategy.scope():
        if isinstance(n_classes, int):
            classifier = build_classifier(settings, n_classes, name=name)
        else:
            classifier = build_group_classifier(settings, n_classes, name=name)
        if cached:
            cached[0].load_backbone_weights(classifier.backbone)
    heads = "head" if isinstance(n_classes, int) else f"{len(n_classes)} heads"
    log(
        f"model: {settings.backbone} ({classifier.backbone.count_params():,} parameters) "
        f"+ {heads} ({classifier.head.count_params():,}), input {settings.image_size} px, "
        f"augmentations {list(settings.augmentations) or 'none'}"
    )
    return classifier


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """``n / (k * count)`` per class present (k classes present), 1.0 for absent classes."""
    counts = np.bincount(labels, minlength=n_classes)
    present = np.count_nonzero(counts)
    return {
        i: float(len(labels) / (present * count)) if count else 1.0
        for i, count in enumerate(counts)
    }


def run_phases(job: Job) -> None:
    """Train every phase from the one the run state is in."""
    phases = plan_phases(job.settings)
    names = [phase.name for phase in phases]
    start = names.index(job.state.phase) if job.state.phase in names else 0  # 0: a new run
    for phase in phases[start:]:
        _run_phase(job, phase)
    if job.state.best_weights is None:
        raise RuntimeError(f"{job.name}: no epoch finished, nothing to save")


def _run_phase(job: Job, phase: Phase) -> None:
    """Train ``phase`` from where the run state says the run is: with a feature cache and a
    frozen backbone, the head alone on the cached features (its backups and best epochs are
    then the head's weights); resumed, from the backup's latest weights and optimizer state."""
    state = job.state
    on_features = job.data.features is not None and not phase.backbone_trainable
    trained = job.classifier.head if on_features else job.classifier.model
    entering = state.phase != phase.name
    if entering:
        _enter_phase(job, phase)
    with job.strategy.scope():
        set_backbone_trainable(
            job.classifier.model,
            phase.backbone_trainable,
            batchnorm_trainable=phase.batchnorm_trainable,
        )
        compile_classifier(
            trained,
            phase.learning_rate,
            soft=job.settings.target_rows,
            settings=job.settings,
            steps_per_epoch=math.ceil(len(job.data.train) / job.settings.batch_size),
            epochs=phase.end_epoch - state.phase_start,
            outputs=job.outputs,
        )
        if not entering and state.latest_weights is not None:
            trained.optimizer.build(trained.trainable_variables)
            load_weights_quietly(trained, job.backup.folder / state.latest_weights)
    if entering:  # a run killed from here on restarts in this phase
        state.seconds = job.elapsed()
        job.backup.save(trained, state, head=on_features)
    if state.stopped or state.epoch >= phase.end_epoch:
        return
    backbone = "trainable" if phase.backbone_trainable else "frozen"
    if phase.backbone_trainable and not phase.batchnorm_trainable:
        backbone += " (BatchNorm frozen)"
    job.log(
        f"phase {phase.name}: epochs {state.epoch}..{phase.end_epoch - 1}, backbone {backbone}, "
        f"learning rate {phase.learning_rate:g}, {_source(job, phase, on_features)}"
    )
    train_data, validation_data = job.pipelines(job, phase, on_features)
    checkpoint = keras.callbacks.ModelCheckpoint(
        job.backup.best_pattern(head=on_features),
        monitor="val_accuracy",
        mode="max",
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=state.best_val_accuracy,
    )
    best_name = functools.partial(Backup.best_name, head=on_features)
    with warnings.catch_warnings():
        # tf.data pipelines that skip bad images have no known length: Keras says so.
        warnings.filterwarnings("ignore", message=".*Your input ran out of data")
        trained.fit(
            train_data,
            validation_data=validation_data,
            epochs=phase.end_epoch,
            initial_epoch=state.epoch,
            class_weight=job.class_weight,
            shuffle=False,  # the training pipeline shuffles
            callbacks=[
                *([HeadMeans(job.outputs, OWN_LOSS)] if job.outputs else []),
                checkpoint,
                ProgressRecorder(state, checkpoint, job.settings.patience, best_name),
                EpochLogger(
                    job.log, state, job.settings.epochs, len(job.data.train), phase.end_epoch
                ),
                EpochBackup(job.backup, state, job.elapsed, head=on_features),
            ],
            verbose=0,
        )


def _source(job: Job, phase: Phase, on_features: bool) -> str:
    """What ``phase`` trains on, for its log line."""
    if on_features:
        cache = job.data.features
        assert cache is not None
        read = "memory" if cache.fits(job.max_in_memory_bytes) else "the memory map"
        return f"on cached features ({cache.views} view(s) per training image, read from {read})"
    if phase.backbone_trainable and job.cache_images:
        return "on images (resized once into a cache before the first epoch)"
    return "on images"


def _phase_data(job: Job, phase: Phase, on_features: bool) -> tuple[tf.data.Dataset, ...]:
    """A category's training and validation pipelines of ``phase``: class indices, or with
    target rows those rows (the validation images' classes one-hot)."""
    data = job.data
    train_labels = data.train["label_index"].to_numpy()
    validation_labels = data.validation["label_index"].to_numpy()
    if data.targets is not None:
        train_labels = data.targets
        validation_labels = one_hot(validation_labels, data.targets.shape[1])
    pad = pad_anchor(job.settings.resize, job.name)
    return phase_pipelines(job, phase, on_features, (train_labels, validation_labels), pad)


def phase_pipelines(
    job: Job, phase: Phase, on_features: bool, labels: tuple[Any, Any], pad: str | None
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training and validation pipelines of ``phase`` over ``job.data``'s training and
    validation rows, of cached features or images (padded at ``pad``), with ``labels``: the
    training and the validation rows' (an array, or a tuple of elements: see
    :func:`~fashionai.training.dataset.row_values`)."""
    settings, threads, cache, data = job.settings, job.threads, job.data.features, job.data
    train_labels, validation_labels = labels
    if on_features:
        assert cache is not None
        size, max_bytes = settings.batch_size, job.max_in_memory_bytes
        train = cache.dataset(TRAIN, size, settings.run_seed, threads, max_bytes, train_labels)
        return train, cache.dataset(VALIDATION, size, 0, threads, max_bytes, validation_labels)
    folder = None
    if phase.backbone_trainable and job.cache_images:
        folder = job.backup.folder / IMAGE_CACHE_DIR
        remove(folder)  # a killed attempt's cache may be partial
        folder.mkdir(parents=True)

    def pipeline(subset: pd.DataFrame, labels: Any, training: bool, name: str) -> tf.data.Dataset:
        return make_dataset(
            subset["image"].tolist(),
            labels,
            settings.image_size,
            settings.batch_size,
            training=training,
            seed=settings.run_seed,
            threads=threads,
            cache=folder and folder / name,
            pad=pad,
        )

    return (
        mix_batches(
            pipeline(data.train, train_labels, True, TRAIN),
            settings.augmentations,
            settings.run_seed,
        ),
        pipeline(data.validation, validation_labels, False, VALIDATION),
    )


def _enter_phase(job: Job, phase: Phase) -> None:
    """Start ``phase`` from the best weights so far, the epoch count continuing."""
    state = job.state
    if state.best_weights is not None:
        load_best(job)
        job.log(f"phase {phase.name} starts from the best epoch so far ({state.best_epoch})")
    state.phase = phase.name
    state.phase_start = state.epoch
    state.stopped = False
    if phase.backbone_trainable:
        state.fine_tune_start_epoch = state.epoch


def load_best(job: Job) -> None:
    """The best epoch's weights: of the head alone (trained on features) or the whole model."""
    name = job.state.best_weights
    assert name is not None
    target = job.classifier.head if Backup.holds_head_only(name) else job.classifier.model
    load_weights_quietly(target, job.backup.folder / name)


def write_outputs(job: Job, out_dir: Path, labels: dict[str, Any], started: str) -> dict[str, Any]:
    """The best epoch's model and the other outputs (:func:`write_model_folder`); the content
    of ``training.json``."""
    load_best(job)
    summary = model_summary(job, labels, job.data, job.class_weight, started)
    history = pd.DataFrame(job.state.history, columns=HISTORY_COLUMNS)
    write_model_folder(out_dir, job.classifier.model, labels, job.data, history, summary, job)
    return summary


def model_summary(
    job: Job,
    labels: dict[str, Any],
    data: Data,
    weights: dict[int, float] | None,
    started: str,
) -> dict[str, Any]:
    """The content of a category's ``training.json``, of the run ``job`` and the category's
    ``data`` and class ``weights``."""
    state = job.state
    slugs = [entry["slug"] for entry in labels["classes"]]
    return {
        "category": labels["category"],
        "classes": labels["classes"],
        "settings": job.settings.to_dict(),
        "best_epoch": state.best_epoch,
        "best_val_accuracy": state.best_val_accuracy,
        "fine_tune_start_epoch": state.fine_tune_start_epoch,
        "epochs_run": len(state.history),
        "stopped_early": state.stopped,
        "images": {part: int((data.split["subset"] == part).sum()) for part in SUBSETS},
        "skipped_images": len(data.skipped),
        "skipped_files": data.skipped,
        "class_weights": {slug: weights[i] for i, slug in enumerate(slugs)} if weights else None,
        "soft_targets": _describe_targets(data, job.settings),
        "features": data.features.describe(job.max_in_memory_bytes) if data.features else None,
        "attempts": state.attempts,
        "seconds": round(job.elapsed(), 1),
        "devices": describe_devices(job.strategy),
        # Set per job by the scheduler or the user before TensorFlow starts.
        "gpu_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "started": started,  # this attempt's start
        "finished": now(),
    }


def write_model_folder(
    out_dir: Path,
    model: keras.Model,
    labels: dict[str, Any],
    data: Data,
    history: pd.DataFrame,
    summary: dict[str, Any],
    job: Job,
) -> None:
    """A category's model folder, each file written atomically: ``model`` (of one output,
    holding the best epoch's weights; saved backbone frozen, with a fresh optimizer built now:
    ``load_model`` warns about saved optimizer state that does not fit) and its weights, the
    ``history`` (:data:`HISTORY_COLUMNS`), ``data``'s split, the predictions on its held-out
    images and ``summary`` (``training.json``)."""
    save_model(out_dir, model, job)
    history = history[HISTORY_COLUMNS].astype({"epoch": int})
    write_text(out_dir / HISTORY_FILE, history.to_csv(index=False))
    # A copy, not a hard link: Snakemake touches a job's outputs when it ends, and through a
    # link it would touch the split file, then newer than the features made from it.
    with atomic_file(out_dir / SPLIT_FILE) as partial:
        shutil.copyfile(data.split_file, partial)
    held_out = data.split[data.split["subset"] != TRAIN]
    write_held_out(out_dir / HELD_OUT_FILE, held_out, predict_held_out(model, labels, data, job))
    write_summary(out_dir, summary)


def predict_held_out(
    model: keras.Model, labels: dict[str, Any], data: Data, job: Job
) -> Predictions:
    """``model``'s predictions on ``data``'s held-out (validation and test) images in the
    split's order, plain and flip-TTA: with a frozen backbone and a feature cache, its head on
    the cached features of the images and their mirror images; else through the whole model."""
    held_out = data.split[data.split["subset"] != TRAIN]
    category, settings = labels["category"], job.settings
    cache = data.features
    if isinstance(cache, FeatureCache) and not settings.fine_tune:
        job.log(
            f"predicting the {len(held_out):,} held-out images of {category} from {cache.folder}"
        )
        return cached_predictions(model.get_layer(HEAD), cache, held_out["subset"])
    trained = TrainedModel(model, category, labels["classes"], settings.image_size, settings.resize)
    job.log(f"predicting the {len(held_out):,} held-out images of {category} (plain and mirrored)")
    return predict_files(
        trained,
        held_out["image"],
        batch_size=settings.batch_size,
        tta=True,
        log=job.log,
        check=False,  # the split stage checked them
    )


def cached_predictions(head: keras.Model, cache: FeatureCache, subsets: pd.Series) -> Predictions:
    """``head``'s probabilities on the cached features of the held-out images whose subsets
    are ``subsets`` (in the split's order): plain, and flip-TTA (the mean of the image's and
    its mirror image's)."""
    plain = np.full((len(subsets), head.output_shape[-1]), np.nan, dtype=np.float32)
    flipped = plain.copy()
    for subset in (VALIDATION, TEST):
        rows = np.flatnonzero((subsets == subset).to_numpy())
        if len(rows):  # none of test with test_split 0
            features = cache.held_out(subset).reshape(-1, cache.dim)  # plain rows, then mirrored
            image, mirror = np.split(np.asarray(head(features, training=False)), 2)
            plain[rows], flipped[rows] = image, (image + mirror) / 2
    return Predictions(plain, flipped, {})


def save_model(out_dir: Path, model: keras.Model, job: Job, outputs: tuple[str, ...] = ()) -> None:
    """``model.keras`` and ``best.weights.h5`` of ``model``, backbone frozen, compiled with a
    fresh optimizer (one loss per output of ``outputs``, for a group's model)."""
    with job.strategy.scope():
        set_backbone_trainable(model, False)
        compile_classifier(model, job.settings.learning_rate, outputs=outputs)
        model.optimizer.build(model.trainable_variables)
    with atomic_file(out_dir / MODEL_FILE) as partial:
        model.save(partial)
    # The best epoch's weights, rewritten: ModelCheckpoint's file also holds the optimizer
    # state of its phase (for a fine-tuned backbone, twice the size of the weights).
    with atomic_file(out_dir / WEIGHTS_FILE) as partial:
        model.save_weights(partial)


def _describe_targets(data: Data, settings: TrainSettings) -> dict[str, Any] | None:
    """For ``training.json``: whether soft targets were used and how many images had an m."""
    if data.targets is None or settings.maybe_labels != "soft":
        return None
    return {
        "maybe_weight": settings.maybe_weight,
        "train_images": len(data.targets),
        "coded_maybe": data.coded_maybe,  # images whose code has an m
        "with_maybe_class": int((data.targets.max(axis=1) < 1).sum()),  # after regrouping
    }


def now() -> str:
    """The local time, ISO 8601 with its UTC offset."""
    return datetime.now().astimezone().isoformat(timespec="seconds")
