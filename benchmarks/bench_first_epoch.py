"""A training job's time from its start to its first epoch, before and after the split stage.

    .venv/bin/python benchmarks/bench_first_epoch.py [--images 20000] [--size 512]
        [--threads 2] [--work /tmp/bench-first-epoch] [--before 979567b]

One 5-class category tree (``collar_design_labels``) of generated garment JPEGs at real-photo
size (``synthetic_tree``: 500 drawn, the others copies of them; kept in ``--work`` for the next
run), then, each in a fresh process
of its own code, :func:`train_category` from its call to the line that starts the first epoch
(``phase head: epochs 0..``; the job is stopped there):

- ``before``: the code at ``--before`` (the last commit without the split stage, unpacked with
  ``git archive``): the job lists the tree, checks every image with Pillow, decodes every one
  with TensorFlow, then draws the split;
- ``after``: this checkout's: the job reads the split and skipped files that rule ``split`` wrote
  (its own time, paid once per category rather than once per job, is printed too).

Both train the same model (ResNet50V2, random weights, 224 px, frozen, ``cache_features:
false``: no feature job in between), so the difference is the split. The machine's load
average is printed: other processes skew the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CATEGORY = "collar_design_labels"  # 5 classes
SETTINGS = dict(backbone="ResNet50V2", weights=None, image_size=224, epochs=1, patience=1,
                fine_tune=False, cache_features=False)  # fmt: skip
FIRST_EPOCH = "phase head: epochs 0.."
UNIQUE = 500  # JPEGs drawn; the others are copies of them

# Run in a child process (python -c) with the code under test first on its path:
# argv = tree, out, threads, [split, skipped]; prints the seconds to the first epoch.
JOB = f"""
import sys, time
from pathlib import Path
from fashionai.training.run import train_category
from fashionai.training.settings import TrainSettings

class FirstEpoch(Exception):
    pass

def log(line):
    if line.startswith({FIRST_EPOCH!r}):
        raise FirstEpoch

files = {{}}
if len(sys.argv) > 4:
    files = {{"split": Path(sys.argv[4]), "skipped": Path(sys.argv[5])}}
started = time.monotonic()
try:
    train_category(Path(sys.argv[1]), Path(sys.argv[2]), TrainSettings(**{SETTINGS!r}),
                   threads=int(sys.argv[3]), log=log, **files)
except FirstEpoch:
    print(f"first epoch after {{time.monotonic() - started:.2f}} s")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=512, help="JPEG side, px")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-first-epoch"))
    parser.add_argument("--before", default="979567b", help="the code before the split stage")
    args = parser.parse_args()

    tree = make_tree(args.work, args.images, args.size)
    old = args.work / f"code-{args.before}"
    if not old.is_dir():
        unpack(args.before, old)
    print(f"{args.images} JPEGs of {args.size} px in {tree}; {args.threads} threads; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip

    split_seconds, files = split_stage(tree, args.work / "splits", args.threads)
    print(f"split stage (once per category): {split_seconds:.1f} s", flush=True)
    before = first_epoch(old, tree, args.work / "out-before", args.threads, [])
    print(f"before ({args.before}): {before:.1f} s to the first epoch", flush=True)
    after = first_epoch(REPO, tree, args.work / "out-after", args.threads, files)
    print(f"after: {after:.1f} s to the first epoch", flush=True)
    print(f"before / after: {before / after:.1f}x; load average {os.getloadavg()[0]:.2f}")


def make_tree(work: Path, images: int, size: int, unique: int = UNIQUE) -> Path:
    """The generated tree, made once per size and count (``labels.json``, written last, says
    it is complete): ``unique`` generated JPEGs, copied (new files, same bytes) up to
    ``images``, class by class, since drawing 20,000 takes an hour on a busy machine and
    decoding a copy costs what decoding its original does."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from synthetic_tree import write_tree

    tree = work / f"tree-{images}-{size}"
    if (tree / "labels.json").is_file():
        return tree
    started = time.monotonic()
    unique = min(unique, images)
    write_tree(tree, CATEGORY, unique, size, seed=3)
    labels = json.loads((tree / "labels.json").read_text())
    (tree / "labels.json").unlink()
    slugs = [entry["slug"] for entry in labels["classes"]]
    for i in range(unique, images):  # unique is a multiple of the classes: class i % 5
        folder = tree / slugs[i % len(slugs)]
        shutil.copyfile(folder / f"{i % unique:06d}.jpg", folder / f"{i:06d}.jpg")
    labels["counts"] = {slug: len(range(k, images, len(slugs))) for k, slug in enumerate(slugs)}
    (tree / "labels.json").write_text(json.dumps(labels, indent=1))
    print(f"generated {tree} in {time.monotonic() - started:.0f} s", flush=True)
    return tree


def unpack(revision: str, folder: Path) -> None:
    """The package as it was at ``revision``, into ``folder``."""
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "fashionai", "schemas"],
        check=True, capture_output=True,
    )  # fmt: skip
    archive_file = folder / "code.tar"
    archive_file.write_bytes(archive.stdout)
    with tarfile.open(archive_file) as tar:
        tar.extractall(folder, filter="data")
    archive_file.unlink()


def split_stage(tree: Path, folder: Path, threads: int) -> tuple[float, list[str]]:
    """Rule split's work on ``tree`` (this checkout's): its seconds and its two files."""
    from fashionai.splits import make_split, write_skipped, write_split
    from fashionai.training.settings import TrainSettings

    keys = TrainSettings()
    started = time.monotonic()
    split, skipped = make_split(
        tree, keys.validation_split, keys.test_split, keys.seed, threads, log=lambda line: None
    )
    write_split(folder / "split.csv", split)
    write_skipped(folder / "skipped.csv", skipped)
    return time.monotonic() - started, [str(folder / "split.csv"), str(folder / "skipped.csv")]


def first_epoch(code: Path, tree: Path, out: Path, threads: int, files: list[str]) -> float:
    """Seconds from ``train_category``'s call to its first epoch, in a fresh process of
    ``code``'s package."""
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", JOB, str(tree), str(out), str(threads), *files]
    # In the code's folder: python -c puts the working directory first on its path.
    result = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True)
    found = [line for line in result.stdout.splitlines() if line.startswith("first epoch after")]
    if not found:
        raise SystemExit(f"{code}: no first epoch\n{result.stderr[-3000:]}")
    return float(found[-1].split()[3])


if __name__ == "__main__":
    main()
