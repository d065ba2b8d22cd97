"""Rule evaluate's scorer: the held-out predictions of a model, of an ensemble (the mean of its
members' probabilities) or of fold members (each on the fold it did not train on), combined as
fashionai.config.evaluations says and scored with the competition metric; no model loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashionai.atomic import write_text
from fashionai.evaluation.evaluate import TTA_KEYS, load_held_out, score_held_out
from fashionai.model_folder import Predictions, check_members, combined, read_held_out, read_summary
from fashionai.outputs import HELD_OUT_FILE, MEAN, OUT_OF_FOLD, SINGLE, SPLIT_FILE, SUMMARY_FILE
from fashionai.plots.confusion import plot_confusion_matrix
from fashionai.splits import TEST, VALIDATION, read_split


def evaluate(
    member_dirs: Mapping[str, Path | str],
    decoded_csv: Path | str,
    metrics_json: Path | str,
    confusion_png: Path | str,
    *,
    combine: str = SINGLE,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write (and return) ``metrics.json`` and its confusion matrix, atomically, for the
    predictions of ``member_dirs`` (name -> model folder) combined as ``combine`` says:

    - SINGLE, one model; with ``tta``, ``flip_tta`` holds the flip-TTA predictions' figures;
    - MEAN, plus ``ensemble`` and with ``tta`` (the top level then the flip-TTA mean)
      ``without_tta``; members that validate on different images (folds) on the test images;
    - OUT_OF_FOLD, fold member i on fold i, plus ``folds`` and ``test`` (MEAN on the test
      images); ValueError unless the validation parts cover each non-test image once.

    ValueError naming the members whose classes, images or test part differ.
    """
    same_split = check_members(member_dirs)
    first = Path(next(iter(member_dirs.values())))
    summary = read_summary(first / SUMMARY_FILE)
    category = summary["category"]
    rows = load_held_out(first / SPLIT_FILE, decoded_csv, category)
    test = rows[rows["subset"] == TEST].reset_index(drop=True)
    if combine == SINGLE:
        ((name, folder),) = member_dirs.items()
        log(f"model {name}: {folder}")
        log(f"{category}: {rows['subset'].value_counts().to_dict()} held-out images")
        predictions = read_held_out(first / HELD_OUT_FILE, rows["image"], len(summary["classes"]))
        if not tta:
            predictions.flipped_tta = None
        metrics = score_held_out(rows, predictions, summary)
    elif combine == MEAN:
        if not same_split:  # folds: each member validates on images the others train on
            rows = test
        log(f"{category}: ensemble of {', '.join(member_dirs)}, {len(rows)} held-out images")
        metrics = _mean_scores(member_dirs, rows, summary, tta)
        category += " ensemble"
    elif combine == OUT_OF_FOLD:
        metrics = _out_of_fold_scores(member_dirs, decoded_csv, summary, tta, log)
        ensemble = _mean_scores(member_dirs, test, summary, tta)
        kept = ("n_images", *TTA_KEYS, "ensemble", "without_tta")  # what _mean_scores reports
        metrics[TEST] = {key: ensemble[key] for key in kept if key in ensemble}
        category += " out-of-fold"
    else:
        raise ValueError(f"combine is {combine!r}, not one of {SINGLE}, {MEAN}, {OUT_OF_FOLD}")
    write_text(metrics_json, json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    title = (
        f"{category}: {metrics['n_images']} {metrics['evaluated_on']} images, "
        f"accuracy {metrics['accuracy']:.3f}"
    )
    plot_confusion_matrix(metrics["confusion_matrix"], metrics["classes"], confusion_png, title)
    log(f"{title}, basic_precision {metrics['basic_precision']}, ap {metrics['ap']}")
    return metrics


def _mean_scores(
    member_dirs: Mapping[str, Path | str], rows: pd.DataFrame, summary: dict[str, Any], tta: bool
) -> dict[str, Any]:
    """The figures of the members' mean prediction on ``rows``, as MEAN writes them."""
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


def _out_of_fold_scores(
    member_dirs: Mapping[str, Path | str],
    decoded_csv: Path | str,
    summary: dict[str, Any],
    tta: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The figures of each fold member's predictions on its own validation images."""
    dirs = [Path(folder) for folder in member_dirs.values()]
    category, n_classes = summary["category"], len(summary["classes"])
    held_out = [load_held_out(folder / SPLIT_FILE, decoded_csv, category) for folder in dirs]
    rows = [frame[frame["subset"] == VALIDATION] for frame in held_out]
    parts = [
        read_held_out(folder / HELD_OUT_FILE, frame["image"], n_classes)
        for folder, frame in zip(dirs, rows, strict=True)
    ]
    oof = pd.concat(rows, ignore_index=True)
    split = read_split(dirs[0] / SPLIT_FILE)
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
    return metrics
