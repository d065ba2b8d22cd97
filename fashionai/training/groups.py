"""Train one model for a group of categories (``train.grouped``): :func:`train_group`.

The model shares its augmentation, backbone and pooling, and has one softmax head per category
(:func:`~fashionai.training.model.build_group_classifier`). Its batches mix the group's
images (one table of every category's training rows); each image trains its own category's head
and the shared layers only: per-output sample weights are 0 on the other categories' images
(:func:`masked_targets`), times the image's class weight on its own. Best epoch and early
stopping go by the mean of the heads' validation accuracies
(:class:`~fashionai.training.callbacks.HeadMeans`). Everything else (phases, resume after a
kill, the feature cache, devices) is :mod:`fashionai.training.run`'s.

Outputs in the group's folder: the model (one output per category), its weights, ``history.csv``
with each head's figures, ``training.json``; and for each category ``members/<category>/`` with
the files of a category's model folder, its ``model.keras`` the shared layers with its own head.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from fashionai.atomic import write_text
from fashionai.attributes import pad_anchor
from fashionai.model_folder import write_summary
from fashionai.outputs import HISTORY_FILE, MEMBERS_DIR
from fashionai.splits import TRAIN, VALIDATION
from fashionai.training.augment import build_augmentation
from fashionai.training.devices import configure_devices, describe_devices
from fashionai.training.features import IN_MEMORY_BYTES, FeatureCaches
from fashionai.training.model import build_head, compose, group_head_name
from fashionai.training.resume import BACKUP_DIR, HISTORY_COLUMNS, Backup
from fashionai.training.run import (
    Data,
    Job,
    Log,
    Phase,
    build_model,
    class_weights,
    load_best,
    model_summary,
    now,
    phase_pipelines,
    prepare_data,
    run_phases,
    run_signature,
    save_model,
    with_targets,
    write_model_folder,
)
from fashionai.training.settings import TrainSettings, check_grouping
from fashionai.training.targets import one_hot
from fashionai.trees import read_labels

# A group's history.csv: HISTORY_COLUMNS (accuracies: the heads' mean), then per category these.
HEAD_COLUMNS = ("{}_accuracy", "{}_loss", "val_{}_accuracy", "val_{}_loss")


@dataclass(frozen=True)
class Member:
    """A category of a group: its tree's ``labels.json``, its images (split, feature cache,
    target rows) and its class weights."""

    labels: dict[str, Any]
    data: Data
    class_weight: dict[int, float] | None

    @property
    def category(self) -> str:
        return str(self.labels["category"])


@dataclass(frozen=True)
class HeadRows:
    """One category's rows of a group's table: their classes, their target rows (soft
    targets, label smoothing) if any, and the category's class weights if any."""

    labels: np.ndarray
    targets: np.ndarray | None = None
    class_weight: dict[int, float] | None = None


