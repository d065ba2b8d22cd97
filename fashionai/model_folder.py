"""A trained model's folder, read and written here alone, without TensorFlow: its
``training.json``, its predictions on its held-out images (``held_out.csv``, plain and flip-TTA,
which evaluation scores) and whether several folders can be members of one ensemble.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashionai.atomic import write_text
from fashionai.outputs import SPLIT_FILE, SUMMARY_FILE
from fashionai.splits import TEST, read_split

PLAIN, FLIP_TTA = "plain", "flip_tta"  # column prefixes: plain_0, plain_1, ..., flip_tta_0, ...


@dataclass
class Predictions:
    """Class probabilities per file, in the order of the files; the rows of skipped files
    (refused by the image check or undecodable) are NaN, ``skipped`` maps them to the reason.
    ``flipped_tta``: the mean of each image's and its mirror image's probabilities."""

    plain: np.ndarray
    flipped_tta: np.ndarray | None
    skipped: dict[str, str]


def combined(parts: list[Predictions], join: Callable[..., np.ndarray] = np.mean) -> Predictions:
    """The parts joined by ``join``: ``np.mean`` averages an ensemble's members (a file any of
    them skipped stays NaN), ``np.concatenate`` stacks their rows; every part's skipped kept."""
    flipped = [part.flipped_tta for part in parts]
    return Predictions(
        join([part.plain for part in parts], axis=0),
        None if flipped[0] is None else join(flipped, axis=0),
        {path: why for part in parts for path, why in part.skipped.items()},
    )


def write_held_out(path: Path | str, rows: pd.DataFrame, predictions: Predictions) -> None:
    """``rows`` (``image`` and ``subset`` columns) with their plain and flip-TTA probabilities,
    atomically."""
    if predictions.flipped_tta is None:
        raise ValueError("held-out predictions need flip-TTA figures too")
    frame = rows[["image", "subset"]].reset_index(drop=True)
    frame["skipped"] = frame["image"].map(predictions.skipped).fillna("")
    for prefix, values in ((PLAIN, predictions.plain), (FLIP_TTA, predictions.flipped_tta)):
        frame[[f"{prefix}_{i}" for i in range(values.shape[1])]] = values
    write_text(path, frame.to_csv(index=False, float_format="%.7g"))


def read_held_out(path: Path | str, images: pd.Series, n_classes: int) -> Predictions:
    """The predictions of ``path`` for ``images``, in their order. ValueError naming the file
    when an image has no row, or the file has not ``n_classes`` probabilities per row."""
    frame = pd.read_csv(path, dtype={"image": str, "subset": str, "skipped": str})
    frame["skipped"] = frame["skipped"].fillna("")
    columns = {prefix: [f"{prefix}_{i}" for i in range(n_classes)] for prefix in (PLAIN, FLIP_TTA)}
    found = {column for column in frame.columns if column.startswith((PLAIN, FLIP_TTA))}
    if found != {*columns[PLAIN], *columns[FLIP_TTA]}:
        raise ValueError(
            f"{path}: holds {len(found) // 2} class probabilities per image, the model has "
            f"{n_classes} classes; retrain the category"
        )
    frame = frame.drop_duplicates("image").set_index("image")
    missing = ~images.isin(frame.index)
    if missing.any():
        raise ValueError(
            f"{path}: no prediction for {int(missing.sum())} held-out image(s), first: "
            f"{images[missing].iloc[0]}; retrain the category"
        )
    rows = frame.loc[images.to_numpy()]
    plain, flipped = (rows[columns[prefix]].to_numpy(np.float32) for prefix in (PLAIN, FLIP_TTA))
    return Predictions(plain, flipped, rows.loc[rows["skipped"] != "", "skipped"].to_dict())


def read_summary(training_json: Path | str) -> dict[str, Any]:
    """A trained model's ``training.json`` (category, classes, settings, best epoch, ...)."""
    return json.loads(Path(training_json).read_text(encoding="utf-8"))


def write_summary(folder: Path | str, summary: Mapping[str, Any]) -> None:
    """``folder``'s ``training.json``, atomically (a category's model or a group's)."""
    write_text(Path(folder) / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")


def check_members(member_dirs: Mapping[str, Path | str]) -> bool:
    """ValueError naming the members whose classes, or images and test part, differ from the
    first member's; whether their ``split.csv`` files are the same (validation images too)."""
    names = list(member_dirs)
    if not names:
        raise ValueError("an ensemble needs at least one member")
    for what, read in (
        (f"classes ({SUMMARY_FILE})", lambda f: read_summary(f / SUMMARY_FILE)["classes"]),
        (f"split ({SPLIT_FILE}: images, test part)", _test_part),
    ):
        values = {name: read(Path(folder)) for name, folder in member_dirs.items()}
        if differ := [name for name in names if values[name] != values[names[0]]]:
            folders = ", ".join(f"{name}: {member_dirs[name]}" for name in [names[0], *differ])
            raise ValueError(
                f"ensemble members {', '.join(differ)} differ from {names[0]} in their {what}; "
                f"members of an ensemble must share them ({folders})"
            )
    return len({(Path(folder) / SPLIT_FILE).read_bytes() for folder in member_dirs.values()}) == 1


def _test_part(folder: Path) -> str:
    """The images of ``split.csv`` and whether each is a test image."""
    split = read_split(folder / SPLIT_FILE)
    return split.assign(subset=split["subset"] == TEST).to_csv(index=False)
