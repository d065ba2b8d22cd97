"""Train one category's classifier from its regrouped tree: :func:`train_category`."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fashionai.training.callbacks import EpochLogger, ProgressRecorder, ResumableBackup
from fashionai.training.dataset import (
    SPLIT_COLUMNS,
    TRAIN,
    VALIDATION,
    log_skipped,
    log_split,
    make_dataset,
    prepare_split,
)
from fashionai.training.devices import configure_devices, describe_devices
from fashionai.training.features import (
    IN_MEMORY_BYTES,
    FeatureCache,
    ensure_features,
    feature_dependencies,
    open_features,
)
from fashionai.training.model import (
    Classifier,
    build_classifier,
    compile_classifier,
    load_weights_quietly,
    set_backbone_trainable,
)
from fashionai.training.resume import HISTORY_COLUMNS, Backup, RunState, write_atomic
from fashionai.training.settings import TrainSettings
from fashionai.trees import read_labels

BACKUP_DIR = ".backup"
MODEL_FILE = "model.keras"
WEIGHTS_FILE = "best.weights.h5"
HISTORY_FILE = "history.csv"
SPLIT_FILE = "split.csv"
SUMMARY_FILE = "training.json"
FEATURES_DIR = "features"  # in .backup/: the run's own feature cache, when none is given
IMAGE_CACHE_DIR = "images"  # in .backup/: resized images cached while the backbone trains

Log = Callable[[str], None]


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs with one backbone state and learning rate, up to ``end_epoch``."""

    name: str
    backbone_trainable: bool
    learning_rate: float
    end_epoch: int


def plan_phases(settings: TrainSettings) -> list[Phase]:
    """Frozen backbone only, or head training then fine-tuning at a tenth of the rate."""
    if not settings.fine_tune:
        return [Phase("head", False, settings.learning_rate, settings.epochs)]
    return [
        Phase("head", False, settings.learning_rate, settings.head_epochs),
        Phase("fine_tune", True, settings.learning_rate / 10, settings.epochs),
    ]


@dataclass(frozen=True)
class _Job:
    """What every phase of one run shares."""

    settings: TrainSettings
    strategy: tf.distribute.Strategy
    classifier: Classifier
    backup: Backup
    state: RunState
    train: pd.DataFrame
    validation: pd.DataFrame
    features: FeatureCache | None
    class_weight: dict[int, float] | None
    threads: int
    max_in_memory_bytes: int
    elapsed: Callable[[], float]
    log: Log

    @property
    def model(self) -> keras.Model:
        return self.classifier.model


