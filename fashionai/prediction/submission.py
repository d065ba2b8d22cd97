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

from fashionai.atomic import write_text
from fashionai.attributes import ATTRIBUTES, CATEGORIES
from fashionai.evaluation.ensemble import check_members, read_summary
from fashionai.prediction.classes import expand_to_official
from fashionai.prediction.predict import member_probabilities

QUESTION_COLUMNS = ("image_path", "attribute", "code")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_questions(question_csv: Path | str) -> pd.DataFrame:
    """The questions as columns ``image_path``, ``attribute``, ``code``, indexed by their line
    (from 1). A first line that is neither an image path nor a known attribute is a header; a
    BOM, CRLF, spaces around fields and blank lines are tolerated. ValueError naming the file
    and line for a line without exactly three fields, an empty path or an unknown attribute.
    """
    path = Path(question_csv)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    rows, numbers = [], []
    for position, (number, line) in enumerate(lines):
        fields = [field.strip() for field in line.split(",")]
        image, attribute = fields[0], (fields + [""])[1]
        header = attribute not in ATTRIBUTES and not image.lower().endswith(IMAGE_SUFFIXES)
        if position == 0 and header:
            continue
        where = f"{path} line {number}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 3 comma-separated fields, got {line!r}")
        if not image:
            raise ValueError(f"{where}: empty image path in {line!r}")
        if attribute not in ATTRIBUTES:
            raise ValueError(
                f"{where}: unknown attribute {attribute!r}; known: {', '.join(CATEGORIES)}"
            )
        rows.append(fields)
        numbers.append(number)
    index = pd.Index(numbers, name="line", dtype=int)
    return pd.DataFrame(rows, columns=list(QUESTION_COLUMNS), index=index, dtype=object)


def find_question_csv(extracted: Path | str) -> Path:
    """The one ``Tests/question.csv`` under an extracted test archive (at any depth).
    ValueError when there is none or more than one."""
    root = Path(extracted)
    found = sorted(p for p in root.rglob("Tests/question.csv") if p.is_file())
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found) or "none"
        raise ValueError(f"{root}: expected exactly one Tests/question.csv, found {listed}")
    return found[0]


def image_files(
    image_paths: pd.Series, question_csv: Path | str
) -> tuple[list[Path | None], dict[int, str]]:
    """The question images' files, paths relative to the folder holding ``Tests/`` and
    normalised (``a/../b`` is ``b``), in order; and, by position, why a path that is absolute
    or leaves that folder has no file (None in its place)."""
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
    """Answer every question (atomically) with the mean of the members' probabilities (each
    ``member_csvs[member]`` gets that member's own) and return the lines of ``out_csv``.

    ``members`` maps each member (one for a single model) to its model folder per attribute.
    Questions of an attribute without a model are left out, with a warning. A question whose
    image path leaves the folder or whose image is refused or undecodable gets uniform
    probabilities over the kept classes, and the log names its line with the reason.
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
        classes = read_summary(next(iter(dirs.values())))["classes"]
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
