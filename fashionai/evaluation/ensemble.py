"""Scoring several models' held-out predictions together (rule ``evaluate``), no model loaded.

:func:`evaluate_ensemble` scores the mean of the members' probabilities; members that validate
on different images (fold members) on the test images alone. :func:`evaluate_out_of_fold` scores
fold member i on fold i, which it did not train on: one prediction for every non-test image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashionai.evaluation.evaluate import (
    TEST,
    TTA_KEYS,
    VALIDATION,
    evaluate_model,
    load_held_out,
    score_held_out,
    write_evaluation,
)
from fashionai.model_folder import Predictions, check_members, combined, read_held_out, read_summary
from fashionai.outputs import HELD_OUT_FILE, MEAN, OUT_OF_FOLD, SINGLE, SPLIT_FILE, SUMMARY_FILE


def evaluate_ensemble(
    member_dirs: Mapping[str, Path | str],
    decoded_csv: Path | str,
    metrics_json: Path | str,
    confusion_png: Path | str,
    *,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write (and return) the ensemble's ``metrics.json``, a single model's keys plus
    ``ensemble`` and, with ``tta``, ``without_tta`` (the plain mean's figures), and its
    confusion matrix."""
    same_split = check_members(member_dirs)
    first = Path(next(iter(member_dirs.values())))
    summary = read_summary(first / SUMMARY_FILE)
    category = summary["category"]
    rows = load_held_out(first / SPLIT_FILE, decoded_csv, category)
    if not same_split:  # folds: each member validates on images the others train on
        rows = rows[rows["subset"] == TEST].reset_index(drop=True)
    log(f"{category}: ensemble of {', '.join(member_dirs)}, {len(rows)} held-out images")
    metrics = ensemble_scores(member_dirs, rows, summary, tta)
    write_evaluation(metrics, f"{category} ensemble", metrics_json, confusion_png, log=log)
    return metrics


def ensemble_scores(
    member_dirs: Mapping[str, Path | str], rows: pd.DataFrame, summary: dict[str, Any], tta: bool
) -> dict[str, Any]:
    """The figures of the members' mean prediction on ``rows``, as :func:`evaluate_ensemble`
    writes them."""
    paths = [Path(folder) / HELD_OUT_FILE for folder in member_dirs.values()]
    n_classes = len(summary["classes"])
    mean = combined([read_held_out(path, rows["image"], n_classes) for path in paths])
    plain = Predictions(mean.plain, None, mean.skipped)
    flipped = Predictions(mean.flipped_tta, None, mean.skipped)
    metrics = score_held_out(rows, flipped if tta else plain, summary)
    if tta:
        without = score_held_out(rows, plain, summary)
        metrics["without_tta"] = {key: without[key] for key in TTA_KEYS}
    metrics["ensemble"] = {"members": list(member_dirs), "tta": tta}
    return metrics


def evaluate_out_of_fold(
    member_dirs: Mapping[str, Path | str],
    decoded_csv: Path | str,
    metrics_json: Path | str,
    confusion_png: Path | str,
    *,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write (and return) ``metrics.json``, a single model's keys for the members' own validation
    images, ``folds`` and ``test`` (their ensemble's figures on the test images), and the
    confusion matrix. ValueError unless the validation parts cover each non-test image once."""
    check_members(member_dirs)
    dirs = [Path(folder) for folder in member_dirs.values()]
    summary = read_summary(dirs[0] / SUMMARY_FILE)
    category, n_classes = summary["category"], len(summary["classes"])
    held_out = [load_held_out(folder / SPLIT_FILE, decoded_csv, category) for folder in dirs]
    rows = [frame[frame["subset"] == VALIDATION] for frame in held_out]
    parts = [
        read_held_out(folder / HELD_OUT_FILE, frame["image"], n_classes)
        for folder, frame in zip(dirs, rows, strict=True)
    ]
    oof = pd.concat(rows, ignore_index=True)
    split = pd.read_csv(dirs[0] / SPLIT_FILE, dtype=str, keep_default_na=False)
    non_test = set(split.loc[split["subset"] != TEST, "image"])
    if not oof["image"].is_unique or set(oof["image"]) != non_test:
        raise ValueError(
            f"the validation images of {', '.join(member_dirs)} do not cover each non-test "
            f"image of {dirs[0] / SPLIT_FILE} once: not the folds of one experiment"
        )
    log(f"{category}: {len(oof)} out-of-fold images of {', '.join(member_dirs)}")
    predictions = combined(parts, np.concatenate)
    if not tta:
        predictions.flipped_tta = None
    metrics = score_held_out(oof, predictions, summary)
    metrics.update(evaluated_on=OUT_OF_FOLD, folds=list(member_dirs))
    test = held_out[0][held_out[0]["subset"] == TEST].reset_index(drop=True)
    ensemble = ensemble_scores(member_dirs, test, summary, tta)
    kept = ("n_images", *TTA_KEYS, "ensemble", "without_tta")  # what ensemble_scores reports
    metrics[TEST] = {key: ensemble[key] for key in kept if key in ensemble}
    write_evaluation(metrics, f"{category} out-of-fold", metrics_json, confusion_png, log=log)
    return metrics


# Rule evaluate's scorer for each way of combining members (fashionai.config.evaluations).
SCORERS = {SINGLE: evaluate_model, MEAN: evaluate_ensemble, OUT_OF_FOLD: evaluate_out_of_fold}
