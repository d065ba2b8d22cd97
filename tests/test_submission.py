"""Regrouped -> official probabilities, submission lines, question.csv and the summary table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fashionai.evaluation.submission import (
    expand_to_official,
    find_question_csv,
    format_submission_rows,
    image_files,
    read_questions,
    summary_table,
    to_markdown,
)

SLEEVE = "sleeve_length_labels"
# Official order: Invisible, Sleeveless, Cup Sleeves, Short Sleeves, Elbow Sleeves, 3/4 Sleeves,
# Wrist Length, Long Sleeves, Extra Long Sleeves. Config default: Invisible dropped, merges below.
SLEEVE_GROUPS = [
    {"index": 0, "slug": "sleeveless", "name": "Sleeveless", "members": ["Sleeveless"]},
    {
        "index": 1,
        "slug": "short_sleeves",
        "name": "Short Sleeves",
        "members": ["Short Sleeves", "Cup Sleeves"],
    },
    {
        "index": 2,
        "slug": "elbow_sleeves",
        "name": "Elbow Sleeves",
        "members": ["Elbow Sleeves", "3/4 Sleeves"],
    },
    {
        "index": 3,
        "slug": "long_sleeves",
        "name": "Long Sleeves",
        "members": ["Long Sleeves", "Wrist Length", "Extra Long Sleeves"],
    },
]


def test_expand_shares_equally_and_drops():
    probs = np.array([[0.1, 0.2, 0.4, 0.3], [0.0, 0.0, 0.0, 1.0]])
    official = expand_to_official(probs, SLEEVE_GROUPS, SLEEVE)
    assert official.shape == (2, 9)
    np.testing.assert_allclose(official.sum(axis=1), 1.0)
    np.testing.assert_allclose(
        official[0], [0.0, 0.1, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.1]
    )  # Invisible dropped; pairs get halves, the triple thirds
    np.testing.assert_allclose(official[1], [0, 0, 0, 0, 0, 0, 1 / 3, 1 / 3, 1 / 3])


def test_expand_renormalises_and_handles_zero_rows():
    official = expand_to_official(np.array([[2.0, 0, 0, 0], [0, 0, 0, 0]]), SLEEVE_GROUPS, SLEEVE)
    np.testing.assert_allclose(official[0], [0, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(official[1], [0] + [1 / 8] * 8)  # uniform over kept classes


def test_expand_target_keeps_argmax():
    official = expand_to_official(
        np.array([[0.1, 0.2, 0.2, 0.5]]), SLEEVE_GROUPS, SLEEVE, share="target"
    )
    np.testing.assert_allclose(official[0], [0, 0.1, 0, 0.2, 0.2, 0, 0, 0.5, 0])


def test_expand_rejects_wrong_width():
    with pytest.raises(ValueError, match="one column per regrouped class"):
        expand_to_official(np.ones((1, 3)) / 3, SLEEVE_GROUPS, SLEEVE)


def test_format_submission_rows():
    probs = np.array([[0.5, 0.25, 0.25, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0, 0]])
    lines = format_submission_rows(
        ["Images/a/1.jpg", "Images/a/2.jpg"], "collar_design_labels", probs
    )
    assert lines == [
        "Images/a/1.jpg,collar_design_labels,0.5000;0.2500;0.2500;0.0000;0.0000",
        "Images/a/2.jpg,collar_design_labels,0.3333;0.3333;0.3333;0.0000;0.0000",
    ]
    for line in lines:
        path, attribute, values = line.split(",")
        assert sum(map(float, values.split(";"))) == pytest.approx(1.0, abs=1e-3)


def test_format_submission_rows_checks_input():
    with pytest.raises(ValueError, match="row 1"):
        format_submission_rows(
            ["a", "b"], "collar_design_labels", np.array([[1, 0, 0, 0, 0]] * 2) * [[1], [0.5]]
        )
    with pytest.raises(ValueError, match="expected"):
        format_submission_rows(["a"], "collar_design_labels", np.ones((1, 4)) / 4)
    with pytest.raises(ValueError, match="unknown attribute"):
        format_submission_rows(["a"], "hat_labels", np.ones((1, 4)) / 4)


def test_read_questions_bom_crlf(tmp_path):
    tests = tmp_path / "rank" / "Tests"
    tests.mkdir(parents=True)
    question = tests / "question.csv"
    question.write_bytes(
        b"\xef\xbb\xbfImages/collar_design_labels/aa.jpg,collar_design_labels,?\r\n"
        b"Images/skirt_length_labels/bb.jpg,skirt_length_labels,?\r\n\r\n"
    )
    frame = read_questions(question)
    assert list(frame.columns) == ["image_path", "attribute", "code"]
    assert frame["image_path"].tolist() == [
        "Images/collar_design_labels/aa.jpg",
        "Images/skirt_length_labels/bb.jpg",
    ]
    assert frame["attribute"].tolist() == ["collar_design_labels", "skirt_length_labels"]
    assert frame["code"].tolist() == ["?", "?"]
    assert find_question_csv(tmp_path) == question
    assert (
        image_files(frame, question)[1]
        == (tmp_path / "rank" / "Images" / "skirt_length_labels" / "bb.jpg").resolve()
    )


def test_read_questions_skips_a_header(tmp_path):
    question = tmp_path / "question.csv"
    question.write_text("image_path,attribute,code\nImages/x/a.jpg,neck_design_labels,?\n")
    assert read_questions(question)["attribute"].tolist() == ["neck_design_labels"]


def test_read_questions_unknown_attribute_names_the_line(tmp_path):
    question = tmp_path / "question.csv"
    question.write_text(
        "Images/x/a.jpg,neck_design_labels,?\r\nImages/x/b.jpg,hat_design_labels,?\r\n"
    )
    with pytest.raises(ValueError, match=r"question.csv line 2: unknown attribute 'hat_design"):
        read_questions(question)
    question.write_text("Images/x/a.jpg,neck_design_labels\n")
    with pytest.raises(ValueError, match="line 1: expected 3 comma-separated fields"):
        read_questions(question)


def test_image_files_refuses_escaping_paths(tmp_path):
    frame = pd.DataFrame({"image_path": ["../../etc/passwd"]})
    with pytest.raises(ValueError, match="leaves"):
        image_files(frame, tmp_path / "Tests" / "question.csv")


def test_summary_table_and_markdown():
    metrics = {
        "coat_length_labels": {"n_images": 10, "accuracy": 0.8, "basic_precision": 0.7, "ap": 0.9},
        "skirt_length_labels": {
            "n_images": 30,
            "accuracy": 0.6,
            "basic_precision": 0.5,
            "ap": None,
        },
    }
    table = summary_table(metrics)
    assert table["category"].tolist() == ["coat_length_labels", "skirt_length_labels", "mean"]
    mean = table.iloc[-1]
    assert mean["n_images"] == 40
    assert mean["accuracy"] == pytest.approx(0.7)
    assert mean["ap"] == pytest.approx(0.9)  # the missing AP is skipped
    assert to_markdown(table).splitlines() == [
        "| category | n_images | accuracy | basic_precision | ap |",
        "|---|---:|---:|---:|---:|",
        "| coat_length_labels | 10 | 0.8000 | 0.7000 | 0.9000 |",
        "| skirt_length_labels | 30 | 0.6000 | 0.5000 | n/a |",
        "| mean | 40 | 0.7000 | 0.6000 | 0.9000 |",
    ]
