"""The FashionAI competition metric (AP, BasicPrecision) and a per-class report, in numpy.

Competition metric, per attribute: every row predicts its most probable class with that
probability as confidence. Rows are sorted by confidence, most confident first (a stable sort:
tied rows keep their input order). For each threshold that withholds the 0 .. N-1 least
confident rows, P = correct / counted over the kept rows, where a prediction at a ``y`` class is
correct, at an ``n`` class wrong and at an ``m`` class not counted at all (neither numerator nor
denominator). AP is the mean of P over the thresholds; a threshold whose kept rows are all ``m``
predictions has no P and is skipped (it neither adds to the sum nor to the number of
thresholds). BasicPrecision is P with nothing withheld. The competition's mAP is the mean AP
over the attributes.

On validation data the metric is computed on the regrouped classes: a group counts as ``y``
when any member is ``y`` (see :func:`group_codes`). ``official_*`` values in
:func:`evaluate_predictions` score the same predictions the way the leaderboard would, after
:func:`fashionai.evaluation.submission.expand_to_official`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fashionai.attributes import classes as official_classes
from fashionai.evaluation.classes import class_names as group_names
from fashionai.evaluation.classes import membership, sorted_groups
from fashionai.evaluation.submission import expand_to_official

CODE_LETTERS = ("y", "n", "m")


def code_matrix(codes: Sequence[str], n_classes: int) -> np.ndarray:
    """Annotation codes (``"nnymn"``, one letter per official class) as an (n, K) ``<U1``
    array; ValueError naming the first row with a wrong length or a letter other than y/n/m."""
    strings = np.asarray(list(codes), dtype=str)
    if strings.size == 0:
        return np.empty((0, n_classes), dtype="<U1")
    lengths = np.char.str_len(strings)
    bad_length = np.flatnonzero(lengths != n_classes)
    if bad_length.size:
        row = int(bad_length[0])
        raise ValueError(
            f"code {strings[row]!r} of row {row} has {lengths[row]} letters, "
            f"expected {n_classes} (one per official class)"
        )
    chars = np.ascontiguousarray(strings).view("<U1").reshape(len(strings), n_classes)
    bad_letter = ~np.isin(chars, CODE_LETTERS)
    if bad_letter.any():
        row = int(np.flatnonzero(bad_letter.any(axis=1))[0])
        raise ValueError(f"code {strings[row]!r} of row {row} has a letter other than y/n/m")
    return chars


def group_codes(codes: Sequence[str], classes: list[dict[str, Any]], category: str) -> np.ndarray:
    """Codes over the regrouped classes: an (n, G) ``<U1`` array of ``y``/``n``/``m``.

    A group is ``y`` when any member is ``y``, else ``m`` when any member is ``m``, else ``n``.
    A dropped class belongs to no group, so its letter is ignored: an image whose ``y`` is a
    dropped class gets no ``y`` group at all, and every prediction for it is counted wrong (or
    not counted, at an ``m`` group). Such images are normally not in the validation set, since
    dropped classes are not trained; :func:`evaluate_predictions` rejects them.
    """
    member = membership(classes, category).astype(np.int64)  # (K, G)
    chars = code_matrix(codes, member.shape[0])
    any_y = (chars == "y").astype(np.int64) @ member > 0
    any_m = (chars == "m").astype(np.int64) @ member > 0
    return np.where(any_y, "y", np.where(any_m, "m", "n")).astype("<U1")


def competition_scores(probabilities: np.ndarray, grouped_codes: np.ndarray) -> dict[str, Any]:
    """AP and BasicPrecision of ``probabilities`` (n, C) against ``grouped_codes`` (n, C) of
    ``y``/``n``/``m`` letters over the same classes.

    Returns ``{"ap", "basic_precision", "n", "counted"}``: ``n`` rows, of which ``counted``
    predict a ``y`` or ``n`` class (the BasicPrecision denominator). AP / BasicPrecision are NaN
    when no row is counted (no rows, or every prediction at an ``m`` class). Ties in the
    argmax go to the first class, ties in confidence keep the input order.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    letters = np.asarray(grouped_codes)
    if probs.ndim != 2 or letters.shape != probs.shape:
        raise ValueError(
            f"probabilities {probs.shape} and codes {letters.shape} must be equal-shaped 2-D"
        )
    if not np.isfinite(probs).all():
        raise ValueError("probabilities contain NaN or infinite values")
    n = probs.shape[0]
    rows = np.arange(n)
    predicted = probs.argmax(axis=1) if probs.shape[1] else np.zeros(n, dtype=np.int64)
    confidence = probs[rows, predicted]
    hit = letters[rows, predicted]
    order = np.argsort(-confidence, kind="stable")
    cum_correct = np.cumsum(hit[order] == "y")
    cum_counted = np.cumsum(hit[order] != "m")
    # Prefix i keeps the i+1 most confident rows, i.e. withholds the N-1-i least confident.
    defined = cum_counted > 0
    precision = cum_correct[defined] / cum_counted[defined]
    ap = float(precision.mean()) if precision.size else math.nan
    basic = float(cum_correct[-1] / cum_counted[-1]) if n and cum_counted[-1] else math.nan
    counted = int(cum_counted[-1]) if n else 0
    return {"ap": ap, "basic_precision": basic, "n": int(n), "counted": counted}