def train_category(
    tree_dir: Path,
    out_dir: Path,
    settings: TrainSettings,
    *,
    threads: int = 1,
    log: Log = print,
    features: Path | None = None,
    max_in_memory_bytes: int = IN_MEMORY_BYTES,
) -> dict[str, Any]:
    """Train on ``tree_dir`` (a regrouped category tree) and write the results to ``out_dir``.

    Writes ``model.keras`` (the full model, best epoch's weights), ``best.weights.h5``,
    ``history.csv``, ``split.csv`` and ``training.json`` (whose content is also returned),
    all at the end. Until then the run lives in ``out_dir/.backup/``: rerun after a crash or
    kill, it continues from its last finished epoch. Undecodable images are skipped, counted
    and listed. ``threads`` bounds TensorFlow's thread pools.

    With ``settings.cache_features`` the frozen-backbone epochs train the head on cached
    features (:mod:`fashionai.training.features`): those in ``features`` (the workflow's rule
    ``features``; the split comes from there too; a stale cache raises ``StaleFeatures``), or
    without it a cache of the run's own in ``.backup/features``. Caches larger than
    ``max_in_memory_bytes`` are read batch by batch from their memory-mapped files. Epochs
    with a trainable backbone always read the images.
    """
    started = time.monotonic()
    tree_dir, out_dir = Path(tree_dir), Path(out_dir)
    labels = read_labels(tree_dir)
    slugs = [entry["slug"] for entry in labels["classes"]]
    log(f"training {labels['category']}: {len(slugs)} classes from {tree_dir}")
    strategy = configure_devices(threads, settings.mixed_precision, log=log)
    backup = Backup(out_dir / BACKUP_DIR)

    cache = None
    if settings.cache_features:
        if features is not None:
            cache = open_features(features, feature_dependencies(tree_dir, settings))
            computed = False
        else:
            cache, computed = ensure_features(
                tree_dir, backup.folder / FEATURES_DIR, settings, threads=threads, log=log
            )
        split, skipped = cache.split(tree_dir), cache.skipped
        if not computed:  # else the extraction logged them
            log(f"split and features from {cache.folder}")
            log_skipped(skipped, log)
            log_split(split, slugs, log)
    else:
        split, skipped = prepare_split(
            tree_dir, slugs, settings.validation_split, settings.seed, threads, log
        )
    train = split[split["subset"] == TRAIN]
    validation = split[split["subset"] == VALIDATION]
    state = backup.load(_signature(settings, split), log, keep=(FEATURES_DIR,))
    previous_seconds = state.seconds

    def elapsed() -> float:
        return previous_seconds + time.monotonic() - started

    keras.utils.set_random_seed(settings.run_seed)
    with strategy.scope():
        classifier = build_classifier(settings, len(slugs), name=labels["category"])
        if cache is not None:
            cache.load_backbone_weights(classifier.backbone)
    if cache is not None:
        cache.check_extractor(classifier.feature_extractor, validation, log)
    log(
        f"model: {settings.backbone} ({classifier.backbone.count_params():,} parameters) "
        f"+ head ({classifier.head.count_params():,}), input {settings.image_size} px, "
        f"augmentations {list(settings.augmentations) or 'none'}"
    )
    class_weight = None
    if settings.class_weights:
        class_weight = balanced_class_weights(train["label_index"].to_numpy(), len(slugs))
        listed = ", ".join(f"{slug} {class_weight[i]:.3f}" for i, slug in enumerate(slugs))
        log(f"class weights: {listed}")
    job = _Job(
        settings=settings,
        strategy=strategy,
        classifier=classifier,
        backup=backup,
        state=state,
        train=train,
        validation=validation,
        features=cache,
        class_weight=class_weight,
        threads=threads,
        max_in_memory_bytes=max_in_memory_bytes,
        elapsed=elapsed,
        log=log,
    )

    phases = plan_phases(settings)
    names = [phase.name for phase in phases]
    for phase in phases[names.index(state.phase) :]:
        _run_phase(job, phase)

    if state.best_weights is None:
        raise RuntimeError(f"{labels['category']}: no epoch finished, nothing to save")
    _restore_best(job)
    summary = {
        "category": labels["category"],
        "classes": labels["classes"],
        "settings": settings.to_dict(),
        "best_epoch": state.best_epoch,
        "best_val_accuracy": state.best_val_accuracy,
        "fine_tune_start_epoch": state.fine_tune_start_epoch,
        "epochs_run": len(state.history),
        "stopped_early": state.stopped,
        "images": {"train": len(train), "validation": len(validation)},
        "skipped_images": len(skipped),
        "skipped_files": skipped,
        "class_weights": (
            {slug: class_weight[i] for i, slug in enumerate(slugs)} if class_weight else None
        ),
        "features": cache.describe(max_in_memory_bytes) if cache is not None else None,
        "attempts": state.attempts,
        "seconds": round(elapsed(), 1),
        "devices": describe_devices(strategy),
    }
    _write_outputs(job.model, out_dir, state, split, summary)
    backup.remove()
    log(
        f"best val_accuracy {state.best_val_accuracy:.4f} at epoch {state.best_epoch} "
        f"of {len(state.history)}; wrote {out_dir}"
    )
    return summary


def _pipeline(
    subset: pd.DataFrame,
    settings: TrainSettings,
    training: bool,
    threads: int,
    cache: Path | None = None,
) -> tf.data.Dataset:
    return make_dataset(
        subset["image"].tolist(),
        subset["label_index"].tolist(),
        settings.image_size,
        settings.batch_size,
        training=training,
        seed=settings.run_seed,
        threads=threads,
        cache=cache,
    )


def _phase_data(job: _Job, phase: Phase, on_features: bool) -> tuple[tf.data.Dataset, ...]:
    """The training and validation pipelines of ``phase``: cached features or images."""
    settings, threads = job.settings, job.threads
    if on_features:
        assert job.features is not None
        return (
            job.features.train_dataset(
                settings.batch_size, settings.run_seed, threads, job.max_in_memory_bytes
            ),
            job.features.validation_dataset(settings.batch_size, threads, job.max_in_memory_bytes),
        )
    cache = None
    if phase.backbone_trainable and settings.cache_images:
        cache = job.backup.folder / IMAGE_CACHE_DIR
        shutil.rmtree(cache, ignore_errors=True)  # a killed attempt's cache may be partial
        cache.mkdir(parents=True)
    return (
        _pipeline(job.train, settings, True, threads, cache and cache / TRAIN),
        _pipeline(job.validation, settings, False, threads, cache and cache / VALIDATION),
    )


