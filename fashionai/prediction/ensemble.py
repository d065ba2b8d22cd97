"""An ensemble of trained models of one category: the mean of their class probabilities.

The members are models of the same category trained by different experiments. They can only be
averaged when they predict the same classes in the same order, and they can only be compared on
the test images when they were split alike, so :func:`check_members` refuses members whose
``training.json`` classes or ``split.csv`` differ. Each member predicts at its own image size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fashionai.outputs import SPLIT_FILE, SUMMARY_FILE
from fashionai.prediction.predict import Predictions, TrainedModel, predict_files


def read_summary(model_dir: Path | str) -> dict[str, Any]:
    """The ``training.json`` of a trained model's folder (category, classes, settings, ...)."""
    return json.loads((Path(model_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))


def check_members(member_dirs: Mapping[str, Path | str]) -> None:
    """ValueError naming the members whose classes (``training.json``) or split file
    (``split.csv``) differ from those of the first member."""
    names = list(member_dirs)
    if not names:
        raise ValueError("an ensemble needs at least one member")

    def differing(read: Callable[[Path], object]) -> list[str]:
        values = {name: read(Path(folder)) for name, folder in member_dirs.items()}
        return [name for name in names if values[name] != values[names[0]]]

    for what, read in (
        (f"classes ({SUMMARY_FILE})", lambda folder: read_summary(folder)["classes"]),
        (f"split ({SPLIT_FILE})", lambda folder: (folder / SPLIT_FILE).read_bytes()),
    ):
        if differ := differing(read):
            folders = ", ".join(f"{name}: {member_dirs[name]}" for name in [names[0], *differ])
            raise ValueError(
                f"ensemble members {', '.join(differ)} differ from {names[0]} in their {what}; "
                f"members of an ensemble must share them ({folders})"
            )


def member_probabilities(
    member_dirs: Mapping[str, Path | str],
    paths: Sequence[str | Path],
    *,
    batch_size: int = 64,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, np.ndarray], Predictions]:
    """Every member's probabilities on ``paths`` (with ``tta`` the mean of each image and its
    mirror image), each member loaded and predicting once, and the ensemble's predictions.

    The ensemble's ``plain`` is the mean of the members' plain predictions, its
    ``flipped_tta`` (with ``tta``) the mean of their flip-TTA predictions; a file skipped by
    any member is skipped (NaN) in the ensemble. Call :func:`check_members` first.
    """
    plain, flipped, own, skipped = [], [], {}, {}
    for name, folder in member_dirs.items():
        trained = TrainedModel.load(folder)
        log(f"member {name}: {folder}, {trained.image_size} px")
        predictions = predict_files(trained, paths, batch_size=batch_size, tta=tta, log=log)
        plain.append(predictions.plain)
        if predictions.flipped_tta is not None:
            flipped.append(predictions.flipped_tta)
        own[name] = predictions.flipped_tta if tta else predictions.plain
        skipped.update(predictions.skipped)
    mean = Predictions(np.mean(plain, axis=0), np.mean(flipped, axis=0) if tta else None, skipped)
    return own, mean
