"""The out-of-fold evaluation of an experiment with ``train.folds`` (rule ``out_of_fold``).

Fold member i validates on fold i, so the members' validation rows of ``held_out.csv`` hold one
prediction, by a model that did not train on it, for every non-test image: scored together they
give a figure on all of them. ``metrics.json`` has a single model's keys for those figures,
``"evaluated_on": "out_of_fold"``, the ``folds`` (the members) and, beside them, ``test``: the
figures of the members' ensemble on the test images they share. No TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashionai.evaluation.ensemble import check_members, ensemble_scores, read_summary
from fashionai.evaluation.evaluate import (
    TEST,
    TTA_KEYS,
    VALIDATION,
    load_held_out,
    score_held_out,
    write_evaluation,
)
from fashionai.outputs import HELD_OUT_FILE, SPLIT_FILE
from fashionai.prediction.held_out import Predictions, read_held_out

OUT_OF_FOLD = "out_of_fold"


def evaluate_out_of_fold(
    member_dirs: Mapping[str, Path | str],
    decoded_csv: Path | str,
    metrics_json: Path | str,
    confusion_png: Path | str,
    *,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score the fold members' predictions on their own validation images (with ``tta`` the
    flip-TTA ones), write ``metrics.json`` and the confusion matrix (atomically) and return the
    metrics. ValueError when the validation parts do not cover each non-test image once."""
    check_members(member_dirs)
    dirs = [Path(folder) for folder in member_dirs.values()]
    summary = read_summary(dirs[0])
    category, classes = summary["category"], summary["classes"]
    held_out = [load_held_out(folder / SPLIT_FILE, decoded_csv, category) for folder in dirs]
    rows = [frame[frame["subset"] == VALIDATION] for frame in held_out]
    parts = [
        read_held_out(folder / HELD_OUT_FILE, frame["image"], len(classes))
        for folder, frame in zip(dirs, rows, strict=True)
    ]
    oof = pd.concat(rows, ignore_index=True)
    split = pd.read_csv(dirs[0] / SPLIT_FILE, dtype=str, keep_default_na=False)
    if not oof["image"].is_unique or set(oof["image"]) != set(
        split.loc[split["subset"] != TEST, "image"]
    ):
        raise ValueError(
            f"the validation images of {', '.join(member_dirs)} do not cover each non-test "
            f"image of {dirs[0] / SPLIT_FILE} once: not the folds of one experiment"
        )
    log(f"{category}: {len(oof)} out-of-fold images of {', '.join(member_dirs)}")
    predictions = Predictions(
        np.concatenate([part.plain for part in parts]),
        np.concatenate([part.flipped_tta for part in parts]) if tta else None,
        {path: why for part in parts for path, why in part.skipped.items()},
    )
    metrics = score_held_out(oof, predictions, classes, category)
    metrics.update(evaluated_on=OUT_OF_FOLD, folds=list(member_dirs))
    test = held_out[0][held_out[0]["subset"] == TEST].reset_index(drop=True)
    ensemble = ensemble_scores(member_dirs, test, classes, category, tta)
    metrics[TEST] = {key: ensemble[key] for key in ("n_images", *TTA_KEYS)}
    write_evaluation(metrics, f"{category} out-of-fold", metrics_json, confusion_png, log=log)
    return metrics
