"""The FashionAI competition metric (AP, BasicPrecision) and a per-class report, in numpy.

Every row predicts its most probable class, that probability its confidence. For each threshold
withholding the 0 .. N-1 least confident rows, P = correct / counted over the kept rows (a ``y``
class correct, ``n`` wrong, ``m`` not counted). AP is the mean of P over the thresholds that
count any row, BasicPrecision P with nothing withheld, mAP the mean AP over the attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fashionai.attributes import classes as official_classes
from fashionai.prediction.classes import expand_to_official, membership

CODE_LETTERS = ("y", "n", "m")


def code_matrix(codes: Sequence[str], n_classes: int) -> np.ndarray:
    """Codes (``"nnymn"``, a letter per official class) as an (n, K) ``<U1`` array; ValueError
    naming the first row with a wrong length or a letter other than y/n/m."""
    for row, code in enumerate(codes):
        if len(code) != n_classes:
            raise ValueError(
                f"code {code!r} of row {row} has {len(code)} letters, expected {n_classes} "
                f"(one per official class)"
            )
        if set(code) - set(CODE_LETTERS):
            raise ValueError(f"code {code!r} of row {row} has a letter other than y/n/m")
    return np.array([list(code) for code in codes], dtype="<U1").reshape(len(codes), n_classes)


def group_codes(codes: Sequence[str], classes: list[dict[str, Any]], category: str) -> np.ndarray:
    """Codes over the regrouped classes, an (n, G) ``<U1`` array: a group is ``y`` when any
    member is ``y``, else ``m`` when any is ``m``, else ``n`` (a dropped class counts nowhere)."""
    member = membership(classes, category).astype(np.int64)  # (K, G)
    chars = code_matrix(codes, member.shape[0])
    any_y = (chars == "y").astype(np.int64) @ member > 0
    any_m = (chars == "m").astype(np.int64) @ member > 0
    return np.where(any_y, "y", np.where(any_m, "m", "n")).astype("<U1")


def competition_scores(probabilities: np.ndarray, grouped_codes: np.ndarray) -> dict[str, Any]:
    """``{"ap", "basic_precision", "n", "counted"}`` of ``probabilities`` (n, C) against
    ``grouped_codes`` (n, C): ``counted`` rows predict a ``y`` or ``n`` class; AP and
    BasicPrecision are None when none does. Ties go to the first class, then the input order.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    rows = np.arange(len(probs))
    predicted = probs.argmax(axis=1)
    order = np.argsort(-probs[rows, predicted], kind="stable")
    hit = np.asarray(grouped_codes)[rows, predicted][order]
    # Prefix i keeps the i+1 most confident rows, i.e. withholds the n-1-i least confident.
    correct, counted = np.cumsum(hit == "y"), np.cumsum(hit != "m")
    precision = correct[counted > 0] / counted[counted > 0]
    defined = precision.size > 0
    return {
        "ap": float(precision.mean()) if defined else None,
        "basic_precision": float(precision[-1]) if defined else None,
        "n": len(probs),
        "counted": int(counted[-1]) if defined else 0,
    }


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, per-class precision / recall / f1 / support (0.0 for a zero denominator) and
    the confusion matrix (``[i][j]``: rows of true class i predicted as j)."""
    truth, pred, k = np.asarray(y_true), np.asarray(y_pred), len(class_names)
    confusion = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        return np.divide(numerator, denominator, out=np.zeros(k), where=denominator != 0)

    precision, recall = ratio(hits, confusion.sum(axis=0)), ratio(hits, support)
    f1 = ratio(2 * precision * recall, precision + recall)
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for name, p, r, f, n in zip(class_names, precision, recall, f1, support, strict=True)
    }
    return {
        "accuracy": float(hits.sum() / len(truth)) if len(truth) else 0.0,
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
) -> dict[str, Any]:
    """The figures of one category's ``metrics.json``: on the regrouped ``classes`` of
    ``probabilities`` (n, G) and ``y_true``, and as ``official_*`` spread over the official
    classes of ``codes``. ValueError when a row's ``y_true`` is not a ``y`` group of its code.
    """
    names = [group["name"] for group in classes]
    probs = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(names))
    truth = np.asarray(y_true, dtype=np.int64)
    codes = list(codes)
    grouped = group_codes(codes, classes, category)
    mismatch = np.flatnonzero(grouped[np.arange(len(truth)), truth] != "y")
    if mismatch.size:
        row = int(mismatch[0])
        raise ValueError(
            f"{category}: {mismatch.size} row(s) whose true class is not a 'y' of their code, "
            f"first: row {row}, class {names[truth[row]]!r}, code {codes[row]!r} "
            f"(class order of the model and labels.json differ, or a dropped class?)"
        )
    report = classification_report(truth, probs.argmax(axis=1), names)
    scores = competition_scores(probs, grouped)
    official = competition_scores(
        expand_to_official(probs, classes, category),
        code_matrix(codes, len(official_classes(category))),
    )
    return {
        "accuracy": report["accuracy"],
        "basic_precision": scores["basic_precision"],
        "ap": scores["ap"],
        "official_basic_precision": official["basic_precision"],
        "official_ap": official["ap"],
        "counted": scores["counted"],
        "n_images": len(truth),
        "classes": names,
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
    }
