"""The original project's hand-run preprocessing, rewritten as the reference for benchmarks.

NOT code to ship: it validates nothing, moves (destroys) its input and crashes on the first bad
row. It exists so that ``bench_data_half.py`` can time our workflow against what the project
did before, on the same already-extracted archives:

1. read each annotation file (``Annotations/*.csv``) with ``pandas.read_csv(header=None)``;
2. walk the rows one by one with ``.loc``, find the position of the ``y`` in the code and map
   it to the class name of the attribute;
3. ``os.rename`` the image into ``<out>/<attribute>/<class name>/``.

Where the original left a choice open, the cheaper variant is taken, so the comparison
flatters the baseline rather than us: scalar ``df.loc[i, column]`` look-ups (not a row Series
per ``df.loc[i]``), ``str.find`` for the ``y``, and each label folder created once. A ``/`` in a
class name ("3/4 Length") becomes ``_`` so that it stays one folder.

Usage: ``python benchmarks/baseline_original.py OUT EXTRACTED [EXTRACTED ...]``; prints one JSON
line with the rows moved and the seconds taken (the annotation reads, the loop and the renames;
not the interpreter start or the pandas import).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fashionai.attributes import ATTRIBUTES  # noqa: E402  (the class table, nothing else)


def annotation_files(extracted: Path) -> list[Path]:
    """Every ``Annotations/*.csv`` below an extracted archive folder (the original's input)."""
    return sorted(p for p in extracted.rglob("Annotations/*.csv") if not p.name.startswith("._"))


def preprocess(files: list[Path], out: Path) -> int:
    """The original algorithm; returns the number of images moved."""
    made: set[str] = set()
    moved = 0
    for label_file in files:
        root = label_file.parent.parent  # image paths are relative to the Annotations' parent
        df = pd.read_csv(label_file, header=None)
        df.columns = ["image_id", "class", "label"]
        for i in range(len(df)):
            attribute = df.loc[i, "class"]
            code = df.loc[i, "label"]
            position = code.find("y")
            label = ATTRIBUTES[attribute][position].replace("/", "_")
            folder = os.path.join(out, attribute, label)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            image = df.loc[i, "image_id"]
            os.rename(os.path.join(root, image), os.path.join(folder, os.path.basename(image)))
            moved += 1
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="where the <attribute>/<label>/ folders go")
    parser.add_argument("extracted", type=Path, nargs="+", help="extracted archive folders")
    args = parser.parse_args(argv)
    files = [f for folder in args.extracted for f in annotation_files(folder)]
    if not files:
        parser.error("no Annotations/*.csv below the given folders")
    start = time.perf_counter()
    moved = preprocess(files, args.out)
    seconds = time.perf_counter() - start
    print(json.dumps({"files": len(files), "moved": moved, "seconds": round(seconds, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
