"""Questions in, submission out: each line answers its question with its attribute's model;
regrouped -> official probabilities; question.csv parsing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fashionai.images import check_image
from fashionai.prediction.classes import expand_to_official
from fashionai.prediction.submission import (
    find_question_csv,
    image_files,
    read_questions,
    write_submissions,
)
from tests.prediction_helpers import (
    SLEEVE,
    SLEEVE_CLASSES,
    expected,
    identity_classes,
    save_model,
    write_image,
    write_pixel_bomb,
)
from tests.training_helpers import limit_threads

COLLAR = "collar_design_labels"


def test_expand_shares_equally_and_drops():
    probs = np.array([[0.1, 0.2, 0.4, 0.3], [0.0, 0.0, 0.0, 1.0]])
    official = expand_to_official(probs, SLEEVE_CLASSES, SLEEVE)
    # Official order: Invisible (dropped), Sleeveless, Cup, Short, Elbow, 3/4, Wrist, Long, Extra
    np.testing.assert_allclose(official[0], [0, 0.1, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(official[1], [0, 0, 0, 0, 0, 0, 1 / 3, 1 / 3, 1 / 3])


def test_expand_gives_a_row_without_prediction_uniform_kept_classes():
    official = expand_to_official(np.full((1, 4), np.nan), SLEEVE_CLASSES, SLEEVE)
    np.testing.assert_allclose(official[0], [0] + [1 / 8] * 8)


def test_expand_rejects_wrong_width_and_unknown_members():
    with pytest.raises(ValueError, match=r"shape \(1, 3\) for 4 classes"):
        expand_to_official(np.ones((1, 3)) / 3, SLEEVE_CLASSES, SLEEVE)
    classes = [{**SLEEVE_CLASSES[0], "members": ["Sleeveless", "Hat"]}, *SLEEVE_CLASSES[1:]]
    with pytest.raises(ValueError, match="member 'Hat' of class 'Sleeveless' is not an official"):
        expand_to_official(np.ones((1, 4)) / 4, classes, SLEEVE)


def test_each_line_answers_its_question(tmp_path):
    """Interleaved questions of two modelled attributes, one without a model and a pixel bomb:
    each line holds its own image's probabilities, in question order, over official classes."""
    limit_threads()
    models = {
        COLLAR: save_model(tmp_path / "models" / COLLAR, COLLAR, identity_classes(COLLAR), 1),
        SLEEVE: save_model(tmp_path / "models" / SLEEVE, SLEEVE, SLEEVE_CLASSES, 2),
    }
    rank = tmp_path / "extracted" / "rank"
    questions = [  # (image, attribute, seed of its pixels or None for the bomb)
        ("Images/collar_design_labels/a.png", COLLAR, 10),
        ("Images/sleeve_length_labels/b.png", SLEEVE, 11),
        ("Images/neck_design_labels/c.png", "neck_design_labels", 12),
        ("Images/collar_design_labels/d.png", COLLAR, 13),
        ("Images/sleeve_length_labels/bomb.png", SLEEVE, None),
        ("Images/sleeve_length_labels/e.png", SLEEVE, 14),
    ]
    pixels = {}
    for image, _, seed in questions:
        if seed is None:
            write_pixel_bomb(rank / image)
        else:
            pixels[image] = write_image(rank / image, seed)
    (rank / "Tests").mkdir()
    (rank / "Tests/question.csv").write_text("".join(f"{i},{a},?\n" for i, a, _ in questions))
    messages: list[str] = []
    out = tmp_path / "submission.csv"
    assert (
        write_submissions(tmp_path / "extracted", {"model": models}, out, log=messages.append) == 5
    )

    lines = [line.split(",") for line in out.read_text().splitlines()]
    answered = [(i, a) for i, a, _ in questions if a != "neck_design_labels"]
    assert [(image, attribute) for image, attribute, _ in lines] == answered
    got = {image: [float(p) for p in values.split(";")] for image, _, values in lines}
    for image, attribute, seed in questions:
        if attribute == COLLAR:
            want = expected(models[COLLAR], pixels[image])[0]
        elif attribute == SLEEVE and seed is not None:
            p = expected(models[SLEEVE], pixels[image])[0]  # Sleeveless, Short, Elbow, Long
            want = [0, p[0], p[1] / 2, p[1] / 2, p[2] / 2, p[2] / 2, p[3] / 3, p[3] / 3, p[3] / 3]
        elif attribute == SLEEVE:
            want = [0] + [1 / 8] * 8  # refused: uniform over the kept classes
        else:
            continue
        np.testing.assert_allclose(got[image], want, atol=6e-5)
    bomb = rank / "Images/sleeve_length_labels/bomb.png"
    assert f"WARNING: no prediction for {bomb}: {check_image(bomb)}" in messages
    assert "WARNING: 1 questions of neck_design_labels left out: no model for it" in messages


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
    assert frame.index.tolist() == [1, 2]  # the lines of the file
    assert (
        image_files(frame["image_path"], question)[0][1]
        == (tmp_path / "rank" / "Images" / "skirt_length_labels" / "bb.jpg").resolve()
    )


