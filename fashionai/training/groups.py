"""Train one model for a group of categories (``train.grouped``): :func:`train_group`. Shared
augmentation, backbone and pooling, one softmax head per category; a batch mixes the group's
images, each training its own category's head and the shared layers (:func:`masked_targets`).
Best epoch and early stopping go by the mean of the heads' validation accuracies
(:class:`~fashionai.training.callbacks.HeadMeans`); the rest is a category's run
(:func:`~fashionai.training.run.run_job`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashionai.atomic import write_text
from fashionai.model_folder import write_summary
from fashionai.outputs import HISTORY_FILE, MEMBERS_DIR
from fashionai.training.augment import build_augmentation
from fashionai.training.devices import configure_devices
from fashionai.training.features import IN_MEMORY_BYTES, FeatureCaches
from fashionai.training.model import build_head, compose, group_head_name
from fashionai.training.resume import HISTORY_COLUMNS
from fashionai.training.run import (
    Data,
    Job,
    Log,
    Member,
    Run,
    job_summary,
    model_summary,
    now,
    prepare_member,
    run_job,
    run_signature,
    save_model,
    write_model_folder,
)
from fashionai.training.settings import TrainSettings, check_grouping
from fashionai.training.targets import one_hot
from fashionai.trees import read_labels

# A group's history.csv: HISTORY_COLUMNS (accuracies: the heads' mean), then per category these.
HEAD_COLUMNS = ("{}_accuracy", "{}_loss", "val_{}_accuracy", "val_{}_loss")


@dataclass(frozen=True)
class HeadRows:
    """One category's rows of a group's table: their classes, their target rows if any, and
    the category's class weights if any."""

    labels: np.ndarray
    targets: np.ndarray | None = None
    class_weight: dict[int, float] | None = None


def masked_targets(
    heads: Mapping[str, HeadRows],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per output (category), the targets and sample weights of a table of the rows of
    ``heads``, one category after the other: its own rows' targets, a valid placeholder (class
    0, a zero row) on the others'; sample weights 0 on the others' rows, so that their loss never
    reaches its head, and the row's class weight (1 without) on its own."""
    total = sum(len(rows.labels) for rows in heads.values())
    targets: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    start = 0
    for name, rows in heads.items():
        own = slice(start, start + len(rows.labels))
        values = np.asarray(rows.labels if rows.targets is None else rows.targets)
        targets[name] = np.zeros((total, *values.shape[1:]), dtype=values.dtype)
        targets[name][own] = values
        weights[name] = np.zeros(total, dtype=np.float32)
        weights[name][own] = 1.0
        if rows.class_weight is not None:
            # A table per class, indexed by the rows' labels: no loop over the rows.
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
    """Train one model for the categories of ``trees`` (category -> regrouped tree, in the
    group's order), each with :func:`~fashionai.training.run.train_category`'s inputs (category
    -> file), and write it and each category's model folder (in ``members/``) to ``out_dir``;
    the group's ``training.json``, also returned. With feature caches, the first's backbone."""
    started, clock = now(), time.monotonic()
    if len(trees) < 2:
        raise ValueError(f"group {group}: needs at least two categories, has {list(trees)}")
    # The configuration refuses these settings first, with the same check.
    check_grouping(settings.to_dict(), "train", f"group {group}", list(trees))
    if features is not None and set(features) != set(trees):
        raise ValueError(
            f"group {group}: feature caches for {sorted(features)}, categories {sorted(trees)}"
        )
    log(f"training group {group}: {', '.join(trees)}")
    strategy = configure_devices(threads, settings.mixed_precision, log=log)
    run = Run(strategy, threads, cache_images, max_in_memory_bytes, log, started, clock)
    members = []
    for category, tree in trees.items():
        labels = read_labels(Path(tree))
        if labels["category"] != category:
            raise ValueError(f"{tree}/labels.json: is of {labels['category']}, not {category}")
        log(f"{category}: {len(labels['classes'])} classes from {tree}")
        cache = None if features is None else Path(features[category])
        split, skipped_file = Path(splits[category]), Path(skipped[category])
        members.append(prepare_member(labels, split, skipped_file, settings, cache, decoded, log))
    data = Data(
        pd.concat([m.data.split.assign(head=i) for i, m in enumerate(members)], ignore_index=True),
        None,
        {path: why for member in members for path, why in member.data.skipped.items()},
        None if features is None else FeatureCaches([m.data.features for m in members]),
    )
    signature = {"categories": {m.category: run_signature(settings, m.data) for m in members}}
    rows, outputs = _labels(members, settings), tuple(trees)
    return run_job(
        group, members, data, signature, Path(out_dir), settings, run, rows, outputs, _write
    )


def _labels(members: list[Member], settings: TrainSettings) -> tuple[Any, Any]:
    """The group's training and validation labels (:func:`masked_targets`): validation rows
    without class weights, one-hot when training takes target rows."""
    train, validation = {}, {}
    for member in members:
        data, n_classes = member.data, len(member.labels["classes"])
        labels = data.train["label_index"].to_numpy()
        train[member.category] = HeadRows(labels, data.targets, member.class_weight)
        labels = data.validation["label_index"].to_numpy()
        rows = one_hot(labels, n_classes) if settings.target_rows else None
        validation[member.category] = HeadRows(labels, rows)
    return masked_targets(train), masked_targets(validation)


def _write(job: Job, out_dir: Path) -> dict[str, Any]:
    """The group's model, weights, history and ``training.json``, then each member's model
    folder (its ``model.keras`` the shared layers with its own head); the group's summary."""
    state, categories = job.state, list(job.outputs)
    save_model(out_dir, job.classifier.model, job, outputs=job.outputs)
    head_columns = [column.format(c) for c in categories for column in HEAD_COLUMNS]
    history = pd.DataFrame(state.history).reindex(columns=[*HISTORY_COLUMNS, *head_columns])
    history = history.astype({"epoch": int})
    write_text(out_dir / HISTORY_FILE, history.to_csv(index=False))
    best = history.set_index("epoch").loc[state.best_epoch]
    members_summary = {}
    for member in job.members:
        category = member.category
        own = history[["epoch", *(column.format(category) for column in HEAD_COLUMNS)]]
        own.columns = HISTORY_COLUMNS
        summary = model_summary(job, member)
        summary.update(
            best_val_accuracy=float(best[f"val_{category}_accuracy"]),
            group=job.name,
            group_categories=categories,
        )
        folder = out_dir / MEMBERS_DIR / category
        folder.mkdir(parents=True, exist_ok=True)
        write_model_folder(folder, _member_model(job, category), member, own, summary, job)
        members_summary[category] = {
            key: summary[key] for key in ("best_val_accuracy", "images", "skipped_images")
        }
    head = {"group": job.name, "categories": categories}  # best_val_accuracy: the heads' mean
    summary = job_summary(job, head, {"members": members_summary})
    write_summary(out_dir, summary)
    return summary


def _member_model(job: Job, category: str) -> Any:
    """``category``'s model of one output: the group's feature extractor (shared, not copied)
    and a head named as a category's, holding the weights of the group's head for it."""
    settings, extractor = job.settings, job.classifier.feature_extractor
    grouped = job.classifier.model.get_layer(group_head_name(category))
    with job.run.strategy.scope():
        head = build_head(extractor.output_shape[-1], grouped.output_shape[-1], settings.dropout)
        head.set_weights(grouped.get_weights())
        augmentation = build_augmentation(settings.augmentations, settings.seed)
        return compose(extractor, head, augmentation, name=category)
