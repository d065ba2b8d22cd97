"""Does the ensemble beat its members, and does flip TTA help? On a hard synthetic dataset.

    .venv/bin/python benchmarks/bench_ensemble.py [--difficulty 0.5] [--images-per-class 40]
        [--categories 4] [--workdir DIR]

One ``snakemake`` call: the demo's settings (``demo/config.yaml``: SmallCNN at 48 px) and its
sweep (``demo/experiments.yaml``: ``default``, ``seed2``, ``dropout``, ``small``, the ensemble
of ``default``, ``seed2`` and ``small`` with flip TTA) on a synthetic set made hard with
``synthetic.difficulty`` (classes drawn alike, noise, clutter, ambiguous images), for the first
``--categories`` categories. All figures are on the test images (``train.test_split``), held out
from training and from every selection.

Printed per category: each member's test mAP (``results/experiments.csv``), the mean of the
members, the ensemble without TTA (``without_tta`` in its ``metrics.json``) and with it; then
how many categories the ensemble beats the mean of its members in, and in how many flip TTA
does not lower it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from workflow_run import run_snakemake

from fashionai.outputs import ENSEMBLE, METRICS_FILE, eval_file

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulty", type=float, default=0.5)
    parser.add_argument("--images-per-class", type=int, default=40)
    parser.add_argument("--categories", type=int, default=4, help="the first N categories")
    parser.add_argument("--workdir", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ensemble-") as scratch:
        run(args, args.workdir or Path(scratch))


def run(args: argparse.Namespace, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    categories = base["categories"][: args.categories]
    override = {
        "categories": categories,
        "synthetic": {"difficulty": args.difficulty, "images_per_class": args.images_per_class},
    }
    (work / "bench.yaml").write_text(yaml.safe_dump(override))
    configs = [REPO / "config.yaml", REPO / "demo/config.yaml", REPO / "demo/experiments.yaml"]
    print(f"difficulty {args.difficulty}, {args.images_per_class} images per class, {categories}")
    configs = [*configs, work / "bench.yaml"]
    seconds, _ = run_snakemake(work, configs, "--nolock", "results/experiments.csv")
    print(f"snakemake: {seconds:.0f} s\n")
    report(work, categories)


def report(work: Path, categories: list[str]) -> None:
    ensemble = yaml.safe_load((REPO / "demo/experiments.yaml").read_text())["ensemble"]
    members = ensemble["members"]
    table = pd.read_csv(work / "results/experiments.csv")
    ap = table.pivot(index="category", columns="experiment", values="ap")
    rows = []
    for category in categories:
        metrics = json.loads((work / eval_file(METRICS_FILE, category, ENSEMBLE)).read_text())
        plain = metrics.get("without_tta", metrics)["ap"]
        rows.append(
            {
                "category": category,
                **{member: ap.loc[category, member] for member in members},
                "members' mean": ap.loc[category, members].mean(),
                "ensemble": plain,
                "ensemble + TTA": metrics["ap"],
                "evaluated_on": metrics["evaluated_on"],
            }
        )
    frame = pd.DataFrame(rows).set_index("category")
    print(frame.to_string(float_format=lambda v: f"{v:.4f}"))
    means = frame.drop(columns="evaluated_on").mean()
    print("mean".ljust(len(max(categories, key=len))), means.round(4).to_dict())
    beats = int((frame["ensemble"] > frame["members' mean"]).sum())
    tta_ok = int((frame["ensemble + TTA"] >= frame["ensemble"]).sum())
    n = len(frame)
    print(
        f"\nthe ensemble beats the mean of its members in {beats} of {n} categories "
        f"(target: most); flip TTA does not lower it in {tta_ok} of {n}"
    )


if __name__ == "__main__":
    main()
