"""Real photographs: Fashion-MNIST as FashionAI archives, the workflow on them, the official score.

    .venv/bin/python benchmarks/fashion_mnist.py [--subset N] [--workdir DIR] [--run]
        [--configfile EXTRA.yaml ...] [--plain-epochs N] [--data /usr/share/datasets/fashion-mnist]

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

``--subset N`` keeps the first N training and N test images. With ``--run`` it then runs the
whole workflow (Snakemake's default target: every experiment's model and evaluation, the
ensemble's, the submissions) in the work folder on 2 cores and records its wall time in
``workflow.json``. Whenever the submission exists, it prints a table beside the published
figures, one row for the submission, one per member (``results/submissions/<member>.csv``)
and one per experiment with ``train.folds`` (its fold members' ensemble), each from the run's
own records:

- ``official``: top-1 on the official test labels; the line above the table says whether the
  submissions hold flip TTA (``ensemble.tta``);
- ``own test`` / ``own TTA`` / ``own images``: top-1 on the split's own test images, plain and
  with flip TTA (with ``eval.tta``; the ensemble's with ``ensemble.tta``), from ``metrics.json``;
- ``out-of-fold``: an experiment with folds, top-1 of each member on the fold it validated on
  (rule ``out_of_fold``), next to its members' ensemble's test figures;
- ``epochs`` / ``best``: epochs run and the best one (0-based), ``train min``: the training
  run's time, from ``training.json``;
- ``epoch s``: the median epoch after the first (which traces the model), from the training
  log: the time between two epoch lines, validation and the epoch's backup included;
  ``img/s``: training images per second at that pace.

``--plain-epochs N`` (N >= 2) then fits the same network with plain ``model.fit`` for N epochs on
in-memory arrays: the default experiment's (else the first member's) settings from its
``training.json``, built and compiled by fashionai's own ``build_classifier`` and
``compile_classifier`` for its last phase, on the training and validation images of its
``split.csv`` decoded once into uint8 arrays (as the workflow's image cache holds them), the
same batch size, class weights and threads. It prints both epoch times and their ratio (the
issue's target: the workflow's epoch within 1.3x the plain one). MixUp and CutMix, which run
in the workflow's input pipeline, are left out of the plain fit.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import itertools
import json
import math
import os
import re
import statistics
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # for --plain-epochs and the workflow's jobs
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's fashionai, as the Snakefile's jobs use
sys.path.insert(0, str(REPO / "benchmarks"))

from workflow_run import run_snakemake  # noqa: E402

from fashionai.outputs import (  # noqa: E402
    DEFAULT_EXPERIMENT,
    ENSEMBLE,
    METRICS_FILE,
    OUT_OF_FOLD,
    SPLIT_FILE,
    SUMMARY_FILE,
    eval_file,
    experiment_root,
    model_file,
    submission_file,
    train_log,
)

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
WORKFLOW_TIME = "workflow.json"  # the last --run's wall time
TARGET_EPOCH_RATIO = 1.3  # the issue's: a workflow epoch against a plain model.fit epoch
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


def read_submission(submission: Path) -> pd.DataFrame:
    """A submission's (``path,attribute,p0;...;p9``, no header) probabilities for the garments:
    one row per image name, one column per class."""
    rows = pd.read_csv(submission, header=None, names=["path", "attribute", "probabilities"])
    rows = rows[rows["attribute"] == CATEGORY]
    names = rows["path"].str.rsplit("/", n=1).str[-1].to_numpy()
    values = [[float(p) for p in row.split(";")] for row in rows["probabilities"]]
    return pd.DataFrame(values, index=names)


def top1(probabilities: pd.DataFrame, labels: Path, source: Path) -> float:
    """Top-1 accuracy of :func:`read_submission`'s probabilities on the test labels; a test
    image missing raises ValueError naming ``source``."""
    truth = pd.read_csv(labels).set_index("image_name")["label_index"]
    missing = sorted(set(truth.index) - set(probabilities.index))
    if missing:
        raise ValueError(f"{source}: no row for {len(missing)} test image(s), e.g. {missing[0]}")
    predicted = probabilities.to_numpy().argmax(axis=1)
    return float((predicted == truth.loc[probabilities.index].to_numpy()).mean())


def accuracy(submission: Path, labels: Path) -> tuple[float, int]:
    """Top-1 accuracy of a submission on the test labels, and how many test images it scored."""
    probabilities = read_submission(submission)
    return top1(probabilities, labels, submission), len(probabilities)


# A training log's epoch line (fashionai.training.callbacks.EpochLogger, through job_log):
# "[   12.3s] epoch 1/19 [fine_tune] loss ... val_acc 0.8012 10.2 s, 4,900 images/s best, ...".
EPOCH_LINE = re.compile(
    r"^\[\s*(?P<stamp>[\d.]+)s\] epoch \d+/\d+ \[[^\]]*\] .* val_acc \S+ "
    r"(?P<seconds>[\d.]+) s, [\d,]+ images/s"
)


def epoch_times(log: str) -> list[float]:
    """Each epoch's seconds in a training job's log: the first epoch's own figure, then the
    time from one epoch line to the next (the epoch as the workflow runs it, its backup
    included)."""
    lines = [match for match in map(EPOCH_LINE.match, log.splitlines()) if match]
    times = [float(lines[0]["seconds"])] if lines else []
    times += [float(b["stamp"]) - float(a["stamp"]) for a, b in itertools.pairwise(lines)]
    return times


def steady(times: list[float]) -> float | None:
    """The median epoch after the first (which traces the model); the first if alone."""
    return statistics.median(times[1:] or times) if times else None


@dataclass(frozen=True)
class Record:
    """What a run recorded for one row of the table: the official top-1 of its submission,
    its ``metrics.json`` (a model's, the ensemble's or an out-of-fold one) and, for a trained
    model, its ``training.json`` and epoch times (:func:`epoch_times`)."""

    name: str
    official: float | None = None
    metrics: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    epochs: tuple[float, ...] = ()


COLUMNS = (
    "model",
    "official",
    "own test",
    "own TTA",
    "own images",
    "out-of-fold",
    "epochs",
    "best",
    "train min",
    "epoch s",
    "img/s",
)


def own_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The split's own test top-1 of a ``metrics.json``: plain, with flip TTA (None when not
    scored), on how many images, and an out-of-fold evaluation's out-of-fold top-1.

    A model's file has the plain figures at the top and ``flip_tta`` with ``eval.tta``; the
    ensemble's has its submission's (flip TTA with ``ensemble.tta``, then ``without_tta``
    too); an out-of-fold one has the members' ensemble on the test images under ``test``,
    written like the ensemble's.
    """
    if metrics.get("evaluated_on") == OUT_OF_FOLD:
        return {**own_figures(metrics["test"]), "oof": metrics["accuracy"]}
    figures = {
        "plain": metrics["accuracy"],
        "tta": metrics.get("flip_tta", {}).get("accuracy"),
        "images": metrics["n_images"],
        "oof": None,
    }
    if (metrics.get("ensemble") or {}).get("tta"):
        figures.update(plain=metrics["without_tta"]["accuracy"], tta=metrics["accuracy"])
    return figures


