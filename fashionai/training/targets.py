"""Soft training targets from the ``m`` ("maybe") codes (``train.maybe_labels: soft``): the y
class 1, each class its code marks ``m`` ``maybe_weight``, normalised to sum 1. Counted on the
regrouped tree's classes: an ``m`` merged into the y class or on a dropped class adds nothing, a
group gets the weight once. Validation and test targets stay the y class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashionai.attributes import ATTRIBUTES
from fashionai.decoding import read_decoded
from fashionai.outputs import DECODED_CSV

CODE_COLUMNS = ["attribute", "image_name", "code"]  # of decoded.csv


def read_codes(decoded: Path, category: str) -> pd.Series:
    """The code of each image of ``category`` in ``decoded`` (decoded.csv), by image name."""
    frame = read_decoded(decoded, CODE_COLUMNS)
    rows = frame[frame["attribute"] == category]
    repeated = rows["image_name"][rows["image_name"].duplicated()]
    if len(repeated):
        raise ValueError(f"{decoded}: image {repeated.iloc[0]!r} of {category} has several rows")
    return rows.set_index("image_name")["code"]


def class_groups(labels: dict[str, Any]) -> np.ndarray:
    """For each official class (code position): the index of its class in the regrouped tree's
    ``labels`` (``labels.json``), or -1 if it was dropped."""
    category = labels["category"]
    group = {name: -1 for name in labels["dropped"]}
    for index, entry in enumerate(labels["classes"]):
        group.update(dict.fromkeys(entry["members"], index))
    if missing := [name for name in ATTRIBUTES[category] if name not in group]:
        raise ValueError(
            f"labels.json of {category}: the official class {missing[0]!r} is in no class's "
            "members and not dropped"
        )
    return np.array([group[name] for name in ATTRIBUTES[category]])


def soft_targets(
    labels: dict[str, Any], images: pd.DataFrame, codes: pd.Series, weight: float, source: Path
) -> tuple[np.ndarray, int]:
    """The float32 targets of ``images`` (rows with image, image_name, label_index) from their
    ``codes`` (read from ``source``), and how many codes have an ``m``; ValueError naming an
    image without a code, with one of the wrong length, or whose y class is not its tree class."""
    groups = class_groups(labels)
    n, k = len(images), len(labels["classes"])
    found = codes.reindex(images["image_name"].to_numpy())
    lengths = found.str.len().fillna(-1).to_numpy()

    def fail(mask: np.ndarray, problem: str) -> None:
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            raise ValueError(
                f"{source}: {problem} for {images['image'].iloc[row]} "
                f"(image_name {images['image_name'].iloc[row]!r}, {labels['category']})"
            )

    fail(found.isna().to_numpy(), "no row")
    fail(lengths != len(groups), f"the code is not {len(groups)} letters")
    letters = np.frombuffer("".join(found).encode(), dtype=np.uint8).reshape(n, len(groups))
    y = images["label_index"].to_numpy()
    fail(groups[np.argmax(letters == ord("y"), axis=1)] != y, "the code's y is another class")
    rows, positions = np.nonzero(letters == ord("m"))
    targets = np.zeros((n, k), dtype=np.float64)
    kept = groups[positions] >= 0  # not dropped
    targets[rows[kept], groups[positions[kept]]] = weight  # once per group
    targets[np.arange(n), y] = 1.0  # an m merged into the y class adds nothing
    targets /= targets.sum(axis=1, keepdims=True)
    return targets.astype(np.float32), int(np.any(letters == ord("m"), axis=1).sum())


def load_soft_targets(
    decoded: Path | None,
    labels: dict[str, Any],
    images: pd.DataFrame,
    weight: float,
    log: Callable[[str], None],
) -> tuple[np.ndarray, int]:
    """:func:`soft_targets` of ``images`` from the decoded labels file ``decoded``, logged."""
    if decoded is None:
        raise ValueError(f"train.maybe_labels: soft needs the decoded labels ({DECODED_CSV})")
    codes = read_codes(decoded, labels["category"])
    targets, coded = soft_targets(labels, images, codes, weight, Path(decoded))
    log(
        f"soft targets (maybe_weight {weight:g}): {coded} of {len(images)} training images "
        f"coded m, {int((targets.max(axis=1) < 1).sum())} with a maybe class after regrouping"
    )
    return targets, coded


def one_hot(label_index: np.ndarray, n_classes: int) -> np.ndarray:
    """float32 one-hot target rows of class indices."""
    return np.eye(n_classes, dtype=np.float32)[np.asarray(label_index)]
