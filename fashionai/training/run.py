"""Train one category's classifier (:func:`train_category`), or a group's through :func:`run_job`:
data, model, resumable phases, then the model folder with the predictions on the held-out images
(so that evaluation needs no TensorFlow of its own)."""

from __future__ import annotations

import dataclasses
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
from fashionai.outputs import HELD_OUT_FILE, HISTORY_FILE, MODEL_FILE, SPLIT_FILE, WEIGHTS_FILE
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
from fashionai.trees import read_labels, slugs_of

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
    """The head on the frozen backbone; with ``fine_tune``, then the whole network at a tenth
    of the rate, BatchNorm frozen (Keras' recipe); a random backbone trains whole from the start."""
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
    """The images of a run; with target rows the training images' (in the split's order) and,
    of soft targets, how many of their codes have an ``m``."""

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


@dataclass(frozen=True)
class Member:
    """A category trained: its tree's ``labels.json``, its images and its class weights."""

    labels: dict[str, Any]
    data: Data
    class_weight: dict[int, float] | None

    @property
    def category(self) -> str:
        return str(self.labels["category"])


@dataclass(frozen=True)
class Run:
    """How a job runs, not what it trains: ``threads`` bounds TensorFlow's thread pools,
    ``cache_images`` keeps the resized images on disk while the backbone trains, a feature cache
    larger than ``max_in_memory_bytes`` is read from its memory map."""

    strategy: tf.distribute.Strategy
    threads: int
    cache_images: bool
    max_in_memory_bytes: int
    log: Log
    started: str  # local time, for training.json
    clock: float  # time.monotonic() at the start; run_job deducts earlier attempts' seconds


@dataclass(frozen=True)
class Job:
    """A run of the model of ``members``: a category's, or a group's (then ``outputs`` names
    the model's outputs and ``data`` holds the group's images)."""

    name: str
    settings: TrainSettings
    run: Run
    classifier: Classifier
    backup: Backup
    state: RunState
    members: Sequence[Member]
    data: Data
    labels: tuple[Any, Any]  # the training and validation rows': see phase_pipelines
    outputs: tuple[str, ...] = ()

    def elapsed(self) -> float:
        """Seconds the run has taken, over all its attempts."""
        return time.monotonic() - self.run.clock


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
    """Train on the images of rule ``split``'s files ``split`` and ``skipped`` (no image is
    checked, no split drawn here) and write the outputs of :mod:`fashionai.outputs` to
    ``out_dir``; ``training.json``'s content, returned. Rerun after a crash or kill, the run
    continues from the last epoch its backup (``out_dir/.backup/``) holds if made from the same
    inputs (:func:`run_signature`). Given ``features`` (rule ``features``' cache), the frozen
    backbone's epochs train the head on them; ``decoded``: for ``maybe_labels: soft``."""
    started, clock = now(), time.monotonic()
    labels = read_labels(Path(tree_dir))
    log(f"training {labels['category']}: {len(labels['classes'])} classes from {tree_dir}")
    strategy = configure_devices(threads, settings.mixed_precision, log=log)
    run = Run(strategy, threads, cache_images, max_in_memory_bytes, log, started, clock)
    member = prepare_member(labels, Path(split), Path(skipped), settings, features, decoded, log)
    data = member.data
    rows = data.train["label_index"].to_numpy(), data.validation["label_index"].to_numpy()
    if data.targets is not None:  # target rows: the validation classes' one-hot
        rows = data.targets, one_hot(rows[1], data.targets.shape[1])
    signature = run_signature(settings, data)
    summary = run_job(
        member.category, [member], data, signature, Path(out_dir), settings, run, rows
    )
    if warning := chance_level(summary["best_val_accuracy"], data.validation["label_index"]):
        log(warning)
    return summary


