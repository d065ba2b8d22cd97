"""The competition's question file in, its submission file out.

The questions are ``Tests/question.csv`` inside an extracted test archive (under ``rank/`` in
the real ones): lines ``path,attribute,?`` whose image paths are relative to the folder holding
``Tests/``. The submission has no header and one line per question, in question order:
``path,attribute,p0;p1;...;pK-1`` with probabilities over the attribute's official classes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from fashionai.annotations import read_annotation_file
from fashionai.atomic import write_text
from fashionai.attributes import ATTRIBUTES, CATEGORIES
from fashionai.model_folder import check_members, read_summary
from fashionai.outputs import SUMMARY_FILE
from fashionai.prediction.classes import expand_to_official
from fashionai.prediction.predict import member_probabilities

QUESTION_LINE = "path,attribute,?"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_questions(question_csv: Path | str) -> pd.DataFrame:
    """The questions as columns ``image_path``, ``attribute``, ``code``, indexed by their line
    (from 1), read as a label file is; a first line may be a header (:func:`_is_header`).
    ValueError naming the file when it has no question, and the line of one without three
    fields, with an empty image path or an unknown attribute.
    """
    path = Path(question_csv)
    rows = read_annotation_file(path).set_index("line")
    header = not rows.empty and _is_header(*rows.iloc[0])
    questions = rows.iloc[1:] if header else rows
    if questions.empty:
        found = f"line {rows.index[0]} is a header and no line follows" if header else "it is empty"
        raise ValueError(f"{path}: no questions: {found}; expected lines {QUESTION_LINE}")
    for number, (image, attribute, code) in questions.iterrows():
        where, shown = f"{path} line {number}", ",".join((image, attribute, code)).rstrip(",")
        if not _three_fields(attribute, code):
            raise ValueError(
                f"{where}: expected 3 comma-separated fields, {QUESTION_LINE}: {shown!r}"
            )
        if not image:
            raise ValueError(f"{where}: empty image path in {shown!r}")
        if attribute not in ATTRIBUTES:
            raise ValueError(
                f"{where}: unknown attribute {attribute!r}; known: {', '.join(CATEGORIES)}"
            )
    return questions


def _three_fields(attribute: str, code: str) -> bool:
    """Whether a line split at its first two commas had three fields, no more and no fewer."""
    return bool(attribute and code) and "," not in code


def _is_header(image: str, attribute: str, code: str) -> bool:
    """Whether a first line is a header: three fields, none like a question's (an image path, a
    known attribute, a code of ``?`` or y/n/m), so a misspelled question is refused, not skipped."""
    question_like = (
        image.lower().endswith(IMAGE_SUFFIXES)
        or attribute in ATTRIBUTES
        or set(code) <= set("?ynm")
    )
    return bool(image) and _three_fields(attribute, code) and not question_like


def find_question_csv(extracted: Path | str) -> Path:
    """The one ``Tests/question.csv`` under an extracted test archive, at any depth, or
    ValueError."""
    root = Path(extracted)
    found = sorted(p for p in root.rglob("Tests/question.csv") if p.is_file())
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found) or "none"
        raise ValueError(f"{root}: expected exactly one Tests/question.csv, found {listed}")
    return found[0]


def image_files(
    image_paths: pd.Series, question_csv: Path | str
) -> tuple[list[Path | None], dict[int, str]]:
    """The question images' files (paths relative to the folder holding ``Tests/``, normalised)
    and, by position, why a path that leaves that folder has none (None in its place)."""
    root = Path(question_csv).resolve().parent.parent
    files: list[Path | None] = []
    problems: dict[int, str] = {}
    for position, relative in enumerate(image_paths):
        normal = posixpath.normpath(relative.replace("\\", "/"))
        if normal.startswith("/") or normal.split("/")[0] == "..":
            files.append(None)
            problems[position] = f"the image path leaves {root}"
        else:
            files.append(root.joinpath(*PurePosixPath(normal).parts))
    return files, problems


def write_submissions(
    extracted_test: Path | str,
    members: Mapping[str, Mapping[str, Path | str]],
    out_csv: Path | str,
    member_csvs: Mapping[str, Path | str] | None = None,
    *,
    batch_size: int = 64,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> int:
    """Answer every question with the mean of the members' probabilities (``member_csvs``: each
    member's own) and return the lines of ``out_csv``. ``members``: member -> attribute -> model
    folder. An attribute without a model is left out, with a warning; a question without an
    image gets uniform probabilities, the log naming its line and why.
    """
    question_csv = find_question_csv(extracted_test)
    questions = read_questions(question_csv)
    paths = questions["image_path"].to_numpy()
    listed, problems = image_files(questions["image_path"], question_csv)
    files = np.array(listed, dtype=object)
    log(f"{len(questions):,} questions in {question_csv}")
    answers: dict[str | None, np.ndarray] = {
        name: np.full(len(questions), None, dtype=object) for name in [None, *members]
    }  # None: the ensemble
    for attribute, rows in questions.groupby("attribute", sort=False).indices.items():
        dirs = {name: models[attribute] for name, models in members.items() if attribute in models}
        if len(dirs) < len(members):
            log(f"WARNING: {len(rows):,} questions of {attribute} left out: no model for it")
            continue
        if len(dirs) > 1:
            check_members(dirs)
        found = np.array([row not in problems for row in rows], dtype=bool)
        own, mean = member_probabilities(
            dirs, files[rows[found]], batch_size=batch_size, tta=tta, log=log
        )
        classes = read_summary(Path(next(iter(dirs.values()))) / SUMMARY_FILE)["classes"]
        probabilities = {None: mean.flipped_tta if tta else mean.plain, **own}
        for name, values in probabilities.items():
            placed = np.full((len(rows), values.shape[1]), np.nan)  # NaN: no prediction
            placed[found] = values
            official = expand_to_official(placed, classes, attribute)
            for row, p in zip(rows, official, strict=True):
                answer = ";".join(f"{value:.4f}" for value in p)
                answers[name][row] = f"{paths[row]},{attribute},{answer}"
        uniform = 0
        for row in rows:
            reason = problems.get(row) or mean.skipped.get(str(files[row]))
            if reason:
                uniform += 1
                line = f"{question_csv} line {questions.index[row]}"
                log(f"WARNING: {line} ({paths[row]}): {reason}; uniform probabilities")
        log(f"{attribute}: {len(rows):,} questions, {uniform} uniform")
    for name, path in [(None, out_csv), *(member_csvs or {}).items()]:
        written = [line for line in answers[name] if line is not None]
        write_text(path, "".join(f"{line}\n" for line in written))
        log(f"{len(written):,} lines -> {path}")
    return sum(line is not None for line in answers[None])