def test_read_questions_skips_a_header(tmp_path):
    question = tmp_path / "question.csv"
    question.write_text("image_path,attribute,code\nImages/x/a.jpg,neck_design_labels,?\n")
    frame = read_questions(question)
    assert frame["attribute"].tolist() == ["neck_design_labels"]
    assert frame.index.tolist() == [2]


QUESTION = "Images/x/a.jpg,neck_design_labels,?"
SHAPE = "expected 3 comma-separated fields, path,attribute,?: "
# case: (the question file's bytes, the message after the file's path)
REFUSED_QUESTIONS = {
    "empty": (b"", ": no questions: it is empty; expected lines path,attribute,?"),
    "blank lines": (b"\r\n \n", ": no questions: it is empty"),
    "header alone": (b"image,attribute,code\n", ": no questions: line 1 is a header and no line"),
    "semicolons": (
        b"Images/x/a.jpg;neck_design_labels;?\nImages/x/b.jpg;neck_design_labels;?\n",
        f" line 1: {SHAPE}'Images/x/a.jpg;neck_design_labels;?'",
    ),
    "two fields": (b"Images/x/a.jpg,neck_design_labels\n", f" line 1: {SHAPE}"),
    "four fields": (f"{QUESTION},x\n".encode(), f" line 1: {SHAPE}'{QUESTION},x'"),
    "misspelled attribute first": (
        f"Images/x/a,neck_desing_labels,?\n{QUESTION}\n".encode(),
        " line 1: unknown attribute 'neck_desing_labels'; known: coat_length_labels, ",
    ),
    "unknown attribute": (
        f"{QUESTION}\r\nImages/x/b.jpg,hat_design_labels,?\r\n".encode(),
        " line 2: unknown attribute 'hat_design_labels'",
    ),
    "header after the first line": (
        f"{QUESTION}\nimage_path,attribute,code\n".encode(),
        " line 2: unknown attribute 'attribute'",
    ),
    "empty image path": (
        f"{QUESTION}\n ,neck_design_labels,?\n".encode(),
        " line 2: empty image path in ',neck_design_labels,?'",
    ),
    "not UTF-8": (b"Images/x/\xff.jpg,neck_design_labels,?\n", ": line 1 is not valid UTF-8"),
}


@pytest.mark.parametrize(("data", "message"), REFUSED_QUESTIONS.values(), ids=REFUSED_QUESTIONS)
def test_read_questions_refuses_a_bad_file_naming_it_and_the_line(tmp_path, data, message):
    """Never an empty or short submission: only a first line may be a header, and only one
    that is no question (a misspelled attribute is reported, not skipped)."""
    question = tmp_path / "question.csv"
    question.write_bytes(data)
    with pytest.raises(ValueError) as error:
        read_questions(question)
    assert str(error.value).startswith(f"{question}{message}"), error.value


