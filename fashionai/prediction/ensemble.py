"""An ensemble of trained models of one category: the mean of their class probabilities.

The members are models of the same category trained by different experiments. They can only be
averaged when they predict the same classes in the same order, and they can only be compared on
the test images when they were split alike
(:func:`fashionai.evaluation.ensemble.check_members`). Each member predicts at its own image size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from fashionai.prediction.held_out import Predictions
from fashionai.prediction.predict import TrainedModel, predict_files


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