def classification_report(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """Accuracy, per-class precision / recall / f1 / support and the confusion matrix.

    ``y_true`` and ``y_pred`` are class indices into ``class_names``. A ratio with a zero
    denominator is 0.0. ``confusion_matrix[i][j]`` counts rows of true class i predicted as j.
    """
    truth = np.asarray(y_true, dtype=np.int64).ravel()
    pred = np.asarray(y_pred, dtype=np.int64).ravel()
    k = len(class_names)
    if truth.shape != pred.shape:
        raise ValueError(f"y_true has {truth.size} rows, y_pred {pred.size}")
    for name, values in (("y_true", truth), ("y_pred", pred)):
        if values.size and (values.min() < 0 or values.max() >= k):
            raise ValueError(f"{name} holds indices outside 0..{k - 1}")
    confusion = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    accuracy = float(true_positive.sum() / truth.size) if truth.size else 0.0
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": accuracy,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "classes": list(class_names),
    }


def evaluate_predictions(
    probabilities: np.ndarray,
    y_true: Sequence[int] | np.ndarray,
    codes: Sequence[str],
    classes: list[dict[str, Any]],
    category: str,
    share: Literal["equal", "target"] = "equal",
) -> dict[str, Any]:
    """The content of ``results/eval/{category}/metrics.json`` for one category.

    ``probabilities`` (n, G) are over the regrouped ``classes`` (column g = class index g),
    ``y_true`` the regrouped class index of each row and ``codes`` its original annotation code
    over the official classes. Keys: ``accuracy``, ``basic_precision``, ``ap``, ``per_class``,
    ``confusion_matrix``, ``classes``, ``n_images``, plus ``counted`` (rows the metric counts)
    and ``official_ap`` / ``official_basic_precision``: the same predictions spread over the
    official classes (:func:`~fashionai.evaluation.submission.expand_to_official` with
    ``share``; use the same value as the submission) and scored against the original codes, as
    the leaderboard would. An undefined AP is ``None`` (JSON ``null``).

    ValueError when a row's ``y_true`` is not a ``y`` group of its code: that means the class
    order of the model and of ``labels.json`` disagree, or the row's true class was dropped.
    """
    groups = sorted_groups(classes, category)
    names = group_names(groups)
    probs = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(y_true, dtype=np.int64).ravel()
    code_list = list(codes)
    if probs.ndim != 2 or probs.shape != (len(truth), len(names)) or len(code_list) != len(truth):
        raise ValueError(
            f"{category}: probabilities {probs.shape}, {len(truth)} labels and "
            f"{len(code_list)} codes do not fit {len(names)} classes"
        )
    grouped = group_codes(code_list, groups, category)
    report = classification_report(truth, probs.argmax(axis=1), names)
    mismatch = np.flatnonzero(grouped[np.arange(len(truth)), truth] != "y")
    if mismatch.size:
        row = int(mismatch[0])
        raise ValueError(
            f"{category}: {mismatch.size} row(s) whose true class is not a 'y' of their code, "
            f"first: row {row}, class {names[truth[row]]!r}, code {code_list[row]!r} "
            f"(class order of the model and labels.json differ, or a dropped class?)"
        )
    scores = competition_scores(probs, grouped)
    official_probs = expand_to_official(probs, groups, category, share=share)
    official = competition_scores(
        official_probs, code_matrix(code_list, len(official_classes(category)))
    )
    return {
        "accuracy": report["accuracy"],
        "basic_precision": _json_float(scores["basic_precision"]),
        "ap": _json_float(scores["ap"]),
        "official_basic_precision": _json_float(official["basic_precision"]),
        "official_ap": _json_float(official["ap"]),
        "counted": scores["counted"],
        "n_images": int(len(truth)),
        "classes": names,
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
    }


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio with 0.0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _json_float(value: float) -> float | None:
    """``value`` as a float, or None when it is NaN/infinite (not valid JSON)."""
    return float(value) if math.isfinite(value) else None