def table_row(record: Record) -> dict[str, str]:
    """``record`` as a row of :data:`COLUMNS` (blank where the run recorded nothing)."""

    def fraction(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    row = dict.fromkeys(COLUMNS, "") | {"model": record.name, "official": fraction(record.official)}
    if record.metrics is not None:
        own = own_figures(record.metrics)
        row |= {
            "own test": fraction(own["plain"]),
            "own TTA": fraction(own["tta"]),
            "own images": f"{own['images']:,}",
            "out-of-fold": fraction(own["oof"]),
        }
    if record.summary is not None:
        summary, epoch = record.summary, steady(list(record.epochs))
        row |= {
            "epochs": str(summary["epochs_run"]),
            "best": str(summary["best_epoch"]),
            "train min": f"{summary['seconds'] / 60:.1f}",
        }
        if epoch:
            row |= {
                "epoch s": f"{epoch:.1f}",
                "img/s": f"{summary['images']['train'] / epoch:,.0f}",
            }
    return row


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def model_record(work: Path, member: str, official: float | None) -> Record:
    """A trained model's :class:`Record`, from its files in ``work``."""
    log = work / train_log(CATEGORY, member)
    return Record(
        f"member {member}",
        official,
        read_json(work / eval_file(METRICS_FILE, CATEGORY, member)),
        read_json(work / model_file(SUMMARY_FILE, CATEGORY, member)),
        tuple(epoch_times(log.read_text())) if log.exists() else (),
    )


def members(work: Path) -> list[str]:
    """The members with a submission of their own in ``work``, ``default`` first."""
    names = [path.stem for path in work.glob(submission_file("*"))]
    return sorted(names, key=lambda name: (name != DEFAULT_EXPERIMENT, name))


def collect(work: Path) -> tuple[list[Record], bool]:
    """The submission's, each member's and each experiment with folds' :class:`Record` in
    ``work``, and whether the submissions hold flip TTA (the ensemble's ``metrics.json``
    says; no ensemble, no TTA)."""
    labels, main = work / TEST_LABELS, work / submission_file()
    submissions = {name: read_submission(work / submission_file(name)) for name in members(work)}
    ensemble = read_json(work / eval_file(METRICS_FILE, CATEGORY, ENSEMBLE))
    final = ensemble
    if ensemble is None and len(submissions) == 1:  # the submission is the one model's
        final = read_json(work / eval_file(METRICS_FILE, CATEGORY, *submissions))
    name = "submission"
    if submissions:
        name += f" ({', '.join(submissions) if len(submissions) == 1 else 'ensemble'})"
    records = [Record(name, top1(read_submission(main), labels, main), final)]
    for member, probabilities in submissions.items():
        official = top1(probabilities, labels, work / submission_file(member))
        records.append(model_record(work, member, official))
    for folder in sorted(work.glob(experiment_root("*"))):
        metrics = read_json(work / eval_file(METRICS_FILE, CATEGORY, folder.name))
        if metrics is None or metrics.get("evaluated_on") != OUT_OF_FOLD:
            continue
        folds, official = metrics["folds"], None
        if all(fold in submissions for fold in folds):
            mean = sum(submissions[fold] for fold in folds) / len(folds)
            official = top1(mean, labels, work / submission_file(folds[0]))
        records.append(Record(f"{folder.name}: {len(folds)} folds", official, metrics))
    tta = bool(ensemble and (ensemble.get("ensemble") or {}).get("tta"))
    return records, tta


def report(work: Path) -> pd.DataFrame | None:
    """The table of the run in ``work`` beside the published figures, printed; None if there
    is no submission yet."""
    if not (work / submission_file()).exists():
        print(f"no {work / submission_file()} yet: run the workflow (--run) first")
        return None
    records, tta = collect(work)
    rows = [table_row(record) for record in records]
    rows += [
        dict.fromkeys(COLUMNS, "") | {"model": f"published: {name}", "official": str(value)}
        for name, value in PUBLISHED.items()
    ]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    n_test = len(pd.read_csv(work / TEST_LABELS))
    print(
        f"official: top-1 on the {n_test:,} official test images; the submissions "
        f"{'hold' if tta else 'do not hold'} flip TTA (ensemble.tta)"
    )
    timing = read_json(work / WORKFLOW_TIME)
    if timing is not None:
        print(f"workflow wall time: {timing['seconds'] / 60:.1f} min (the last --run)")
    print(table.to_string(index=False))
    return table


def plain_fit(work: Path, member: str, epochs: int) -> list[float]:
    """The seconds of each of ``epochs`` epochs of a plain ``model.fit`` of ``member``'s
    network on in-memory arrays of its training and validation images (see the module's
    docstring)."""
    import keras

    from fashionai.attributes import pad_anchor
    from fashionai.pixels import decoded_batches
    from fashionai.splits import TRAIN, VALIDATION
    from fashionai.training.augment import mixes
    from fashionai.training.devices import configure_devices
    from fashionai.training.model import (
        build_classifier,
        compile_classifier,
        set_backbone_trainable,
    )
    from fashionai.training.run import balanced_class_weights, plan_phases
    from fashionai.training.settings import TrainSettings
    from fashionai.training.targets import one_hot

    summary = json.loads((work / model_file(SUMMARY_FILE, CATEGORY, member)).read_text())
    settings = TrainSettings.from_config(summary["settings"])
    threads, n_classes = summary["devices"]["intra_op_threads"], len(summary["classes"])
    configure_devices(threads, settings.mixed_precision, log=lambda line: None)
    split = pd.read_csv(work / model_file(SPLIT_FILE, CATEGORY, member))
    size, pad = settings.image_size, pad_anchor(settings.resize, CATEGORY)

    def arrays(subset: str) -> tuple[np.ndarray, np.ndarray]:
        """The subset's images, decoded and resized as the workflow's image cache holds them
        (uint8), and their class indices."""
        rows = split[split["subset"] == subset]
        images = np.zeros((len(rows), size, size, 3), dtype=np.uint8)
        paths = [str(work / path) for path in rows["image"]]
        for index, batch in decoded_batches(paths, size, pad, 256, threads):
            images[index] = np.round(batch.numpy()).astype(np.uint8)
        return images, rows["label_index"].to_numpy()

    (x, labels), (x_validation, validation_labels) = arrays(TRAIN), arrays(VALIDATION)
    y, y_validation = labels, validation_labels
    if settings.target_rows:  # label smoothing, MixUp, CutMix: one-hot target rows
        y, y_validation = one_hot(labels, n_classes), one_hot(validation_labels, n_classes)
    weights = balanced_class_weights(labels, n_classes) if settings.class_weights else None
    phase = plan_phases(settings)[-1]
    left_out = (
        f", without {', '.join(mixes(settings.augmentations))}"
        if mixes(settings.augmentations)
        else ""
    )
    print(
        f"plain model.fit of {member}'s network ({settings.backbone}, {size} px, "
        f"{phase.name} phase, batch {settings.batch_size}, {threads} threads{left_out}) on "
        f"{len(x):,} training and {len(x_validation):,} validation images in memory, "
        f"{epochs} epochs"
    )
    keras.utils.set_random_seed(settings.run_seed)
    model = build_classifier(settings, n_classes, name=CATEGORY).model
    set_backbone_trainable(
        model, phase.backbone_trainable, batchnorm_trainable=phase.batchnorm_trainable
    )
    compile_classifier(
        model,
        phase.learning_rate,
        soft=settings.target_rows,
        settings=settings,
        steps_per_epoch=math.ceil(len(x) / settings.batch_size),
        epochs=epochs,
    )

    stamps: list[float] = []
    clock = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: stamps.append(time.monotonic()),
        on_epoch_end=lambda epoch, logs: stamps.append(time.monotonic()),
    )
    model.fit(
        x,
        y,
        batch_size=settings.batch_size,
        epochs=epochs,
        validation_data=(x_validation, y_validation),
        class_weight=weights,
        shuffle=True,
        callbacks=[clock],
        verbose=0,
    )
    return np.diff(stamps).tolist()


