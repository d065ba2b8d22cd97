"""Held-out rows and their figures for rule ``evaluate``'s scorer (evaluation.ensemble).

``metrics.json`` reports the test images at the top level (``"evaluated_on": "test"``), the
validation ones under ``"validation"``; a split without test images, its validation images.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fashionai.decoding import read_decoded
from fashionai.evaluation.metric import evaluate_predictions
from fashionai.evaluation.summary import FIGURES
from fashionai.model_folder import Predictions
from fashionai.splits import TEST, VALIDATION, read_split

TTA_KEYS = FIGURES  # the figures that flip_tta (and an ensemble's without_tta) repeat


def load_held_out(split_csv: Path | str, decoded_csv: Path | str, category: str) -> pd.DataFrame:
    """The validation and test rows of ``split.csv`` (in file order) with the ``code`` of their
    ``image_name`` in ``decoded.csv``. ValueError naming the file when an image has two codes or
    none, a required column is missing or nothing is held out.
    """
    split = read_split(split_csv)
    decoded = read_decoded(decoded_csv, ("attribute", "image_name", "code"))
    held_out = split[split["subset"].isin([TEST, VALIDATION])].reset_index(drop=True)
    if held_out.empty:
        raise ValueError(f"{split_csv}: no {VALIDATION} or {TEST} rows")
    codes = decoded.loc[decoded["attribute"] == category, ["image_name", "code"]]
    codes = codes[codes["image_name"].isin(held_out["image_name"])].drop_duplicates()
    clash = codes["image_name"].duplicated(keep=False)
    if clash.any():
        name = codes.loc[clash, "image_name"].iloc[0]
        listed = ", ".join(codes.loc[codes["image_name"] == name, "code"])
        raise ValueError(f"{decoded_csv}: {category} image {name} has different codes: {listed}")
    merged = held_out.merge(codes, on="image_name", how="left", validate="many_to_one")
    missing = merged["code"].isna()
    if missing.any():
        raise ValueError(
            f"{decoded_csv}: no {category} row for {int(missing.sum())} held-out image(s) of "
            f"{split_csv}, first: {merged.loc[missing, 'image_name'].iloc[0]}"
        )
    return merged.astype({"label_index": "int64"})


def score_held_out(
    rows: pd.DataFrame, predictions: Predictions, summary: Mapping[str, Any]
) -> dict[str, Any]:
    """The figures of ``metrics.json`` for a model's (``summary``: its ``training.json``)
    predictions on the rows of :func:`load_held_out`; the images the model could not read are
    left out and listed under ``skipped_images``."""
    rows = rows.assign(predicted=~rows["image"].isin(list(predictions.skipped)))
    on = TEST if (rows["subset"] == TEST).any() else VALIDATION
    metrics = {"evaluated_on": on, **_scores(rows, predictions, summary, on)}
    if on == TEST and (rows["subset"] == VALIDATION).any():  # none in the ensemble of folds
        metrics[VALIDATION] = _scores(rows, predictions, summary, VALIDATION)
    metrics["skipped_images"] = predictions.skipped
    return metrics


def _scores(
    rows: pd.DataFrame, predictions: Predictions, summary: Mapping[str, Any], subset: str
) -> dict[str, Any]:
    """The figures of the predicted rows of ``subset``, with ``flip_tta`` when there is TTA."""
    keep = ((rows["subset"] == subset) & rows["predicted"]).to_numpy()
    truth = rows.loc[keep, "label_index"], rows.loc[keep, "code"]
    model = summary["classes"], summary["category"]
    metrics = evaluate_predictions(predictions.plain[keep], *truth, *model)
    if predictions.flipped_tta is not None:
        flipped = evaluate_predictions(predictions.flipped_tta[keep], *truth, *model)
        metrics["flip_tta"] = {key: flipped[key] for key in TTA_KEYS}
    return metrics
