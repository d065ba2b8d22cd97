"""Grouped against separate models on real photographs: Fashion-MNIST as two design attributes.

    .venv/bin/python benchmarks/fashion_mnist_grouped.py [--subset N] [--epochs E]
        [--workdir DIR] [--run] [--data /usr/share/datasets/fashion-mnist]

Debian's ``dataset-fashion-mnist`` (see ``benchmarks/fashion_mnist.py``) written as two 5-class
attributes of the default ``design`` group, each keeping hard pairs of garments:

- ``collar_design_labels``: T-shirt/top, Shirt, Sandal, Sneaker, Trouser (the shirt and the
  shoe pairs);
- ``neckline_design_labels``: Pullover, Coat, Dress, Bag, Ankle boot at its first 5 classes
  (the pullover/coat pair), its 5 other classes dropped by ``regroup:``.

Each training image is annotated for its garment's attribute only, as each FashionAI photo is;
each official test image is a question of its garment's attribute. One ``snakemake`` run (with
``--run``) trains four experiments with the README's recipe at the same epochs (early stopping
off, so that the times compare): ``default`` and ``separate2`` train one model per attribute
(init seeds 117 and 2), ``grouped`` and ``grouped2`` one model for both (``train.grouped:
true``, the same seeds). All
four are ensemble members (no TTA) so that each writes its own submission. The script then
prints, per experiment, the official top-1 of each attribute and their mean, the grouped mean
minus the separate mean with its spread over the two seeds, and the training jobs' wall times
(Snakemake's ``benchmark:`` files): the grouped job against the sum of the two separate ones.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fashion_mnist import (  # noqa: E402
    CONFIG,
    DATA,
    FILES,
    GARMENTS,
    RECIPE,
    add,
    image_name,
    jpeg,
    read_idx,
    run_workflow,
)

from fashionai.attributes import ATTRIBUTES  # noqa: E402
from fashionai.outputs import submission_file  # noqa: E402

# attribute -> the garments (Fashion-MNIST class numbers) at its first class indices.
ATTRIBUTES_OF_GARMENTS = {
    "collar_design_labels": (0, 6, 5, 7, 1),
    "neckline_design_labels": (2, 4, 3, 8, 9),
}
TRAIN_ARCHIVE, TEST_ARCHIVE = "archives/grouped_train.tar", "archives/grouped_test.tar"
TEST_LABELS = "test_labels.csv"  # image_name, attribute, label_index (within the attribute)
EXPERIMENTS = {
    "default": {},
    "separate2": {"init_seed": 2},
    "grouped": {"grouped": True},
    "grouped2": {"grouped": True, "init_seed": 2},
}
SEPARATE, GROUPED = ("default", "separate2"), ("grouped", "grouped2")
# The README's Fashion-MNIST recipe (SmallVGG from scratch, cosine, AdamW, label smoothing).
README_RECIPE = {
    **RECIPE,
    "backbone": "SmallVGG",
    "learning_rate": 0.003,
    "lr_schedule": "cosine",
    "warmup_epochs": 1,
    "optimizer": "adamw",
    "weight_decay": 0.05,
    "label_smoothing": 0.1,
    "validation_split": 0.1,
    "test_split": 0.1,
}


def garment_table() -> pd.DataFrame:
    """Per Fashion-MNIST class: its attribute and its class index there."""
    rows = [
        (garment, attribute, index)
        for attribute, garments in ATTRIBUTES_OF_GARMENTS.items()
        for index, garment in enumerate(garments)
    ]
    table = pd.DataFrame(rows, columns=["garment", "attribute", "label_index"])
    return table.set_index("garment").sort_index()


def code(label_index: int, attribute: str) -> str:
    """The label.csv code of a class of ``attribute``: ``y`` at it, ``n`` elsewhere."""
    n = len(ATTRIBUTES[attribute])
    return "".join("y" if i == label_index else "n" for i in range(n))


def convert(data: Path, work: Path, subset: int | None, epochs: int) -> dict[str, int]:
    """Write both archives, the test labels and the configuration into ``work``."""
    table = garment_table()
    work.mkdir(parents=True, exist_ok=True)
    counts = {}
    for part, (images_file, labels_file) in FILES.items():
        images, garments = read_idx(data / images_file), read_idx(data / labels_file)
        images, garments = images[:subset], garments[:subset]
        rows = table.loc[garments.astype(int)].reset_index(drop=True)
        rows["image_name"] = [image_name(part, i) for i in range(len(images))]
        rows["path"] = "Images/" + rows["attribute"] + "/" + rows["image_name"]
        if part == "train":
            pairs = zip(rows["label_index"], rows["attribute"], strict=True)
            answers = pd.Series([code(i, a) for i, a in pairs])
            root, csv = "train", "Annotations/label.csv"
        else:
            answers, root, csv = "?", "rank", "Tests/question.csv"
            rows[["image_name", "attribute", "label_index"]].to_csv(work / TEST_LABELS, index=False)
        lines = rows["path"] + "," + rows["attribute"] + "," + answers
        archive = work / (TRAIN_ARCHIVE if part == "train" else TEST_ARCHIVE)
        archive.parent.mkdir(exist_ok=True)
        with tarfile.open(archive, "w") as tar:
            add(tar, f"{root}/{csv}", ("\n".join(lines) + "\n").encode())
            for path, pixels in zip(rows["path"], images, strict=True):
                add(tar, f"{root}/{path}", jpeg(pixels))
        counts[part] = len(images)
    neckline = ATTRIBUTES["neckline_design_labels"]
    config = {
        "archives": [TRAIN_ARCHIVE],
        "questions": TEST_ARCHIVE,
        "categories": list(ATTRIBUTES_OF_GARMENTS),
        "regroup": {"neckline_design_labels": {"drop": list(neckline[5:])}},
        "train": {**README_RECIPE, "epochs": epochs, "patience": epochs},
        "experiments": {name: keys for name, keys in EXPERIMENTS.items() if name != "default"},
        "ensemble": {"members": list(EXPERIMENTS), "tta": False},
    }
    (work / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return counts


def official_top1(work: Path, member: str) -> dict[str, float]:
    """A member's top-1 per attribute on the official test images (its own submission)."""
    rows = pd.read_csv(work / submission_file(member), header=None,
                       names=["path", "attribute", "probabilities"])  # fmt: skip
    rows["image_name"] = rows["path"].str.rsplit("/", n=1).str[-1]
    truth = pd.read_csv(work / TEST_LABELS)
    merged = truth.merge(rows, on=["image_name", "attribute"], how="left", validate="1:1")
    if merged["probabilities"].isna().any():
        missing = merged.loc[merged["probabilities"].isna(), "image_name"].iloc[0]
        raise ValueError(f"{work / submission_file(member)}: no answer for {missing}")
    predicted = [
        int(np.argmax([float(p) for p in row.split(";")])) for row in merged["probabilities"]
    ]
    merged["correct"] = np.asarray(predicted) == merged["label_index"].to_numpy()
    return merged.groupby("attribute")["correct"].mean().to_dict()