def masked_targets(
    heads: Mapping[str, HeadRows],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The targets and sample weights of a group's table, the rows of ``heads`` one category
    after the other, per output (category): its targets (class indices, or target rows) on its
    own rows, and a valid placeholder (class 0, a zero row) on the others'; its sample weights
    0 on the others' rows, so that their loss never reaches its head, and on its own rows the
    row's class weight (1 without)."""
    total = sum(len(rows.labels) for rows in heads.values())
    targets: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    start = 0
    for name, rows in heads.items():
        own = slice(start, start + len(rows.labels))
        if rows.targets is None:
            targets[name] = np.zeros(total, dtype=np.int64)
            targets[name][own] = rows.labels
        else:
            targets[name] = np.zeros((total, rows.targets.shape[1]), dtype=np.float32)
            targets[name][own] = rows.targets
        weights[name] = np.zeros(total, dtype=np.float32)
        weights[name][own] = 1.0
        if rows.class_weight is not None:
            table = np.array([rows.class_weight[i] for i in range(len(rows.class_weight))])
            weights[name][own] = table[np.asarray(rows.labels)]
        start = own.stop
    return targets, weights


def train_group(
    group: str,
    trees: dict[str, Path],
    out_dir: Path,
    settings: TrainSettings,
    *,
    splits: Mapping[str, Path],
    skipped: Mapping[str, Path],
    threads: int = 1,
    cache_images: bool = True,
    log: Log = print,
    features: dict[str, Path] | None = None,
    max_in_memory_bytes: int = IN_MEMORY_BYTES,
    decoded: Path | None = None,
) -> dict[str, Any]:
    """Train one model for the categories of ``trees`` (category -> its regrouped tree, in
    the group's order) and write it to ``out_dir``, with a category's model folder per category
    in ``out_dir/members/``; the group's ``training.json``, also returned.

    Each category's split and skipped files (``splits``, ``skipped``: category -> rule
    ``split``'s files), soft targets and class weights are those
    :func:`~fashionai.training.run.train_category` would use. Given ``features`` (category ->
    rule features' cache), the frozen-backbone epochs train the heads on the caches' features
    (one frozen backbone, whose random weights the first cache holds). A run killed
    continues from its last finished epoch, as a category's."""
    started, clock = now(), time.monotonic()
    out_dir = Path(out_dir)
    _check_group(group, trees, settings, features)
    log(f"training group {group}: {', '.join(trees)}")
    strategy = configure_devices(threads, settings.mixed_precision, log=log)
    members = [
        _prepare_member(category, Path(tree), splits, skipped, settings, features, decoded, log)
        for category, tree in trees.items()
    ]
    data = _group_data(members)
    backup = Backup(out_dir / BACKUP_DIR)
    signature = {"categories": {m.category: run_signature(settings, m.data) for m in members}}
    state = backup.load(signature, log)
    previous_seconds = state.seconds

    def elapsed() -> float:
        return previous_seconds + time.monotonic() - clock

    n_classes = {member.category: len(member.labels["classes"]) for member in members}
    parts = [member.data for member in members]
    classifier = build_model(settings, group, n_classes, strategy, parts, log)
    job = Job(
        group,
        settings,
        strategy,
        classifier,
        backup,
        state,
        data,
        None,  # class weights: in the sample weights
        threads,
        cache_images,
        max_in_memory_bytes,
        elapsed,
        log,
        functools.partial(_pipelines, members),
        tuple(n_classes),
    )
    run_phases(job)
    summary = _write_outputs(job, members, out_dir, started)
    backup.remove()
    log(
        f"best mean val_accuracy {state.best_val_accuracy:.4f} at epoch {state.best_epoch} "
        f"(from 0) of epochs 0..{len(state.history) - 1}; wrote {out_dir}"
    )
    return summary


def _check_group(
    group: str,
    trees: Mapping[str, Path],
    settings: TrainSettings,
    features: Mapping[str, Path] | None,
) -> None:
    """ValueError for what a group cannot train with (the configuration refuses the settings
    first, with the same :func:`~fashionai.training.settings.check_grouping`)."""
    if len(trees) < 2:
        raise ValueError(f"group {group}: needs at least two categories, has {list(trees)}")
    check_grouping(settings.to_dict(), "train", f"group {group}", list(trees))
    if features is not None and set(features) != set(trees):
        raise ValueError(
            f"group {group}: feature caches for {sorted(features)}, categories {sorted(trees)}"
        )


def _prepare_member(
    category: str,
    tree: Path,
    splits: Mapping[str, Path],
    skipped: Mapping[str, Path],
    settings: TrainSettings,
    features: Mapping[str, Path] | None,
    decoded: Path | None,
    log: Log,
) -> Member:
    """A category's images as :func:`~fashionai.training.run.train_category` takes them."""
    labels = read_labels(tree)
    if labels["category"] != category:
        raise ValueError(f"{tree / 'labels.json'}: is of {labels['category']}, not {category}")
    slugs = [entry["slug"] for entry in labels["classes"]]
    log(f"{category}: {len(slugs)} classes from {tree}")
    cache = None if features is None else Path(features[category])
    split, skipped_file = Path(splits[category]), Path(skipped[category])
    data = prepare_data(split, skipped_file, slugs, settings, cache, log)
    data = with_targets(data, labels, settings, decoded, log)
    return Member(labels, data, class_weights(data, slugs, settings, log))


def _group_data(members: list[Member]) -> Data:
    """The group's images: the members' splits one after the other (column ``head``: the
    member's index), their skipped files, their feature caches read as one."""
    split = pd.concat(
        [member.data.split.assign(head=index) for index, member in enumerate(members)],
        ignore_index=True,
    )
    skipped = {path: why for member in members for path, why in member.data.skipped.items()}
    caches = [member.data.features for member in members]
    return Data(split, None, skipped, None if caches[0] is None else FeatureCaches(caches))


def _head_rows(member: Member, subset: str, settings: TrainSettings) -> HeadRows:
    """A member's rows of ``subset`` for :func:`masked_targets`: training rows with their
    target rows and class weights; validation rows with their classes one-hot when training
    takes target rows, and no class weights (validation figures are plain)."""
    data = member.data
    if subset == TRAIN:
        return HeadRows(data.train["label_index"].to_numpy(), data.targets, member.class_weight)
    labels = data.validation["label_index"].to_numpy()
    n_classes = len(member.labels["classes"])
    return HeadRows(labels, one_hot(labels, n_classes) if settings.target_rows else None)


def _pipelines(
    members: list[Member], job: Job, phase: Phase, on_features: bool
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The group's training and validation pipelines: images (or features) with per-output
    targets and sample weights (:func:`masked_targets`)."""
    labels = tuple(
        masked_targets({m.category: _head_rows(m, subset, job.settings) for m in members})
        for subset in (TRAIN, VALIDATION)
    )
    pad = pad_anchor(job.settings.resize, members[0].category)  # the same for all (checked)
    return phase_pipelines(job, phase, on_features, labels, pad)


def _write_outputs(job: Job, members: list[Member], out_dir: Path, started: str) -> dict[str, Any]:
    """The group's model (best epoch), weights, history and ``training.json``, then each
    member's model folder; the group's ``training.json`` content."""
    load_best(job)
    state, categories = job.state, list(job.outputs)
    save_model(out_dir, job.classifier.model, job, outputs=job.outputs)
    history = pd.DataFrame(state.history)
    head_columns = [column.format(c) for c in categories for column in HEAD_COLUMNS]
    history = history.reindex(columns=[*HISTORY_COLUMNS, *head_columns]).astype({"epoch": int})
    write_text(out_dir / HISTORY_FILE, history.to_csv(index=False))
    best = history.set_index("epoch").loc[state.best_epoch]
    members_summary = {}
    for member in members:
        category = member.category
        own = history[["epoch", *(column.format(category) for column in HEAD_COLUMNS)]]
        own.columns = HISTORY_COLUMNS[:1] + ["accuracy", "loss", "val_accuracy", "val_loss"]
        summary = model_summary(job, member.labels, member.data, member.class_weight, started)
        summary.update(
            best_val_accuracy=float(best[f"val_{category}_accuracy"]),
            group=job.name,
            group_categories=categories,
        )
        folder = out_dir / MEMBERS_DIR / category
        folder.mkdir(parents=True, exist_ok=True)
        model = _member_model(job, category)
        write_model_folder(folder, model, member.labels, member.data, own, summary, job)
        members_summary[category] = {
            key: summary[key] for key in ("best_val_accuracy", "images", "skipped_images")
        }
    summary = {
        "group": job.name,
        "categories": categories,
        "settings": job.settings.to_dict(),
        "best_epoch": state.best_epoch,
        "best_val_accuracy": state.best_val_accuracy,  # the heads' mean
        "fine_tune_start_epoch": state.fine_tune_start_epoch,
        "epochs_run": len(state.history),
        "stopped_early": state.stopped,
        "members": members_summary,
        "attempts": state.attempts,
        "seconds": round(job.elapsed(), 1),
        "devices": describe_devices(job.strategy),
        "gpu_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "started": started,
        "finished": now(),
    }
    write_summary(out_dir, summary)
    return summary


def _member_model(job: Job, category: str) -> Any:
    """``category``'s model of one output: the group's feature extractor (shared, not copied)
    and a head named as a category's, holding the weights of the group's head for it."""
    settings, model = job.settings, job.classifier.model
    grouped = model.get_layer(group_head_name(category))
    with job.strategy.scope():
        head = build_head(job.classifier.feature_extractor.output_shape[-1],
                          grouped.output_shape[-1], settings.dropout)  # fmt: skip
        head.set_weights(grouped.get_weights())
        augmentation = build_augmentation(settings.augmentations, settings.seed)
        return compose(job.classifier.feature_extractor, head, augmentation, name=category)