def run_job(
    name: str,
    members: Sequence[Member],
    data: Data,
    signature: dict[str, Any],
    out_dir: Path,
    settings: TrainSettings,
    run: Run,
    labels: tuple[Any, Any],
    outputs: tuple[str, ...] = (),
    write: Callable[[Job, Path], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train the model of ``members`` (a group's with ``outputs``) on ``data`` with ``labels``
    (:func:`phase_pipelines`), resuming the backup in ``out_dir`` if made from ``signature``;
    ``write`` (default :func:`write_outputs`) its best epoch; the content of ``training.json``."""
    backup = Backup(out_dir / BACKUP_DIR)
    state = backup.load(signature, run.log)
    run = dataclasses.replace(run, clock=run.clock - state.seconds)
    classifier = build_model(settings, name, members, bool(outputs), run)
    job = Job(name, settings, run, classifier, backup, state, members, data, labels, outputs)
    run_phases(job)
    load_best(job)
    summary = (write or write_outputs)(job, out_dir)
    remove(backup.folder)
    run.log(
        f"best {'mean ' if outputs else ''}val_accuracy {state.best_val_accuracy:.4f} at epoch "
        f"{state.best_epoch} (from 0) of epochs 0..{len(state.history) - 1}; wrote {out_dir}"
    )
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


def prepare_member(
    labels: dict[str, Any],
    split_file: Path,
    skipped_file: Path,
    settings: TrainSettings,
    features: Path | None,
    decoded: Path | None,
    log: Log,
) -> Member:
    """A category's images of the split and skipped files, its feature cache ``features`` if any
    (checked against the current inputs and the split), target rows if needed (soft targets from
    the codes of ``decoded``, else one-hot) and, with ``class_weights``, balanced class weights."""
    slugs = slugs_of(labels)
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
    data = Data(split, split_file, skipped, cache)
    train_labels = data.train["label_index"].to_numpy()
    if settings.maybe_labels == "soft":
        targets, coded = load_soft_targets(decoded, labels, data.train, settings.maybe_weight, log)
        data = dataclasses.replace(data, targets=targets, coded_maybe=coded)
    elif settings.target_rows:
        data = dataclasses.replace(data, targets=one_hot(train_labels, len(slugs)))
    if not settings.class_weights:
        return Member(labels, data, None)
    weights = balanced_class_weights(train_labels, len(slugs))
    log(f"class weights: {', '.join(f'{slug} {weights[i]:.3f}' for i, slug in enumerate(slugs))}")
    return Member(labels, data, weights)


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
    settings: TrainSettings, name: str, members: Sequence[Member], grouped: bool, run: Run
) -> Classifier:
    """The seeded classifier, backbone frozen, of a category or (``grouped``) with a head per
    member; with feature caches, the (random) backbone they were extracted with."""
    keras.utils.set_random_seed(settings.run_seed)
    n_classes = {member.category: len(member.labels["classes"]) for member in members}
    cached = [member.data.features for member in members if member.data.features is not None]
    with run.strategy.scope():
        if grouped:
            classifier = build_group_classifier(settings, n_classes, name=name)
        else:
            classifier = build_classifier(settings, n_classes[name], name=name)
        if cached:
            cached[0].load_backbone_weights(classifier.backbone)
    heads = f"{len(n_classes)} heads" if grouped else "head"
    run.log(
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
    """Train ``phase`` from where the run state says: with a feature cache and a frozen
    backbone, the head alone on the cached features (its backups and best epochs are then the
    head's weights)."""
    state, settings, log = job.state, job.settings, job.run.log
    on_features = job.data.features is not None and not phase.backbone_trainable
    trained = _ready_model(job, phase, on_features)
    if state.stopped or state.epoch >= phase.end_epoch:
        return
    log(_phase_line(job, phase, on_features))
    train_data, validation_data = phase_pipelines(job, phase, on_features)
    checkpoint = keras.callbacks.ModelCheckpoint(
        job.backup.best_pattern(head=on_features),
        monitor="val_accuracy",
        mode="max",
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=state.best_val_accuracy,
    )
    with warnings.catch_warnings():
        # tf.data pipelines that skip bad images have no known length: Keras says so.
        warnings.filterwarnings("ignore", message=".*Your input ran out of data")
        trained.fit(
            train_data,
            validation_data=validation_data,
            epochs=phase.end_epoch,
            initial_epoch=state.epoch,
            # A group's class weights are in its sample weights.
            class_weight=None if job.outputs else job.members[0].class_weight,
            shuffle=False,  # the training pipeline shuffles
            callbacks=[
                *([HeadMeans(job.outputs, OWN_LOSS)] if job.outputs else []),
                checkpoint,
                ProgressRecorder(state, checkpoint, settings.patience, on_features),
                EpochLogger(log, state, settings.epochs, len(job.data.train), phase.end_epoch),
                EpochBackup(job.backup, state, job.elapsed, head=on_features),
            ],
            verbose=0,
        )


def _ready_model(job: Job, phase: Phase, on_features: bool) -> keras.Model:
    """The model ``phase`` trains (the head alone ``on_features``), compiled for it: entering the
    phase, from the best weights so far, the epoch count continuing (then backed up); resumed in
    it, from the backup's latest weights and optimizer state."""
    state, settings, log = job.state, job.settings, job.run.log
    trained = job.classifier.head if on_features else job.classifier.model
    entering = state.phase != phase.name
    if entering:
        if state.best_weights is not None:
            load_best(job)
            log(f"phase {phase.name} starts from the best epoch so far ({state.best_epoch})")
        state.phase = phase.name
        state.phase_start = state.epoch
        state.stopped = False
        if phase.backbone_trainable:
            state.fine_tune_start_epoch = state.epoch
    with job.run.strategy.scope():
        set_backbone_trainable(
            job.classifier.model,
            phase.backbone_trainable,
            batchnorm_trainable=phase.batchnorm_trainable,
        )
        compile_classifier(
            trained,
            phase.learning_rate,
            soft=settings.target_rows,
            settings=settings,
            steps_per_epoch=math.ceil(len(job.data.train) / settings.batch_size),
            epochs=phase.end_epoch - state.phase_start,
            outputs=job.outputs,
        )
        if not entering and state.latest_weights is not None:
            trained.optimizer.build(trained.trainable_variables)
            load_weights_quietly(trained, job.backup.folder / state.latest_weights)
    if entering:  # a run killed from here on restarts in this phase
        state.seconds = job.elapsed()
        job.backup.save(trained, state, head=on_features)
    return trained


def _phase_line(job: Job, phase: Phase, on_features: bool) -> str:
    """``phase``'s log line: its epochs, backbone, learning rate and what it trains on."""
    backbone = "trainable" if phase.backbone_trainable else "frozen"
    if phase.backbone_trainable and not phase.batchnorm_trainable:
        backbone += " (BatchNorm frozen)"
    source = "on images"
    if on_features:
        cache = job.data.features
        assert cache is not None
        read = "memory" if cache.fits(job.run.max_in_memory_bytes) else "the memory map"
        source = f"on cached features ({cache.views} view(s) per training image, read from {read})"
    elif phase.backbone_trainable and job.run.cache_images:
        source = "on images (resized once into a cache before the first epoch)"
    return (
        f"phase {phase.name}: epochs {job.state.epoch}..{phase.end_epoch - 1}, backbone "
        f"{backbone}, learning rate {phase.learning_rate:g}, {source}"
    )


def phase_pipelines(job: Job, phase: Phase, on_features: bool) -> tuple[tf.data.Dataset, ...]:
    """The training and validation pipelines of ``phase``, of cached features or images, with
    ``job.labels`` (arrays, or tuples: :func:`~fashionai.training.dataset.row_values`)."""
    settings, threads, cache, data = job.settings, job.run.threads, job.data.features, job.data
    train_labels, validation_labels = job.labels
    if on_features:
        assert cache is not None
        caches = cache if isinstance(cache, FeatureCaches) else FeatureCaches([cache])
        size, max_bytes = settings.batch_size, job.run.max_in_memory_bytes
        train = caches.dataset(TRAIN, size, settings.run_seed, threads, max_bytes, train_labels)
        return train, caches.dataset(VALIDATION, size, 0, threads, max_bytes, validation_labels)
    folder = None
    if phase.backbone_trainable and job.run.cache_images:
        folder = job.backup.folder / IMAGE_CACHE_DIR
        remove(folder)  # a killed attempt's cache may be partial
        folder.mkdir(parents=True)
    # A group's members have the same anchor (checked).
    pad = pad_anchor(settings.resize, job.members[0].category)

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

    train = pipeline(data.train, train_labels, True, TRAIN)
    return (
        mix_batches(train, settings.augmentations, settings.run_seed),
        pipeline(data.validation, validation_labels, False, VALIDATION),
    )


def load_best(job: Job) -> None:
    """The best epoch's weights: of the head alone (trained on features) or the whole model."""
    name = job.state.best_weights
    assert name is not None
    target = job.classifier.head if Backup.holds_head_only(name) else job.classifier.model
    load_weights_quietly(target, job.backup.folder / name)


def write_outputs(job: Job, out_dir: Path) -> dict[str, Any]:
    """A category's model folder; the content of its ``training.json``."""
    member = job.members[0]
    summary = model_summary(job, member)
    history = pd.DataFrame(job.state.history, columns=HISTORY_COLUMNS)
    write_model_folder(out_dir, job.classifier.model, member, history, summary, job)
    return summary


def job_summary(job: Job, head: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """A ``training.json``: ``head`` (what was trained), the run's figures, ``details``, then
    where and when it ran."""
    state = job.state
    return {
        **head,
        "settings": job.settings.to_dict(),
        "best_epoch": state.best_epoch,
        "best_val_accuracy": state.best_val_accuracy,
        "fine_tune_start_epoch": state.fine_tune_start_epoch,
        "epochs_run": len(state.history),
        "stopped_early": state.stopped,
        **details,
        "attempts": state.attempts,
        "seconds": round(job.elapsed(), 1),
        "devices": describe_devices(job.run.strategy),
        # Set per job by the scheduler or the user before TensorFlow starts.
        "gpu_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "started": job.run.started,  # this attempt's start
        "finished": now(),
    }


def model_summary(job: Job, member: Member) -> dict[str, Any]:
    """The content of a category's ``training.json``, of ``member`` trained by ``job``."""
    data, weights, settings = member.data, member.class_weight, job.settings
    slugs = slugs_of(member.labels)
    soft = None
    if data.targets is not None and settings.maybe_labels == "soft":
        soft = {
            "maybe_weight": settings.maybe_weight,
            "train_images": len(data.targets),
            "coded_maybe": data.coded_maybe,  # images whose code has an m
            "with_maybe_class": int((data.targets.max(axis=1) < 1).sum()),  # after regrouping
        }
    features = data.features
    return job_summary(
        job,
        {"category": member.category, "classes": member.labels["classes"]},
        {
            "images": {part: int((data.split["subset"] == part).sum()) for part in SUBSETS},
            "skipped_images": len(data.skipped),
            "skipped_files": data.skipped,
            "class_weights": dict(zip(slugs, weights.values(), strict=True)) if weights else None,
            "soft_targets": soft,
            "features": features.describe(job.run.max_in_memory_bytes) if features else None,
        },
    )


def write_model_folder(
    out_dir: Path,
    model: keras.Model,
    member: Member,
    history: pd.DataFrame,
    summary: dict[str, Any],
    job: Job,
) -> None:
    """A category's model folder, each file written atomically: ``model`` (of one output) and
    its weights, the ``history``, the member's split, the predictions on its held-out images
    and ``summary`` (``training.json``)."""
    save_model(out_dir, model, job)
    history = history[HISTORY_COLUMNS].astype({"epoch": int})
    write_text(out_dir / HISTORY_FILE, history.to_csv(index=False))
    # A copy, not a hard link: Snakemake touches a job's outputs when it ends, and through a
    # link it would touch the split file, then newer than the features made from it.
    with atomic_file(out_dir / SPLIT_FILE) as partial:
        shutil.copyfile(member.data.split_file, partial)
    split = member.data.split
    held_out = split[split["subset"] != TRAIN]
    write_held_out(out_dir / HELD_OUT_FILE, held_out, predict_held_out(model, member, job))
    write_summary(out_dir, summary)


def predict_held_out(model: keras.Model, member: Member, job: Job) -> Predictions:
    """``model``'s predictions on the member's held-out images in the split's order, plain and
    flip-TTA: with a frozen backbone, its head on the cached features if any."""
    held_out = member.data.split[member.data.split["subset"] != TRAIN]
    settings, cache, log = job.settings, member.data.features, job.run.log
    images = f"the {len(held_out):,} held-out images of {member.category}"
    if isinstance(cache, FeatureCache) and not settings.fine_tune:
        log(f"predicting {images} from {cache.folder}")
        return cached_predictions(model.get_layer(HEAD), cache, held_out["subset"])
    classes = member.labels["classes"]
    trained = TrainedModel(model, member.category, classes, settings.image_size, settings.resize)
    log(f"predicting {images} (plain and mirrored)")
    # check=False: the split stage checked the images.
    return predict_files(
        trained, held_out["image"], batch_size=settings.batch_size, tta=True, log=log, check=False
    )


def cached_predictions(head: keras.Model, cache: FeatureCache, subsets: pd.Series) -> Predictions:
    """``head``'s probabilities on the cached features of the held-out images of ``subsets`` (in
    the split's order): plain, and flip-TTA (the mean of the image's and its mirror image's)."""
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
    """``model.keras`` and ``best.weights.h5`` of ``model`` (with a group's ``outputs``), backbone
    frozen, with a fresh optimizer (``load_model`` warns about saved state that does not fit)."""
    with job.run.strategy.scope():
        set_backbone_trainable(model, False)
        compile_classifier(model, job.settings.learning_rate, outputs=outputs)
        model.optimizer.build(model.trainable_variables)
    with atomic_file(out_dir / MODEL_FILE) as partial:
        model.save(partial)
    # The best epoch's weights, rewritten: ModelCheckpoint's file also holds the optimizer
    # state of its phase (for a fine-tuned backbone, twice the size of the weights).
    with atomic_file(out_dir / WEIGHTS_FILE) as partial:
        model.save_weights(partial)


def now() -> str:
    """The local time, ISO 8601 with its UTC offset."""
    return datetime.now().astimezone().isoformat(timespec="seconds")