def job_seconds(work: Path, experiment: str) -> float:
    """The wall time of an experiment's training jobs (Snakemake's benchmark files)."""
    files = sorted(work.glob(f"results/benchmarks/train*/{experiment}/*.tsv"))
    if not files:
        raise ValueError(f"{work}: no benchmark file of {experiment}'s training jobs")
    return sum(float(pd.read_csv(file, sep="\t")["s"].iloc[0]) for file in files)


def report(work: Path) -> None:
    """The side-by-side table, the difference of the means and the time ratio."""
    table = pd.DataFrame({name: official_top1(work, name) for name in EXPERIMENTS}).T
    table["mean"] = table.mean(axis=1)
    table["train s"] = [job_seconds(work, name) for name in EXPERIMENTS]
    print(table.round(4).to_string())
    differences = [
        table.loc[g, "mean"] - table.loc[s, "mean"] for g, s in zip(GROUPED, SEPARATE, strict=True)
    ]
    print(
        f"grouped - separate mean official top-1, per seed: "
        f"{', '.join(f'{d:+.4f}' for d in differences)}; mean {statistics.mean(differences):+.4f}, "
        f"spread (max - min) {max(differences) - min(differences):.4f}"
    )
    ratios = [
        table.loc[g, "train s"] / table.loc[s, "train s"]
        for g, s in zip(GROUPED, SEPARATE, strict=True)
    ]
    print(
        "grouped training job / the separate jobs' sum (wall time, TensorFlow start-up "
        f"included): {', '.join(f'{r:.2f}x' for r in ratios)} (target at most 1.1x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the package's idx-ubyte files")
    parser.add_argument("--subset", type=int, help="the first N training and N test images")
    parser.add_argument("--epochs", type=int, default=10, help="every model's epochs")
    parser.add_argument("--workdir", type=Path, default=Path("fashion-mnist-grouped"))
    parser.add_argument("--run", action="store_true", help="run the workflow, then score")
    args = parser.parse_args()
    work = args.workdir.resolve()
    if not (work / CONFIG).exists():
        if not (args.data / FILES["train"][0]).exists():
            sys.exit(f"{args.data}: no Fashion-MNIST files; apt-get install dataset-fashion-mnist")
        started = time.monotonic()
        counts = convert(args.data, work, args.subset, args.epochs)
        print(f"wrote {counts} images ({len(GARMENTS)} garments) into {work} "
              f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    if args.run:
        seconds = run_workflow(work, [])
        print(f"workflow: {seconds / 60:.1f} min")
    if (work / submission_file()).exists():
        report(work)


if __name__ == "__main__":
    main()
