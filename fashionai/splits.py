"""The split stage: a regrouped tree's images, each checked the way training reads it, split
into seeded train, validation and test subsets (the split file; class index = position in
``labels.json``), the images left out in the skipped file; :func:`fold_split` derives a fold
member's split. Checking images starts TensorFlow (imported when called).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fashionai.atomic import write_text
from fashionai.images import NOT_A_FILE, UNDECODABLE
from fashionai.trees import read_labels

COLUMNS = ["image", "image_name", "label", "label_index"]
SPLIT_COLUMNS = [*COLUMNS, "subset"]
SKIPPED_COLUMNS = ["image", "reason"]
TRAIN, VALIDATION, TEST = "train", "validation", "test"
SUBSETS = (TRAIN, VALIDATION, TEST)
MAX_LOGGED_FILES = 20

Log = Callable[[str], None]


def list_images(tree_dir: Path, slugs: Sequence[str] | None = None) -> pd.DataFrame:
    """Every entry of the tree's class folders (:data:`COLUMNS`), by class then name, in the
    class order of ``slugs`` (default: ``labels.json``'s); a missing class folder has no images,
    a folder that is no class raises ValueError."""
    tree_dir = Path(tree_dir)
    if slugs is None:
        slugs = class_slugs(tree_dir)
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


def class_slugs(tree_dir: Path) -> list[str]:
    """The class folders of a tree, in the order of its ``labels.json``."""
    return [entry["slug"] for entry in read_labels(tree_dir)["classes"]]


def split_dataset(
    frame: pd.DataFrame, slugs: Sequence[str], validation_split: float, test_split: float, seed: int
) -> pd.DataFrame:
    """``frame`` with a ``subset`` column (train, validation, test), stratified: a class of ``n``
    sends ``round(n * share)`` to each held-out part, at least one to each part whose share is
    above 0, and keeps one for training (a smaller class: ValueError). Seeded by ``seed``."""
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
    """``split`` with its test rows kept and the others dealt, class by class in a seeded order,
    to ``folds`` folds: fold ``fold`` (1..folds) validates, the others train. The folds do not
    depend on ``fold``, so the members of a k-fold experiment validate on disjoint parts."""
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


def make_split(
    tree_dir: Path,
    validation_split: float,
    test_split: float,
    seed: int,
    threads: int | None = None,
    log: Log = print,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The usable images of ``tree_dir`` split, and those left out with reasons, in tree order:
    entries that are no regular file or that the training decoder rejects (a full decode)."""
    from fashionai.pixels import find_undecodable  # starts TensorFlow

    slugs = class_slugs(tree_dir)
    frame = list_images(tree_dir, slugs)
    paths = frame["image"].tolist()
    found = {path: NOT_A_FILE for path in paths if not os.path.isfile(path)}
    files = [path for path in paths if path not in found]
    found.update(dict.fromkeys(find_undecodable(files, threads), UNDECODABLE))
    skipped = {path: found[path] for path in paths if path in found}
    log_skipped(skipped, log)
    frame = frame[~frame["image"].isin(list(skipped))].reset_index(drop=True)
    split = split_dataset(frame, slugs, validation_split, test_split, seed)
    log_split(split, slugs, log)
    return split, skipped


def write_split(path: Path, split: pd.DataFrame) -> None:
    """Write the split file: one row per image, :data:`SPLIT_COLUMNS`."""
    write_text(path, split[SPLIT_COLUMNS].to_csv(index=False))


def write_skipped(path: Path, skipped: dict[str, str]) -> None:
    """Write the skipped file: one row per image left out, :data:`SKIPPED_COLUMNS`."""
    frame = pd.DataFrame(list(skipped.items()), columns=SKIPPED_COLUMNS)
    write_text(path, frame.to_csv(index=False))


def read_split(path: Path, slugs: Sequence[str] | None = None) -> pd.DataFrame:
    """The split file at ``path``; ValueError naming the file and row if it is none, or if a
    row's class or index is not that of ``slugs`` (the tree's classes, in order)."""
    path = Path(path)
    text = dict.fromkeys(["image", "image_name", "label"], object)  # as list_images gives them
    try:
        split = pd.read_csv(path, dtype=text, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"{path}: not a readable split file ({error})") from None
    if missing := [column for column in SPLIT_COLUMNS if column not in split.columns]:
        raise ValueError(f"{path}: not a split file, no column {missing[0]!r}")
    rerun = "; rerun the split stage (snakemake reruns it when the tree changes)"
    index = pd.to_numeric(split["label_index"], errors="coerce")
    if len(rows := np.flatnonzero(~split["subset"].isin(SUBSETS).to_numpy() | index.isna())):
        row = split.iloc[rows[0]]
        raise ValueError(
            f"{path}: row {rows[0] + 2}: label_index {row['label_index']}, subset "
            f"{row['subset']!r}: not a class index and one of {', '.join(SUBSETS)}{rerun}"
        )
    if slugs is not None:
        known = index.map(dict(enumerate(slugs))).to_numpy()
        if len(rows := np.flatnonzero(split["label"].to_numpy() != known)):
            row = split.iloc[rows[0]]
            raise ValueError(
                f"{path}: row {rows[0] + 2}: label {row['label']!r} with label_index "
                f"{row['label_index']}: not a class of the tree's labels.json at that index "
                f"(classes: {', '.join(slugs)}){rerun}"
            )
    return split.astype({"label_index": np.int64})[SPLIT_COLUMNS]


def read_skipped(path: Path) -> dict[str, str]:
    """The skipped file at ``path`` as ``{image: reason}``."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(frame.columns) != SKIPPED_COLUMNS:
        raise ValueError(f"{path}: not a skipped file (columns {', '.join(SKIPPED_COLUMNS)})")
    return dict(zip(frame["image"], frame["reason"], strict=True))


def log_split(split: pd.DataFrame, slugs: Sequence[str], log: Log) -> None:
    """One line per class: its train, validation and test counts."""
    counts = pd.crosstab(split["label"], split["subset"]).reindex(
        index=list(slugs), columns=list(SUBSETS), fill_value=0
    )
    for slug, (n_train, n_val, n_test) in counts.iterrows():
        log(f"  {slug}: {n_train} train, {n_val} validation, {n_test} test")


def log_skipped(skipped: dict[str, str], log: Log) -> None:
    """Log the files left out: the first few by name and reason, then how many more."""
    if skipped:
        log(f"skipping {len(skipped)} image(s) that cannot be used:")
        for path, reason in list(skipped.items())[:MAX_LOGGED_FILES]:
            log(f"  {path}: {reason}")
        if len(skipped) > MAX_LOGGED_FILES:
            log(f"  ... and {len(skipped) - MAX_LOGGED_FILES} more (listed in the skipped file)")
