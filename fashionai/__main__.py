r"""Command line: ``python -m fashionai predict --category C IMAGE...`` and ``devices``.

``predict`` prints a line per image: its path, the predicted label, its probability and every
class's probability, using the trained model of the category (the default experiment's,
``results/experiments/default/models/<category>/``, unless ``--models`` names another folder).
When the evaluation beside that folder (``<experiment>/eval/<category>/metrics.json``) is the
out-of-fold one of the experiment's fold members (``train.folds``), it refuses, naming their
folders: the workflow trains them instead, so a model there is not the one evaluated.
An image that is refused (missing, a folder, not an image, more pixels than the limit) or cannot
be decoded gets a line with the reason, and the exit status is 1. The fields of a line are
separated by tabs; so that each image stays one line of the same fields, a backslash, tab,
newline or carriage return in a path or reason is printed as \\, \t, \n or \r.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fashionai.attributes import CATEGORIES
from fashionai.joblog import without_notices
from fashionai.outputs import (
    DEFAULT_EXPERIMENT,
    EVAL_DIR,
    METRICS_FILE,
    MODEL_FILE,
    MODELS_DIR,
    WEIGHTS_FILE,
    experiment_root,
    missing_model_files,
    model_file,
)
from fashionai.training.device_check import check_devices  # imports TensorFlow when it runs

MODELS = f"{experiment_root(DEFAULT_EXPERIMENT)}/{MODELS_DIR}"  # the default experiment's models

# A path or reason as one tab-free field of one line (the module docstring says how).
ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def positive_int(value: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of 1 or more")
    return number


def models_hint(folders: Sequence[Path]) -> str:
    """The end of an error naming folders that ``--models`` can name instead."""
    return f"; --models can name one of: {', '.join(map(str, folders))}" if folders else ""


def folded(models: Path, category: str) -> str:
    """An error when the evaluation beside ``models`` is the out-of-fold one of its
    experiment's fold members (its ``folds``), naming their models folders; else empty."""
    metrics = models.parent / EVAL_DIR / category / METRICS_FILE
    if not metrics.is_file() or not (folds := json.loads(metrics.read_bytes()).get("folds")):
        return ""
    return (
        f"{metrics} evaluates the fold members of {models.parent.name} (train.folds), not "
        f"{models / category}, which the workflow no longer trains"
        + models_hint([models.parent.parent / fold / models.name for fold in folds])
    )


def untrained(models: Path, category: str) -> str:
    """An error naming the first file a prediction needs that ``models``' folder of
    ``category`` lacks, the command that trains it and the experiments that hold one; else
    empty."""
    if not (missing := missing_model_files(models / category)):
        return ""
    target = model_file(WEIGHTS_FILE, category, models.parent.name)
    pattern = f"*/{MODELS_DIR}/{category}/{MODEL_FILE}"
    found = sorted(Path(experiment_root("*")).parent.glob(pattern))
    return (
        f"{missing[0]} does not exist: train the category first, with it in categories: of "
        f"the configuration (snakemake --cores 8 --resources gpu=1 {target})"
        + models_hint([path.parent.parent for path in found])
    )


def predict(args: argparse.Namespace) -> int:
    # Both checks before TensorFlow starts (seconds), so that a mistake is told at once.
    if error := folded(args.models, args.category) or untrained(args.models, args.category):
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fashionai.prediction.predict import TrainedModel, predict_files

    try:
        trained = TrainedModel.load(args.models / args.category)
    except ValueError as error:  # the model is there but disagrees with its classes
        print(f"error: {error}", file=sys.stderr)
        return 2
    predictions = predict_files(
        trained, args.images, batch_size=args.batch_size, log=lambda _: None
    )
    names = [group["name"] for group in trained.classes]
    for path, row in zip(map(str, args.images), predictions.plain, strict=True):
        field = path.translate(ESCAPES)
        if path in predictions.skipped:
            print(f"{field}\tERROR: {predictions.skipped[path].translate(ESCAPES)}")
            continue
        ranked = ", ".join(f"{names[i]}={row[i]:.3f}" for i in row.argsort()[::-1])
        print(f"{field}\t{names[row.argmax()]}\t{row.max():.3f}\t{ranked}")
    return 1 if predictions.skipped else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; each subcommand sets ``run``, the function that carries it out."""
    parser = argparse.ArgumentParser(prog="python -m fashionai", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "predict", help="label images with a trained category model", description=__doc__
    )
    command.add_argument("--category", required=True, choices=CATEGORIES)
    command.add_argument(
        "--models",
        type=Path,
        default=Path(MODELS),
        help=f"folder holding one trained model folder per category (default: {MODELS})",
    )
    command.add_argument(
        "--batch-size", type=positive_int, default=32, help="images per batch (default: 32)"
    )
    command.add_argument("images", nargs="+", type=Path, help="image files (JPEG, PNG, ...)")
    command.set_defaults(run=predict)
    devices = commands.add_parser(
        "devices", help="check that TensorFlow can train on this machine's GPUs"
    )
    devices.set_defaults(run=lambda _args: check_devices())
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with without_notices([2], 2):  # TensorFlow's start-up notices
        return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