def test_find_question_csv_wants_exactly_one(tmp_path):
    with pytest.raises(ValueError, match="expected exactly one Tests/question.csv, found none"):
        find_question_csv(tmp_path)


def test_image_files_normalises_paths_and_names_those_leaving_the_folder(tmp_path):
    paths = [
        "a/../../etc/passwd",
        "Images/x/../y/a.jpg",
        "/etc/passwd",
        "Images\\x\\b.jpg",
        "..x/c.jpg",
    ]
    files, problems = image_files(pd.Series(paths), tmp_path / "Tests" / "question.csv")
    assert files == [
        None,
        tmp_path / "Images/y/a.jpg",
        None,
        tmp_path / "Images/x/b.jpg",
        tmp_path / "..x/c.jpg",
    ]
    assert problems == {
        0: f"the image path leaves {tmp_path}",
        2: f"the image path leaves {tmp_path}",
    }


def test_an_odd_question_costs_only_its_own_line(tmp_path):
    """A path through ``..`` that stays inside is answered; a path leaving the folder (even to an
    image there) or naming a missing image gets uniform probabilities and a warning naming its
    line; an attribute whose every path leaves is answered uniformly too."""
    limit_threads()
    models = {
        COLLAR: save_model(tmp_path / "models" / COLLAR, COLLAR, identity_classes(COLLAR), 1),
        SLEEVE: save_model(tmp_path / "models" / SLEEVE, SLEEVE, SLEEVE_CLASSES, 2),
    }
    rank = tmp_path / "extracted" / "rank"
    pixels = {
        "a": write_image(rank / "Images/collar_design_labels/a.png", 10),
        "b": write_image(rank / "Images/collar_design_labels/b.png", 11),
    }
    write_image(tmp_path / "outside.png", 12)
    questions = [  # line 1 is a header
        ("Images/pant_length_labels/../collar_design_labels/a.png", COLLAR),
        ("../../outside.png", COLLAR),
        ("Images/collar_design_labels/missing.png", COLLAR),
        ("/outside.png", COLLAR),
        ("Images/../../rank/../outside.png", SLEEVE),
        ("Images/collar_design_labels/b.png", COLLAR),
    ]
    (rank / "Tests").mkdir()
    question_csv = rank / "Tests/question.csv"
    question_csv.write_text(
        "image_path,attribute,code\n" + "".join(f"{i},{a},?\n" for i, a in questions)
    )
    messages: list[str] = []
    out = tmp_path / "submission.csv"
    assert (
        write_submissions(tmp_path / "extracted", {"model": models}, out, log=messages.append) == 6
    )

    lines = [line.split(",") for line in out.read_text().splitlines()]
    assert [(image, attribute) for image, attribute, _ in lines] == questions
    got = [[float(p) for p in values.split(";")] for _, _, values in lines]
    uniform = [1 / 5] * 5
    np.testing.assert_allclose(got[0], expected(models[COLLAR], pixels["a"])[0], atol=6e-5)
    for row in (1, 2, 3):
        np.testing.assert_allclose(got[row], uniform, atol=6e-5)
    np.testing.assert_allclose(got[4], [0] + [1 / 8] * 8, atol=6e-5)
    np.testing.assert_allclose(got[5], expected(models[COLLAR], pixels["b"])[0], atol=6e-5)
    leaves = f"the image path leaves {rank.resolve()}; uniform probabilities"
    missing = rank.resolve() / "Images/collar_design_labels/missing.png"
    for line, reason in [
        (3, leaves),
        (4, f"{check_image(missing)}; uniform probabilities"),
        (5, leaves),
        (6, leaves),
    ]:
        want = f"WARNING: {question_csv} line {line} ({questions[line - 2][0]}): {reason}"
        assert want in messages, messages
    assert f"{COLLAR}: 5 questions, 3 uniform" in messages
    assert f"{SLEEVE}: 1 questions, 1 uniform" in messages
