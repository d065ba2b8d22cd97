"""Frozen-backbone training with and without the feature cache: wall time and accuracy.

    .venv/bin/python benchmarks/bench_training.py [--images 640] [--backbone ResNet50V2]
        [--image-size 128] [--epochs 16] [--threads 2] [--repeats 2]

One category's tree of generated garment photos (``synthetic_tree``, no augmentation), then,
in this one process, on the same tree, split and settings:

- ``cached, 1 epoch``: :func:`extract_features` (rule ``features``) then :func:`train_category`
  on that cache (rule ``train``), ``epochs: 1``;
- ``cached, E epochs``: the same with ``epochs: E``, from a fresh cache (extraction counted);
- ``images, E epochs``: :func:`train_category` with ``cache_features: false``, the way the
  original project trained: the frozen backbone runs on every image every epoch.

Each row is the wall time of everything a workflow run does for the category after rule
``split`` (model builds, extraction, epochs, writing the outputs), not the interpreter start
(the split files are made once, first, untimed); the cached runs
are short and run ``--repeats`` times each, alternately, keeping the fastest. The backbone is
a real ``keras.applications`` one (default ResNet50V2, the workflow's default) with random
weights saved to a local weights file first, the way real runs load ImageNet weights; at
128 px on a few hundred images it dominates the time the way it does on a GPU with real data.
Before timing, a warm-up runs the extractor once so no row pays TensorFlow's start-up.
``learning_rate`` is 0.01: the random backbone's features are small, the head learns them
slowly at 0.001. The machine's load average is printed: other processes skew the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_tree import write_tree  # noqa: E402

CATEGORY = "collar_design_labels"
TARGET_EPOCHS_RATIO = 1.3  # E cached epochs cost at most this many times 1 cached epoch
TARGET_SPEEDUP = 8.0  # E epochs on images take at least this many times E cached epochs
TARGET_ACCURACY_POINTS = 2.0  # best val_accuracy of both within this many points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=640, help="images in the tree")
    parser.add_argument("--backbone", default="ResNet50V2")
    parser.add_argument("--image-size", type=int, default=128, help="model input, px")
    parser.add_argument("--source-size", type=int, default=160, help="JPEG size, px")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="attempts of each cached run")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-training-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        run(args, work)


def run(args: argparse.Namespace, work: Path) -> None:
    started = time.monotonic()
    tree, _ = write_tree(work / "tree", CATEGORY, args.images, args.source_size, seed=7)
    generated = time.monotonic() - started

    from fashionai.training.devices import configure_devices

    configure_devices(args.threads, mixed_precision=False, log=lambda line: None)
    import keras
    import numpy as np
    import tensorflow as tf

    from fashionai.splits import make_split, write_skipped, write_split
    from fashionai.training.backbones import build_backbone
    from fashionai.training.features import extract_features
    from fashionai.training.model import build_feature_extractor
    from fashionai.training.run import train_category
    from fashionai.training.settings import TrainSettings

    # Random weights in a local file, like a fetched ImageNet file; then a warm-up.
    keras.utils.set_random_seed(0)
    weights = work / f"{args.backbone}.weights.h5"
    build_backbone(args.backbone, args.image_size, None).save_weights(weights)
    extractor = build_feature_extractor(args.backbone, args.image_size, weights)
    warm = tf.function(lambda images: extractor(images, training=False))
    warm(np.zeros((2, args.image_size, args.image_size, 3), np.float32))

    settings = TrainSettings(
        backbone=args.backbone,
        weights=str(weights),
        image_size=args.image_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.epochs,
        learning_rate=0.01,
        seed=117,
    )
    split, skipped = make_split(tree, settings.validation_split, settings.test_split, settings.seed)
    files = {"split": work / "split.csv", "skipped": work / "skipped.csv"}
    write_split(files["split"], split)
    write_skipped(files["skipped"], skipped)
    print(
        f"{args.images} generated {args.source_size} px JPEGs ({generated:.1f} s), "
        f"{args.backbone} at {args.image_size} px, batch {args.batch_size}, "
        f"{args.threads} threads, TensorFlow {tf.__version__}; "
        f"load average before {os.getloadavg()[0]:.2f}",
        flush=True,
    )

    def cached(epochs: int, name: str) -> dict:
        run_settings = dataclasses.replace(settings, epochs=epochs, patience=epochs)
        begin = clock()
        cache = extract_features(
            tree,
            work / name / "features",
            run_settings,
            split=files["split"],
            threads=args.threads,
            log=quiet,
        )
        summary = train_category(
            tree,
            work / name / "model",
            run_settings,
            **files,
            threads=args.threads,
            log=quiet,
            features=cache.folder,
        )
        return row(f"cached, {epochs} epoch(s)", begin, summary, cache.manifest["seconds"])

    def images(epochs: int, name: str) -> dict:
        run_settings = dataclasses.replace(
            settings, epochs=epochs, patience=epochs, cache_features=False
        )
        begin = clock()
        summary = train_category(
            tree, work / name / "model", run_settings, **files, threads=args.threads, log=quiet
        )
        return row(f"images, {epochs} epoch(s)", begin, summary, None)

    # The cached runs are short: each runs --repeats times, alternately, and keeps its fastest
    # (other processes on a shared machine slow some attempts down); the long one runs once.
    one = many = None
    for attempt in range(args.repeats):
        one = fastest(one, cached(1, f"cached-1-{attempt}"))
        many = fastest(many, cached(args.epochs, f"cached-E-{attempt}"))
    print_row(one)
    print_row(many)
    baseline = images(args.epochs, "images-E")
    print_row(baseline)
    print(f"load average after {os.getloadavg()[0]:.2f}")
    n_images = sum(baseline["images"].values())
    extraction_ms = 1000 * many["extraction"] / n_images
    epoch_ms = 1000 * baseline["training"] / (args.epochs * n_images)
    print(
        f"per image: the extraction pass {extraction_ms:.1f} ms (split, model build and "
        f"tracing included), an epoch on images {epoch_ms:.1f} ms (Keras' training and "
        "evaluation steps through the frozen backbone)"
    )
    epochs_ratio = many["seconds"] / one["seconds"]
    speedup = baseline["seconds"] / many["seconds"]
    cpu_ratio, cpu_speedup = many["cpu"] / one["cpu"], baseline["cpu"] / many["cpu"]
    points = 100 * abs(many["accuracy"] - baseline["accuracy"])
    print()
    print("| figure | value | target | |")
    print("|---|---|---|---|")
    met = verdict(epochs_ratio <= TARGET_EPOCHS_RATIO)
    print(
        f"| {args.epochs} cached epochs / 1 cached epoch (wall, extraction included) "
        f"| {epochs_ratio:.2f}x | <= {TARGET_EPOCHS_RATIO}x | {met} |"
    )
    print(
        f"| {args.epochs} epochs on images / {args.epochs} cached epochs "
        f"| {speedup:.1f}x | >= {TARGET_SPEEDUP:g}x | {verdict(speedup >= TARGET_SPEEDUP)} |"
    )
    met = verdict(points <= TARGET_ACCURACY_POINTS)
    print(
        f"| best val_accuracy, cached vs images | {100 * many['accuracy']:.1f} vs "
        f"{100 * baseline['accuracy']:.1f} ({points:.1f} points) "
        f"| within {TARGET_ACCURACY_POINTS:g} points | {met} |"
    )
    print(
        f"| the same two ratios in CPU time (not skewed by other processes) "
        f"| {cpu_ratio:.2f}x, {cpu_speedup:.1f}x | | |"
    )


def quiet(line: str) -> None:
    if os.environ.get("BENCH_VERBOSE"):
        print(f"    {line}", flush=True)


def clock() -> tuple[float, float]:
    """Wall and CPU (this process, all threads) seconds."""
    return time.monotonic(), time.process_time()


def row(name: str, begin: tuple[float, float], summary: dict, extraction: float | None) -> dict:
    return {
        "name": name,
        "seconds": time.monotonic() - begin[0],
        "cpu": time.process_time() - begin[1],
        "extraction": extraction,
        "training": summary["seconds"],
        "accuracy": summary["best_val_accuracy"],
        "best_epoch": summary["best_epoch"],
        "images": summary["images"],
    }


def print_row(entry: dict) -> None:
    if entry["name"].startswith("cached, 1 "):
        print()
        print(
            "| run | wall s | of which extraction s | training job s | CPU s | best val_accuracy |"
        )
        print("|---|---|---|---|---|---|")
    extraction = "-" if entry["extraction"] is None else f"{entry['extraction']:.1f}"
    print(
        f"| {entry['name']} | {entry['seconds']:.1f} | {extraction} | {entry['training']:.1f} "
        f"| {entry['cpu']:.1f} | {100 * entry['accuracy']:.1f} (epoch {entry['best_epoch']}) |",
        flush=True,
    )


def fastest(best: dict | None, new: dict) -> dict:
    return new if best is None or new["seconds"] < best["seconds"] else best


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
