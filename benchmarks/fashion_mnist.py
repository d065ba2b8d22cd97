"""Real photographs: Fashion-MNIST as FashionAI archives, the workflow on them, the official score.

    .venv/bin/python benchmarks/fashion_mnist.py [--subset N] [--workdir DIR] [--run]
        [--configfile EXTRA.yaml ...] [--data /usr/share/datasets/fashion-mnist]

Debian's package ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``) holds
Zalando's Fashion-MNIST: 60,000 training and 10,000 test images (28 x 28 grey) of 10 garments,
as idx-ubyte gzip files. This script writes them in the layout of the FashionAI archives
(/work/shared/fashionai-format.md), the 10 garments as the 10 classes of
``neckline_design_labels`` in order (no regrouping):

- ``archives/fashion_mnist_train.tar``: ``train/Annotations/label.csv`` (rows like
  ``Images/neckline_design_labels/<32 hex>.jpg,neckline_design_labels,nnnnynnnnn``) and the
  training images as JPEG;
- ``archives/fashion_mnist_test.tar``: the official test set as the questions archive
  (``rank/Tests/question.csv``, codes ``?``);
- ``test_labels.csv``: each test image's name and official class, for scoring;
- ``fashion_mnist.yaml``: a configuration for them (the demo's from-scratch recipe at 28 px;
  later ``--configfile`` files override it key by key, e.g. experiments).

With ``--run`` it then runs the workflow (``snakemake ... results/submission.csv``) in the work
folder. Whenever ``results/submission.csv`` exists there, it prints the top-1 accuracy of it and
of each member's submission (``results/submissions/*.csv``) on the official test labels, beside
the published figures. ``--subset N`` keeps the first N training and N test images.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
DATA = Path("/usr/share/datasets/fashion-mnist")
CATEGORY = "neckline_design_labels"
GARMENTS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
            "Bag", "Ankle boot")  # fmt: skip
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
TRAIN_ARCHIVE, TEST_ARCHIVE = "archives/fashion_mnist_train.tar", "archives/fashion_mnist_test.tar"
TEST_LABELS, CONFIG = "test_labels.csv", "fashion_mnist.yaml"
# zalandoresearch/fashion-mnist README, test accuracy (humans: 0.835).
PUBLISHED = {
    "2 conv layers + pooling (TensorFlow tutorial)": 0.916,
    "2-layer CNNs (range)": "0.876-0.939",
    "3 conv + BatchNorm (range)": "0.903-0.921",
    "ResNet18": 0.949,
    "MobileNet": 0.950,
    "WRN-28-10 + random erasing": 0.963,
    "humans": 0.835,
}
# The demo's from-scratch recipe (demo/config.yaml) at the images' own size; BENCHMARKS.md
# gives the recipe that measured best as a --configfile on top.
RECIPE = {
    "backbone": "SmallCNN",
    "weights": None,
    "image_size": 28,
    "batch_size": 128,
    "epochs": 20,
    "patience": 5,
    "fine_tune": True,
    "learning_rate": 0.001,
    "augmentations": ["flip"],
    "gpus": 1,
    "threads": 2,
}


def read_idx(path: Path) -> np.ndarray:
    """An idx-ubyte gzip file (unsigned bytes: 0x0801 labels, 0x0803 images) as an array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    zero, kind, dims = data[0:2], data[2], data[3]
    if zero != b"\0\0" or kind != 0x08:
        raise ValueError(f"{path}: not an idx-ubyte file (header {data[:4].hex()})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {values.size} values for shape {shape}")
    return values.reshape(shape)


def image_name(part: str, index: int) -> str:
    """A stable 32-hex name, as the real archives' (the part keeps train and test apart)."""
    return hashlib.md5(f"fashion-mnist-{part}-{index}".encode()).hexdigest() + ".jpg"


def code(label: int, n_classes: int = len(GARMENTS)) -> str:
    """The label.csv code: ``y`` at the class, ``n`` elsewhere."""
    return "".join("y" if i == label else "n" for i in range(n_classes))


