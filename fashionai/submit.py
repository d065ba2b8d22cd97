"""The competition's submission file: every question row answered by its category's model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from fashionai.evaluation.submission import (
    expand_to_official,
    find_question_csv,
    format_submission_rows,
    image_files,
    read_questions,
)
from fashionai.inference import load_trained_model, predict_files


def write_submission(
    extracted_test: Path,
    model_dirs: Mapping[str, Path],
    out_csv: Path,
    *,
    batch_size: int = 64,
    log: Callable[[str], None] = print,
) -> int:
    """Write ``path,attribute,p0;...;pK-1`` for each question row, in question order.

    Probabilities are over the attribute's official classes: a merged class's probability is
    shared equally by its members, a dropped class gets 0. Rows of categories without a model
    are skipped with a warning; an image that cannot be decoded gets uniform probabilities over
    the kept classes, with a warning. Returns the number of lines written.
    """
    question_csv = find_question_csv(extracted_test)
    questions = read_questions(question_csv)
    files = np.array([str(f) for f in image_files(questions, question_csv)], dtype=object)
    log(f"{len(questions):,} question rows in {question_csv}")
    lines = np.full(len(questions), None, dtype=object)
    for attribute, rows in questions.groupby("attribute", sort=False).groups.items():
        if attribute not in model_dirs:
            log(f"WARNING: {len(rows):,} rows of {attribute} skipped: no model for it")
            continue
        positions = questions.index.get_indexer(rows)
        trained = load_trained_model(model_dirs[attribute])
        predictions = predict_files(trained, files[positions], batch_size=batch_size, log=log).plain
        failed = np.isnan(predictions).any(axis=1)
        predictions[failed] = 0.0  # expand_to_official makes an all-zero row uniform
        if failed.any():
            log(f"WARNING: {attribute}: {failed.sum()} undecodable images get uniform rows")
        official = expand_to_official(predictions, trained.classes, attribute)
        paths = questions["image_path"].to_numpy()[positions]
        lines[positions] = format_submission_rows(paths, attribute, official)
        log(f"{attribute}: {len(rows):,} rows predicted")
    written = [line for line in lines if line is not None]
    partial = out_csv.with_name(out_csv.name + ".partial")
    partial.write_text("".join(f"{line}\n" for line in written))
    partial.replace(out_csv)
    log(f"{len(written):,} lines -> {out_csv}")
    return len(written)
