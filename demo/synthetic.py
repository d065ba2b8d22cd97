"""A synthetic FashionAI Attributes dataset in the layout of the real archives.

The real data is never on our machines, so every demo and test runs on what this package
writes: the round-1 tar, the warm-up tar (skirt only), the round-2 zip and a test-question tar,
with the member names, annotation format and quirks described in ``fashionai-format.md``.
:func:`generate_dataset` plans the rows (:mod:`demo.planning`), draws each image
(:mod:`demo.drawing`) and writes the archives (:mod:`demo.writing`).

``difficulty`` (0 to 1) makes the classes less separable, for comparing techniques on a set
where one small model stays well below perfect (see :mod:`demo.drawing`); difficulty 0 is the
easy set, byte for byte the same for the same seed.

With ``faults=True`` a few annotation rows are broken in the ways the pipeline must reject, and
``manifest.csv`` says for every annotation row what the pipeline should do with it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from demo.archive_names import ARCHIVE_NAMES
from demo.drawing import check_difficulty, nearest_classes, render_image
from demo.planning import TRAIN_ARCHIVES, plan_rows, question_rows
from demo.writing import (
    ANNOTATION_FILES,
    ARCHIVE_ROOTS,
    MANIFEST_COLUMNS,
    image_bytes,
    write_answers,
    write_manifest,
    write_questions,
    write_training_archive,
)

__all__ = [
    "ANNOTATION_FILES",
    "ARCHIVE_NAMES",
    "ARCHIVE_ROOTS",
    "MANIFEST_COLUMNS",
    "generate_dataset",
    "main",
    "nearest_classes",
    "render_image",
]


def generate_dataset(
    out_dir: Path,
    *,
    images_per_class: int = 8,
    image_size: int = 64,
    seed: int = 117,
    faults: bool = True,
    questions_per_attribute: int = 10,
    difficulty: float = 0.0,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Write the four archives, ``manifest.csv`` and ``question_answers.csv`` into ``out_dir``.

    Every class of every attribute gets ``images_per_class`` regular images, spread over the
    training archives as :func:`demo.planning.plan_rows` says; with ``faults`` a few faulty or
    odd rows are added. ``difficulty`` (0 to 1) makes the classes harder to tell apart.

    Returns the manifest: one row per annotation row of the three training archives, with the
    columns of ``MANIFEST_COLUMNS``. The used images per attribute and class are
    ``manifest[manifest.expected == "used"].groupby(["attribute", "class_index"]).size()``.
    The test questions are not in it; their true codes are in ``question_answers.csv``
    (label.csv format, paths relative to ``rank/``).
    """
    if images_per_class < 1:
        raise ValueError(f"images_per_class must be at least 1, not {images_per_class}")
    check_difficulty(difficulty)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    rng = np.random.default_rng(seed)
    plan = plan_rows(seed, images_per_class, faults, difficulty, rng)
    encode = partial(image_bytes, seed=seed, size=image_size, difficulty=difficulty)
    n_rows = sum(map(len, plan.values()))
    log(
        f"synthetic FashionAI data: {n_rows} annotation rows, {image_size} px, seed {seed}, "
        f"difficulty {difficulty}, faults {'on' if faults else 'off'} -> {out_dir}"
    )
    for archive in TRAIN_ARCHIVES:
        path = out_dir / ARCHIVE_NAMES[archive]
        log(f"writing {path.name}: {len(plan[archive])} annotation rows")
        write_training_archive(path, archive, plan[archive], encode, log)

    questions = question_rows(seed, questions_per_attribute, difficulty, rng)
    path = out_dir / ARCHIVE_NAMES["questions"]
    log(f"writing {path.name}: {len(questions)} questions")
    write_questions(path, questions, encode, log)
    write_answers(out_dir / "question_answers.csv", questions)

    manifest = write_manifest(out_dir / "manifest.csv", plan)
    counts = manifest["expected"].value_counts()
    summary = ", ".join(f"{reason} {count}" for reason, count in counts.items())
    log(f"manifest: {summary}")
    log(f"done in {time.monotonic() - start:.1f} s")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m demo.synthetic OUT_DIR [options]``; an option left out takes
    :func:`generate_dataset`'s default."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], argument_default=argparse.SUPPRESS
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--images-per-class", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--questions-per-attribute", type=int)
    parser.add_argument("--difficulty", type=float)
    parser.add_argument("--no-faults", dest="faults", action="store_false")
    generate_dataset(**vars(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