def jpeg(pixels: np.ndarray) -> bytes:
    """A grey image as JPEG bytes (quality 95)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_archive(
    path: Path, root: str, csv_name: str, images: np.ndarray, rows: list[str], names: list[str]
) -> None:
    """A tar of ``<root>/<csv_name>`` (``rows``) and ``<root>/Images/<category>/<name>``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial.{path.name}")
    with tarfile.open(partial, "w") as tar:
        add(tar, f"{root}/{csv_name}", ("\n".join(rows) + "\n").encode())
        for name, pixels in zip(names, images, strict=True):
            add(tar, f"{root}/Images/{CATEGORY}/{name}", jpeg(pixels))
    partial.replace(path)


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def convert(data: Path, work: Path, subset: int | None = None) -> dict[str, int]:
    """Write the archives, the test labels and the configuration into ``work``; return the
    image counts."""
    counts = {}
    for part, (images_file, labels_file) in FILES.items():
        images, labels = read_idx(data / images_file), read_idx(data / labels_file)
        if len(images) != len(labels):
            raise ValueError(f"{data}: {len(images)} images but {len(labels)} labels in {part}")
        images, labels = images[:subset], labels[:subset]
        names = [image_name(part, i) for i in range(len(images))]
        paths = [f"Images/{CATEGORY}/{name}" for name in names]
        if part == "train":
            rows = [f"{p},{CATEGORY},{code(int(y))}" for p, y in zip(paths, labels, strict=True)]
            write_archive(work / TRAIN_ARCHIVE, "train", "Annotations/label.csv", images, rows,
                          names)  # fmt: skip
        else:
            rows = [f"{p},{CATEGORY},?" for p in paths]
            write_archive(work / TEST_ARCHIVE, "rank", "Tests/question.csv", images, rows, names)
            frame = pd.DataFrame({"image_name": names, "label_index": labels.astype(int)})
            frame.to_csv(work / TEST_LABELS, index=False)
        counts[part] = len(images)
    config = {
        "archives": [TRAIN_ARCHIVE],
        "questions": TEST_ARCHIVE,
        "categories": [CATEGORY],
        "regroup": {},
        "train": RECIPE,
    }
    (work / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return counts


def accuracy(submission: Path, labels: Path) -> tuple[float, int]:
    """Top-1 accuracy of a submission (``path,attribute,p0;...;p9``, no header) on the test
    labels, and how many test images it scored; a test image missing raises ValueError."""
    rows = pd.read_csv(submission, header=None, names=["path", "attribute", "probabilities"])
    rows = rows[rows["attribute"] == CATEGORY]
    truth = pd.read_csv(labels).set_index("image_name")["label_index"]
    names = rows["path"].str.rsplit("/", n=1).str[-1]
    missing = sorted(set(truth.index) - set(names))
    if missing:
        raise ValueError(
            f"{submission}: no row for {len(missing)} test image(s), e.g. {missing[0]}"
        )
    probabilities = np.array([[float(p) for p in row.split(";")] for row in rows["probabilities"]])
    predicted = probabilities.argmax(axis=1)
    return float((predicted == truth.loc[names].to_numpy()).mean()), len(rows)


def report(work: Path) -> pd.DataFrame | None:
    """The official test accuracy of each submission in ``work/results``, printed beside the
    published figures; None if there is no submission yet."""
    main = work / "results/submission.csv"
    if not main.exists():
        print(f"no {main} yet: run the workflow (--run) first")
        return None
    submissions = {"submission (the workflow's final)": main}
    for member in sorted((work / "results/submissions").glob("*.csv")):
        submissions[f"member {member.stem}"] = member
    rows = []
    for name, path in submissions.items():
        value, n = accuracy(path, work / TEST_LABELS)
        rows.append({"system": name, "test accuracy": f"{value:.4f}", "test images": n})
    rows += [{"system": f"published: {name}", "test accuracy": str(value), "test images": 10000}
             for name, value in PUBLISHED.items()]  # fmt: skip
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    return table


def run_workflow(work: Path, extra: list[Path]) -> float:
    """``snakemake results/submission.csv`` in ``work`` on 2 cores; its wall time (s)."""
    configs = [REPO / "config.yaml", work / CONFIG, *extra]
    command = [
        str(SNAKEMAKE), "results/submission.csv", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(work), "--configfile", *map(str, configs), "--cores", "2",
        "--resources", "gpu=1",
    ]  # fmt: skip
    started = time.monotonic()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        sys.exit(f"snakemake failed in {work}:\n{result.stderr[-3000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the package's idx-ubyte files")
    parser.add_argument("--subset", type=int, help="the first N training and N test images")
    parser.add_argument("--workdir", type=Path, default=Path("fashion-mnist-bench"))
    parser.add_argument("--run", action="store_true", help="run the workflow, then score")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="more config files (experiments, other recipes)")  # fmt: skip
    args = parser.parse_args()
    work = args.workdir.resolve()
    if not (work / CONFIG).exists() or not (work / TRAIN_ARCHIVE).exists():
        if not (args.data / FILES["train"][0]).exists():
            sys.exit(f"{args.data}: no Fashion-MNIST files; apt-get install dataset-fashion-mnist")
        started = time.monotonic()
        counts = convert(args.data, work, args.subset)
        print(f"wrote {counts} images into {work} in {time.monotonic() - started:.0f} s")
    else:
        print(f"{work}: archives already written (delete the folder to write them again)")
    if args.run:
        seconds = run_workflow(work, [path.resolve() for path in args.configfile])
        print(f"workflow: {seconds / 60:.1f} min")
    report(work)


if __name__ == "__main__":
    main()
