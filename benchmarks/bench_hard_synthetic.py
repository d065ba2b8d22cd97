"""Does the from-scratch recipe leave any model at the majority class on the hardest synthetic set?

    .venv/bin/python benchmarks/bench_hard_synthetic.py [--difficulty 1] [--images-per-class 40]
        [--categories neckline_design_labels coat_length_labels pant_length_labels]
        [--configfile EXTRA.yaml ...] [--workdir DIR]

The demo's recipe (``demo/config.yaml`` ``train:``: SmallCNN, random weights, trained whole
from epoch 0, its learning rate, flip, epochs and patience) on the demo generator at its
hardest (``synthetic.difficulty: 1``), for the three categories with the most classes after
the default regrouping (10, 8 and 6). Six experiments, config only: the demo's learning rate
x0.3, x1 and x3, each at 48 and 64 px (``lr{factor}x_{size}px``). One ``snakemake`` call
builds every experiment's ``best.weights.h5`` for every category, on 2 cores with
``--resources gpu=1`` (one training job at a time): about 11 min with 40 images per class on 2
shared cores. ``--configfile`` files go on top of the benchmark's own configuration, key by key
(another recipe, e.g. a ``train:`` block).

Printed: one row per model from its ``history.csv`` and ``split.csv``: the majority class's
share of the validation images (what a model that always answers that class scores),
val_accuracy at epoch 0, the best val_accuracy and its epoch, the epochs run, and the verdict:
``stuck`` when the best val_accuracy is not at least ``MARGIN`` (5 points) above the majority
share. Then the count stuck / total, the wall time of the ``snakemake`` call and the load
average. Exit status 1 if any model is stuck.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from workflow_run import run_snakemake

from fashionai.outputs import HISTORY_FILE, SPLIT_FILE, WEIGHTS_FILE, model_file

REPO = Path(__file__).resolve().parents[1]
CONFIGS = (REPO / "config.yaml", REPO / "demo/config.yaml")  # the benchmark's goes on top
CATEGORIES = ("neckline_design_labels", "coat_length_labels", "pant_length_labels")
LR_FACTORS = (0.3, 1, 3)  # times the demo's learning rate
IMAGE_SIZES = (48, 64)
MARGIN = 0.05  # a model must beat the majority share by this much not to count as stuck


def experiments(recipe: dict) -> dict[str, dict]:
    """The sweep: the recipe's learning rate times each factor, at each image size."""
    return {
        f"lr{factor}x_{size}px": {
            "learning_rate": float(f"{recipe['learning_rate'] * factor:.3g}"),
            "image_size": size,
        }
        for factor in LR_FACTORS
        for size in IMAGE_SIZES
    }


def config(args: argparse.Namespace) -> dict:
    """The benchmark's configuration, on top of ``CONFIGS``: the categories, the hard set, the
    sweep (the demo's ``train:`` block is the recipe; ``synthetic:`` keeps its other keys)."""
    recipe = yaml.safe_load((REPO / "demo/config.yaml").read_text())["train"]
    return {
        "categories": list(args.categories),
        "synthetic": {"difficulty": args.difficulty, "images_per_class": args.images_per_class},
        "experiments": experiments(recipe),
    }


def model_row(work: Path, experiment: str, category: str) -> dict:
    """One model's figures from its ``history.csv`` and ``split.csv``."""
    history = pd.read_csv(work / model_file(HISTORY_FILE, category, experiment))
    split = pd.read_csv(work / model_file(SPLIT_FILE, category, experiment))
    validation = split.loc[split["subset"] == "validation", "label"]
    majority = float(validation.value_counts(normalize=True).iloc[0])
    best = history.loc[history["val_accuracy"].idxmax()]
    return {
        "experiment": experiment,
        "category": category.removesuffix("_labels"),
        "n_val": len(validation),
        "majority": majority,
        "val_acc@0": float(history["val_accuracy"].iloc[0]),
        "best_val_acc": float(best["val_accuracy"]),
        "best_epoch": int(best["epoch"]),
        "epochs_run": len(history),
        "verdict": "stuck" if best["val_accuracy"] < majority + MARGIN else "learns",
    }


def report(work: Path, names: list[str], categories: list[str]) -> pd.DataFrame:
    """The table of every model; returns it."""
    table = pd.DataFrame([model_row(work, e, c) for e in names for c in categories])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulty", type=float, default=1.0, help="synthetic.difficulty")
    parser.add_argument("--images-per-class", type=int, default=40)
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES))
    parser.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="more config files on top (another recipe)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hard-") as scratch:
        work = (args.workdir or Path(scratch)).resolve()
        sys.exit(run(args, work))


def run(args: argparse.Namespace, work: Path) -> int:
    """The benchmark in ``work``; the exit status (1 if any model is stuck)."""
    work.mkdir(parents=True, exist_ok=True)
    settings = config(args)
    (work / "bench.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    names = list(settings["experiments"])
    targets = [model_file(WEIGHTS_FILE, c, e) for e in names for c in args.categories]
    print(
        f"difficulty {args.difficulty}, {args.images_per_class} images per class, "
        f"{len(names)} experiments x {len(args.categories)} categories: {settings['experiments']}",
        flush=True,
    )
    extra = [path.resolve() for path in args.configfile]
    seconds, _ = run_snakemake(work, [*CONFIGS, work / "bench.yaml", *extra], "--nolock", *targets)
    table = report(work, names, args.categories)
    stuck = int((table["verdict"] == "stuck").sum())
    print(
        f"\nstuck (best val_accuracy < majority share + {MARGIN:.2f}): {stuck} / {len(table)}; "
        f"snakemake {seconds / 60:.1f} min on 2 cores; load average "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    return 1 if stuck else 0


if __name__ == "__main__":
    main()
