"""The competition's question file in, its submission file out.

The questions are ``Tests/question.csv`` inside an extracted test archive (under ``rank/`` in
the real ones): lines ``path,attribute,?`` whose image paths are relative to the folder holding
``Tests/``. The submission has no header and one line per question, in question order:
``path,attribute,p0;p1;...;pK-1`` with probabilities over the attribute's official classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from fashionai.atomic import write_text
from fashionai.attributes import ATTRIBUTES, CATEGORIES
from fashionai.prediction.classes import expand_to_official
from fashionai.prediction.predict import TrainedModel, predict_files

QUESTION_COLUMNS = ("image_path", "attribute", "code")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_questions(question_csv: Path | str) -> pd.DataFrame:
    """The questions as columns ``image_path``, ``attribute``, ``code``, in file order.

    A first line that is neither an image path nor a known attribute is a header and skipped;
    a UTF-8 byte-order mark, CRLF line ends, spaces around fields and blank lines are
    tolerated. ValueError naming the file and line for a line without exactly three fields, an
    empty path or an unknown attribute.
    """
    path = Path(question_csv)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    rows = []
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
    return pd.DataFrame(rows, columns=list(QUESTION_COLUMNS), dtype=object)


def find_question_csv(extracted: Path | str) -> Path:
    """The one ``Tests/question.csv`` under an extracted test archive (at any depth).
    ValueError when there is none or more than one."""
    root = Path(extracted)
    found = sorted(p for p in root.rglob("Tests/question.csv") if p.is_file())
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found) or "none"
        raise ValueError(f"{root}: expected exactly one Tests/question.csv, found {listed}")
    return found[0]


def image_files(image_paths: pd.Series, question_csv: Path | str) -> list[Path]:
    """The question images' files: paths relative to the folder holding ``Tests/``.
    ValueError for a path that is absolute or would leave that folder."""
    root = Path(question_csv).resolve().parent.parent
    files = []
    for relative in image_paths:
        parts = PurePosixPath(relative.replace("\\", "/")).parts
        if parts[0] == "/" or ".." in parts:
            raise ValueError(f"question image path {relative!r} leaves {root}")
        files.append(root.joinpath(*parts))
    return files


def write_submission(
    extracted_test: Path | str,
    model_dirs: Mapping[str, Path | str],
    out_csv: Path | str,
    *,
    batch_size: int = 64,
    log: Callable[[str], None] = print,
) -> int:
    """Answer every question with its attribute's model (atomically); the lines written.

    Questions of an attribute without a model are left out, with a warning. The format needs a
    line for every question, so an image refused or undecodable gets uniform probabilities over
    the kept classes (:func:`~fashionai.prediction.classes.expand_to_official`), and the log
    names it with the reason.
    """
    question_csv = find_question_csv(extracted_test)
    questions = read_questions(question_csv)
    files = np.array(image_files(questions["image_path"], question_csv), dtype=object)
    log(f"{len(questions):,} questions in {question_csv}")
    lines = np.full(len(questions), None, dtype=object)
    for attribute, rows in questions.groupby("attribute", sort=False).indices.items():
        if attribute not in model_dirs:
            log(f"WARNING: {len(rows):,} questions of {attribute} left out: no model for it")
            continue
        trained = TrainedModel.load(model_dirs[attribute])
        predictions = predict_files(trained, files[rows], batch_size=batch_size, log=log)
        official = expand_to_official(predictions.plain, trained.classes, attribute)
        for row, probabilities in zip(rows, official, strict=True):
            values = ";".join(f"{p:.4f}" for p in probabilities)
            lines[row] = f"{questions.at[row, 'image_path']},{attribute},{values}"
        log(f"{attribute}: {len(rows):,} questions, {len(predictions.skipped)} uniform")
    written = [line for line in lines if line is not None]
    write_text(out_csv, "".join(f"{line}\n" for line in written))
    log(f"{len(written):,} lines -> {out_csv}")
    return len(written)
