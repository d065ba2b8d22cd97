"""A sweep of head-only experiments against one experiment: what the shared feature cache buys.

    .venv/bin/python benchmarks/bench_sweep.py [--images-per-class 125] [--experiments 4]
        [--backbone ResNet50V2] [--image-size 224] [--epochs 5] [--workdir DIR]

One category (``coat_length_labels``, 8 classes: 1,000 images at 125 per class) of the
synthetic dataset, generated and taken through the data half once (not timed). Then, each in
a fresh copy of that working directory, with the frozen backbone (random weights: the cost is
the same as ImageNet's) and ``cache_features: true``:

- ``one``: ``snakemake`` for the default experiment's ``best.weights.h5``: rule ``features``
  (the backbone once per image) and one ``train`` job;
- ``sweep``: the same for ``--experiments`` experiments that differ only in head settings
  (learning rate, dropout, class weights), all targets in one ``snakemake`` call: one
  ``features`` job, then one ``train`` job per experiment, each training a head on the cache
  and predicting its held-out images from it.

Printed: the wall time of each call, their ratio (target: at most 1.3x for 4 experiments), and
each job's time from the workflow's own ``benchmark:`` records (results/benchmarks/), so the
fixed cost of a training job (interpreter, TensorFlow, building and saving the full model) and
the backbone pass can be told apart; from them, the ratio a sweep would reach with 20x the
images (the backbone pass grows with the images, a head-only job barely).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
from pathlib import Path

import yaml
from workflow_run import run_snakemake

from fashionai.outputs import WEIGHTS_FILE, model_file

REPO = Path(__file__).resolve().parents[1]
CATEGORY = "coat_length_labels"
TARGET_RATIO = 1.3  # a 4-experiment sweep costs at most this many times one experiment
HEAD_SETTINGS = [  # experiments that share the default's features
    {"learning_rate": 0.0003},
    {"dropout": 0.5},
    {"class_weights": False},
    {"learning_rate": 0.003, "dropout": 0.1},
    {"epochs": 3},
]


def config(args: argparse.Namespace) -> dict:
    """The benchmark's configuration: one category, the frozen backbone, the feature cache."""
    synthetic = "resources/synthetic"
    return {
        "archives": [
            f"{synthetic}/fashionAI_attributes_train_20180222.tar",
            f"{synthetic}/warm_up_train_20180201.tar",
            f"{synthetic}/fashionAI_attributes_train2.zip",
        ],
        "questions": None,
        "categories": [CATEGORY],
        "synthetic": {
            "out_dir": synthetic,
            "images_per_class": args.images_per_class,
            "image_size": 96,
            "faults": False,
            "questions_per_attribute": 1,
        },
        "train": {
            "backbone": args.backbone,
            "weights": None,
            "image_size": args.image_size,
            "epochs": args.epochs,
            "patience": args.epochs,
            "batch_size": 32,
            "cache_features": True,
            "fine_tune": False,
            "gpus": 0,
            "threads": 2,
        },
        "experiments": {
            f"head{i}": HEAD_SETTINGS[i % len(HEAD_SETTINGS)] for i in range(1, args.experiments)
        },
    }


def snakemake(workdir: Path, *targets: str) -> float:
    """The workflow in ``workdir`` for ``targets`` (no GPU claim); its wall time in seconds."""
    configs = [REPO / "config.yaml", workdir / "bench.yaml"]
    return run_snakemake(workdir, configs, "--nolock", *targets, gpus=0)[0]


def weights_target(experiment: str) -> str:
    return model_file(WEIGHTS_FILE, CATEGORY, experiment)


def job_seconds(workdir: Path) -> list[tuple[str, float]]:
    """(rule/job, seconds) from the workflow's benchmark: records."""
    rows = []
    for tsv in sorted((workdir / "results/benchmarks").rglob("*.tsv")):
        with tsv.open() as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        rows.append((str(tsv.relative_to(workdir / "results/benchmarks")), float(record["s"])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-class", type=int, default=125)
    parser.add_argument("--experiments", type=int, default=4, help="in the sweep, default too")
    parser.add_argument("--backbone", default="ResNet50V2")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        work = args.workdir or Path(scratch)
        run(args, work)


def run(args: argparse.Namespace, work: Path) -> None:
    base = work / "base"
    shutil.rmtree(work, ignore_errors=True)
    base.mkdir(parents=True)
    settings = config(args)
    (base / "bench.yaml").write_text(yaml.safe_dump(settings))
    print(f"data half for {CATEGORY} ({args.images_per_class} images per class), not timed")
    snakemake(base, "data")
    experiments = ["default", *settings["experiments"]]
    times = {}
    for name, members in (("one", experiments[:1]), ("sweep", experiments)):
        folder = work / name
        shutil.copytree(base, folder, symlinks=True)
        print(f"{name}: {len(members)} experiment(s) ...", flush=True)
        times[name] = snakemake(folder, *map(weights_target, members))
        print(f"{name}: {times[name]:.1f} s")
        for job, seconds in job_seconds(folder):
            print(f"    {job:<60} {seconds:7.1f} s")
    ratio = times["sweep"] / times["one"]
    verdict = "met" if ratio <= TARGET_RATIO or args.experiments != 4 else "MISSED"
    print(
        f"\n{len(experiments)} experiments / 1 experiment: {ratio:.2f}x "
        f"(target <= {TARGET_RATIO}x for 4: {verdict}); load average {os.getloadavg()[0]:.2f}"
    )
    sweep = dict(job_seconds(work / "sweep"))
    features = sum(s for job, s in sweep.items() if job.startswith("features/"))
    train = [s for job, s in sweep.items() if job.startswith("train/")]
    if features and train:
        head = sum(train) / len(train)
        scale = 20
        one, many = scale * features + head, scale * features + len(train) * head
        print(
            f"per job: features {features:.1f} s (the backbone once per image), a head-only "
            f"train job {head:.1f} s on average; with {scale}x the images (the backbone pass "
            f"grows, a head job barely): {many / one:.2f}x"
        )


if __name__ == "__main__":
    main()
