"""Command line: ``python -m fashionai predict --category C IMAGE...``.

Prints, for each image, the predicted label and the probability of every class, using the
trained model of the category (``results/models/<category>/`` by default).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fashionai.attributes import CATEGORIES


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fashionai", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="label images with a trained category model")
    predict.add_argument("--category", required=True, choices=CATEGORIES)
    predict.add_argument(
        "--models", type=Path, default=Path("results/models"),
        help="folder holding one trained model folder per category (default: results/models)",
    )  # fmt: skip
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("images", nargs="+", type=Path, help="image files (JPEG, PNG, ...)")
    commands.add_parser("devices", help="check that TensorFlow can train on this machine's GPUs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "devices":
        from fashionai.device_check import check_devices

        return check_devices()
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        print(f"error: no such image file: {', '.join(missing)}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from fashionai.inference import load_trained_model, predict_files

    try:
        trained = load_trained_model(args.models / args.category)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def warn(message: str) -> None:
        print(message, file=sys.stderr)

    probabilities = predict_files(trained, args.images, batch_size=args.batch_size, log=warn).plain
    names = trained.class_names
    status = 0
    for path, row in zip(args.images, probabilities, strict=True):
        if np.isnan(row).any():  # the image could not be decoded
            print(f"{path}\tERROR: cannot decode image")
            status = 1
            continue
        best = int(row.argmax())
        ranked = ", ".join(f"{names[i]}={row[i]:.3f}" for i in row.argsort()[::-1])
        print(f"{path}\t{names[best]}\t{row[best]:.3f}\t{ranked}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
