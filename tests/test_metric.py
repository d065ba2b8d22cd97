"""The competition metric, merged-group codes and the classification report, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fashionai.evaluation.metric import (
    classification_report,
    competition_scores,
    evaluate_predictions,
    group_codes,
)

NECK = "neck_design_labels"  # Invisible, Turtle Neck, Ruffle Semi-High Collar, Low Turtle Neck,
# Draped Collar
NECK_GROUPS = [  # config default: Low Turtle Neck merged into Turtle Neck
    {"index": 0, "slug": "invisible", "name": "Invisible", "members": ["Invisible"]},
    {
        "index": 1,
        "slug": "turtle_neck",
        "name": "Turtle Neck",
        "members": ["Turtle Neck", "Low Turtle Neck"],
    },
    {
        "index": 2,
        "slug": "ruffle_semi_high_collar",
        "name": "Ruffle Semi-High Collar",
        "members": ["Ruffle Semi-High Collar"],
    },
    {"index": 3, "slug": "draped_collar", "name": "Draped Collar", "members": ["Draped Collar"]},
]

# Four rows, two classes. Predicted class = argmax; the code letter at it decides the outcome.
#   row  probs        codes  pred  conf  outcome
#   A    [0.9, 0.1]   y n    0     0.9   correct
#   B    [0.2, 0.8]   n m    1     0.8   not counted (m)
#   C    [0.7, 0.3]   n y    0     0.7   wrong (n)
#   D    [0.4, 0.6]   n y    1     0.6   correct
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
CODES = np.array([list("yn"), list("nm"), list("ny"), list("ny")])


def test_hand_computed_ap_and_basic_precision():
    # Sorted by confidence: A, B, C, D. Kept prefixes (withholding 3, 2, 1, 0 rows):
    #   [A] 1/1 = 1;  [A,B] 1/1 = 1 (B not counted);  [A,B,C] 1/2;  [A,B,C,D] 2/3
    # AP = (1 + 1 + 1/2 + 2/3) / 4 = 19/24 = 0.791666...;  BasicPrecision = 2/3
    scores = competition_scores(PROBS, CODES)
    assert scores["ap"] == pytest.approx(19 / 24)
    assert scores["basic_precision"] == pytest.approx(2 / 3)
    assert scores["n"] == 4
    assert scores["counted"] == 3


def test_order_of_withholding_matters():
    # Make the wrong row C the most confident: [0.95, 0.05]. Order C, A, B, D:
    #   [C] 0/1;  [C,A] 1/2;  [C,A,B] 1/2;  all 2/3  -> AP = (0 + 1/2 + 1/2 + 2/3) / 4 = 5/12
    probs = PROBS.copy()
    probs[2] = [0.95, 0.05]
    scores = competition_scores(probs, CODES)
    assert scores["ap"] == pytest.approx(5 / 12)
    assert scores["basic_precision"] == pytest.approx(2 / 3)  # same rows, same total


def test_threshold_keeping_only_m_predictions_is_skipped():
    # B (an m prediction) most confident: [0.05, 0.95]. Order B, A, C, D:
    #   [B] 0/0 skipped;  [B,A] 1/1;  [B,A,C] 1/2;  all 2/3  -> AP = (1 + 1/2 + 2/3) / 3 = 13/18
    probs = PROBS.copy()
    probs[1] = [0.05, 0.95]
    assert competition_scores(probs, CODES)["ap"] == pytest.approx(13 / 18)


def test_ties_keep_input_order():
    # A and C both at 0.9: stable sort keeps A (correct) first -> [A] 1, [A,C] 1/2; AP = 3/4.
    # Swapping the rows puts C first -> [C] 0, [C,A] 1/2; AP = 1/4.
    probs = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert competition_scores(probs, np.array([list("yn"), list("ny")]))["ap"] == 0.75
    assert competition_scores(probs, np.array([list("ny"), list("yn")]))["ap"] == 0.25


def test_all_correct_gives_one():
    probs = np.array([[0.6, 0.4], [0.1, 0.9], [0.5, 0.5]])
    codes = np.array([list("yn"), list("my"), list("ym")])
    scores = competition_scores(probs, codes)
    assert scores["ap"] == 1.0
    assert scores["basic_precision"] == 1.0


def test_nothing_counted_is_undefined():
    scores = competition_scores(np.array([[0.2, 0.8]]), np.array([list("ym")]))
    assert scores["ap"] is None and scores["basic_precision"] is None
    assert scores["counted"] == 0
    empty = competition_scores(np.empty((0, 2)), np.empty((0, 2), dtype="<U1"))
    assert empty["n"] == 0 and empty["ap"] is None


def test_group_codes_y_wins_over_m_and_m_over_n():
    codes = [
        "nnnyn",  # Low Turtle Neck y          -> Turtle Neck group y
        "nmnyn",  # Turtle m, Low Turtle y     -> y wins over m
        "ynnmn",  # Low Turtle m only          -> Turtle Neck group m
        "nnynn",  # neither                    -> Turtle Neck group n
        "nnmnm",  # m elsewhere stays per group
    ]
    grouped = group_codes(codes, NECK_GROUPS, NECK)
    assert grouped.shape == (5, 4)
    assert ["".join(row) for row in grouped] == ["nynn", "nynn", "ymnn", "nnyn", "nnmm"]


def test_group_codes_dropped_class_has_no_group():
    groups = [g for g in NECK_GROUPS if g["name"] != "Draped Collar"]
    grouped = group_codes(["nnnny", "nmnnn"], groups, NECK)
    assert ["".join(row) for row in grouped] == ["nnn", "nmn"]  # first row: no y at all


def test_group_codes_rejects_bad_codes():
    with pytest.raises(ValueError, match="row 1 has 4 letters"):
        group_codes(["nnnyn", "nnyn"], NECK_GROUPS, NECK)
    with pytest.raises(ValueError, match="row 0 has a letter"):
        group_codes(["nnnyx"], NECK_GROUPS, NECK)


def test_classification_report_small_example():
    # truth 0 0 0 1 1 2, pred 0 0 1 1 2 2
    # class 0: tp 2, predicted 2, support 3 -> p 1, r 2/3, f1 0.8
    # class 1: tp 1, predicted 2, support 2 -> p 1/2, r 1/2, f1 1/2
    # class 2: tp 1, predicted 2, support 1 -> p 1/2, r 1, f1 2/3;  class 3 never seen -> 0
    report = classification_report(
        np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 2, 2]), list("abcd")
    )
    assert report["accuracy"] == pytest.approx(4 / 6)
    a, b, c, d = (report["per_class"][name] for name in "abcd")
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((1, 2 / 3, 0.8, 3))
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    assert d == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["confusion_matrix"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_evaluate_predictions_keys_and_values():
    codes = ["nnnyn", "ynnnn", "nnynm", "nnnny"]
    truth = [1, 0, 2, 3]
    probs = np.array(
        [
            [0.1, 0.7, 0.1, 0.1],  # Turtle Neck group, right (via Low Turtle Neck)
            [0.6, 0.2, 0.1, 0.1],  # Invisible, right
            [0.1, 0.1, 0.3, 0.5],  # Draped Collar: m -> not counted, wrong for accuracy
            [0.1, 0.1, 0.1, 0.7],  # Draped Collar, right
        ]
    )
    metrics = evaluate_predictions(probs, truth, codes, NECK_GROUPS, NECK)
    assert metrics["n_images"] == 4
    assert metrics["accuracy"] == 0.75
    assert metrics["basic_precision"] == 1.0 and metrics["ap"] == 1.0
    assert metrics["counted"] == 3
    assert metrics["classes"] == [g["name"] for g in NECK_GROUPS]
    assert set(metrics["per_class"]["Turtle Neck"]) == {"precision", "recall", "f1", "support"}
    assert np.array(metrics["confusion_matrix"]).sum() == 4
    # Official view: row 0's 0.7 is shared by Turtle Neck / Low Turtle Neck (0.35 each), the
    # argmax is Turtle Neck (first of the tie), an n of "nnnyn": wrong. Sorted by confidence:
    # D (0.7, y), B (0.6, y), C (0.5, m), A (0.35, n) -> P = 1, 1, 1, 2/3
    assert metrics["official_basic_precision"] == pytest.approx(2 / 3)
    assert metrics["official_ap"] == pytest.approx((3 + 2 / 3) / 4)


def test_evaluate_predictions_rejects_label_not_y_in_code():
    probs = np.full((1, 4), 0.25)
    with pytest.raises(ValueError, match="row 0, class 'Invisible'"):
        evaluate_predictions(probs, [0], ["nnnyn"], NECK_GROUPS, NECK)