def _run_phase(job: _Job, phase: Phase) -> None:
    """Train ``phase`` from where the run state says the run is.

    With a feature cache and a frozen backbone, ``fit`` trains the head alone on the cached
    features; its backups and best epochs are then files of the head's weights.
    """
    state = job.state
    on_features = job.features is not None and not phase.backbone_trainable
    trained = job.classifier.head if on_features else job.model
    entering = state.phase != phase.name
    if entering:
        _enter_phase(job, phase)
    with job.strategy.scope():
        set_backbone_trainable(job.model, phase.backbone_trainable)
        compile_classifier(trained, phase.learning_rate)
    if entering:  # a run killed from here on restarts in this phase
        state.seconds = job.elapsed()
        job.backup.save(trained, state, head=on_features)
    if state.stopped or state.epoch >= phase.end_epoch:
        return
    if on_features:
        assert job.features is not None
        source = (
            f"on cached features ({job.features.views} view(s) per training image, read from "
            f"{'memory' if job.features.fits(job.max_in_memory_bytes) else 'the memory map'})"
        )
    else:
        cached = phase.backbone_trainable and job.settings.cache_images
        source = "on images" + (" (resized images cached after the first epoch)" if cached else "")
    job.log(
        f"phase {phase.name}: epochs {state.epoch}..{phase.end_epoch - 1}, backbone "
        f"{'trainable (BatchNorm frozen)' if phase.backbone_trainable else 'frozen'}, "
        f"learning rate {phase.learning_rate:g}, {source}"
    )
    train_data, validation_data = _phase_data(job, phase, on_features)
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
                checkpoint,
                ProgressRecorder(state, checkpoint, job.settings.patience, best_name),
                EpochLogger(job.log, state, job.settings.epochs),
                ResumableBackup(job.backup, state, job.elapsed, head=on_features),
            ],
            verbose=0,
        )


def _enter_phase(job: _Job, phase: Phase) -> None:
    """Start ``phase`` from the best weights so far, the epoch count continuing."""
    state = job.state
    if state.best_weights is not None:
        _load_best(job)
        job.log(f"phase {phase.name} starts from the best epoch so far ({state.best_epoch})")
    state.phase = phase.name
    state.phase_start = state.epoch
    state.stopped = False
    if phase.backbone_trainable:
        state.fine_tune_start_epoch = state.epoch


def _restore_best(job: _Job) -> None:
    """The best epoch's weights, backbone frozen, a fresh optimizer: the model to save.

    The optimizer is built now (a small state: the head's) because ``load_model`` builds it
    and warns about saved state that does not fit.
    """
    _load_best(job)
    with job.strategy.scope():
        set_backbone_trainable(job.model, False)
        compile_classifier(job.model, job.settings.learning_rate)
        job.model.optimizer.build(job.model.trainable_variables)


def _load_best(job: _Job) -> None:
    """The best epoch's weights: of the head alone (trained on features) or the whole model."""
    name = job.state.best_weights
    assert name is not None
    target = job.classifier.head if Backup.holds_head_only(name) else job.model
    load_weights_quietly(target, job.backup.folder / name)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """``n / (k * count)`` per class present (k classes present), 1.0 for absent classes."""
    counts = np.bincount(labels, minlength=n_classes)
    present = np.count_nonzero(counts)
    return {
        i: float(len(labels) / (present * count)) if count else 1.0
        for i, count in enumerate(counts)
    }


def _signature(settings: TrainSettings, split: pd.DataFrame) -> dict[str, Any]:
    """What a backup must match to be resumed: the settings (but gpus and the image cache,
    which do not change the results) and the exact split."""
    digest = hashlib.sha256()
    for row in split[["image", "label_index", "subset"]].itertuples(index=False):
        digest.update(f"{row.image}\t{row.label_index}\t{row.subset}\n".encode())
    settings_data = settings.to_dict()
    settings_data.pop("gpus")
    settings_data.pop("cache_images")
    return {"settings": settings_data, "split_sha256": digest.hexdigest()}


def _write_outputs(
    model: keras.Model,
    out_dir: Path,
    state: RunState,
    split: pd.DataFrame,
    summary: dict[str, Any],
) -> None:
    """The declared outputs, each written under a temporary name and renamed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    partial_model = out_dir / f".{MODEL_FILE}.partial.keras"
    model.save(partial_model)
    partial_model.replace(out_dir / MODEL_FILE)
    # The best epoch's weights, rewritten: ModelCheckpoint's file also holds the optimizer
    # state of its phase (for a fine-tuned backbone, twice the size of the weights).
    partial_weights = out_dir / f".{WEIGHTS_FILE}.partial.weights.h5"
    model.save_weights(partial_weights)
    partial_weights.replace(out_dir / WEIGHTS_FILE)
    history = pd.DataFrame(state.history, columns=HISTORY_COLUMNS).astype({"epoch": int})
    write_atomic(out_dir / HISTORY_FILE, history.to_csv(index=False))
    write_atomic(out_dir / SPLIT_FILE, split[SPLIT_COLUMNS].to_csv(index=False))
    write_atomic(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
