"""An ensemble of trained models of one category (members checked alike by
:func:`fashionai.evaluation.ensemble.check_members`): the mean of their class probabilities."""

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
    """Every member's probabilities on ``paths`` (with ``tta`` its flip-TTA ones), each member
    loaded once at its own image size, and the ensemble's predictions: the means of the
    members' plain and flip-TTA predictions, a file any member skipped skipped (NaN)."""
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