def compare_epochs(work: Path, epochs: int) -> float | None:
    """Fit the first trained member's network plainly (:func:`plain_fit`) and print its
    epochs beside the workflow's; the ratio of their :func:`steady` epochs."""
    records = {member: model_record(work, member, None) for member in members(work)}
    trained = [member for member, record in records.items() if record.summary and record.epochs]
    if not trained:
        print("no trained member with a training log: nothing to compare")
        return None
    member, record = trained[0], records[trained[0]]
    plain = plain_fit(work, member, epochs)
    workflow_epoch, plain_epoch = steady(list(record.epochs)), steady(plain)
    ratio = workflow_epoch / plain_epoch
    print(f"  plain:    first epoch {plain[0]:.1f} s, then {plain_epoch:.1f} s per epoch")
    print(
        f"  workflow: first epoch {record.epochs[0]:.1f} s, then {workflow_epoch:.1f} s per "
        f"epoch ({train_log(CATEGORY, member)})"
    )
    print(
        f"  a workflow epoch takes {ratio:.2f}x a plain one (target: at most {TARGET_EPOCH_RATIO}x)"
    )
    return ratio


def run_workflow(work: Path, extra: list[Path]) -> float:
    """``snakemake`` (the default target) in ``work`` on 2 cores; its wall time (s), also
    written to ``workflow.json`` unless there was nothing to do."""
    configs = [REPO / "config.yaml", work / CONFIG, *extra]
    seconds, output = run_snakemake(work, configs)
    if "Nothing to be done" not in output:
        (work / WORKFLOW_TIME).write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the package's idx-ubyte files")
    parser.add_argument("--subset", type=int, help="the first N training and N test images")
    parser.add_argument("--workdir", type=Path, default=Path("fashion-mnist-bench"))
    parser.add_argument("--run", action="store_true", help="run the workflow, then score")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="more config files (experiments, other recipes)")  # fmt: skip
    parser.add_argument("--plain-epochs", type=int, default=0, metavar="N",
                        help="then fit the same network N epochs with plain model.fit")  # fmt: skip
    args = parser.parse_args()
    if args.plain_epochs == 1:
        parser.error("--plain-epochs: at least 2 (the first epoch traces the model)")
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
    if report(work) is not None and args.plain_epochs:
        compare_epochs(work, args.plain_epochs)


if __name__ == "__main__":
    main()
