"""Evaluating a category's ensemble (rule ``evaluate_ensemble``) exactly like a single model.

The ensemble predicts the mean of its members' class probabilities
(:mod:`fashionai.prediction.ensemble`); with ``tta`` each member contributes the mean of its
predictions on each image and on its mirror image. ``metrics.json`` has the keys of a single
model's (:mod:`fashionai.evaluation.evaluate`) for those predictions, plus ``ensemble``
(members, tta) and, with ``tta``, ``without_tta``: the figures of the plain mean, so that the
effect of flip TTA on the ensemble is on record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fashionai.evaluation.evaluate import TTA_KEYS, load_held_out, score_held_out, write_evaluation
from fashionai.outputs import SPLIT_FILE
from fashionai.prediction.ensemble import check_members, member_probabilities, read_summary
from fashionai.prediction.predict import Predictions


def evaluate_ensemble(
    member_dirs: Mapping[str, Path | str],
    decoded_csv: Path | str,
    metrics_json: Path | str,
    confusion_png: Path | str,
    *,
    batch_size: int = 64,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Check the members (same classes, same split), predict their held-out images, write the
    ensemble's ``metrics.json`` and confusion matrix (atomically) and return the metrics."""
    check_members(member_dirs)
    first = Path(next(iter(member_dirs.values())))
    summary = read_summary(first)
    category, classes = summary["category"], summary["classes"]
    rows = load_held_out(first / SPLIT_FILE, decoded_csv, category)
    log(f"{category}: ensemble of {', '.join(member_dirs)}, {len(rows)} held-out images")
    _, mean = member_probabilities(
        member_dirs, rows["image"], batch_size=batch_size, tta=tta, log=log
    )
    ensemble = mean.flipped_tta if tta else mean.plain
    metrics = score_held_out(rows, Predictions(ensemble, None, mean.skipped), classes, category)
    if tta:
        plain = score_held_out(rows, Predictions(mean.plain, None, mean.skipped), classes, category)
        metrics["without_tta"] = {key: plain[key] for key in TTA_KEYS}
    metrics["ensemble"] = {"members": list(member_dirs), "tta": tta}
    write_evaluation(metrics, f"{category} ensemble", metrics_json, confusion_png, log=log)
    return metrics
