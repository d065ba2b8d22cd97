"""benchmarks/fashion_mnist.py on fake idx-ubyte files and hand-made run records: the archives,
the configuration, the score and the report's table. Nothing here needs the Debian package or
runs TensorFlow."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from benchmarks import fashion_mnist as bench
from fashionai.annotations import read_annotation_file
from fashionai.config import validate_config
from fashionai.outputs import (
    ENSEMBLE,
    METRICS_FILE,
    SUMMARY_FILE,
    eval_file,
    model_file,
    submission_file,
    train_log,
)

CATEGORY = bench.CATEGORY


def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` (uint8) as an idx-ubyte gzip file, like the package's."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Fake Fashion-MNIST: 12 training and 6 test images, each a flat grey level."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for part, n in (("train", 12), ("test", 6)):
        images_file, labels_file = bench.FILES[part]
        levels = np.arange(n) * 20 + 5
        write_idx(folder / images_file, np.broadcast_to(levels[:, None, None], (n, 28, 28)))
        write_idx(folder / labels_file, np.arange(n) % 10)
    return folder


def test_read_idx_round_trips_and_refuses_other_files(data: Path, tmp_path: Path) -> None:
    images = bench.read_idx(data / bench.FILES["train"][0])
    assert images.shape == (12, 28, 28) and images[3, 0, 0] == 65
    assert bench.read_idx(data / bench.FILES["train"][1]).tolist() == [*range(10), 0, 1]
    other = tmp_path / "other.gz"
    with gzip.open(other, "wb") as handle:
        handle.write(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match=r"other\.gz: not an idx-ubyte file"):
        bench.read_idx(other)


def test_convert_writes_fashionai_archives_and_a_valid_config(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    assert bench.convert(data, work, subset=10) == {"train": 10, "test": 6}
    with tarfile.open(work / bench.TRAIN_ARCHIVE) as tar:
        names = tar.getnames()
        label_csv = tar.extractfile("train/Annotations/label.csv").read().decode()
        first = label_csv.splitlines()[3].split(",")
        pixels = np.asarray(Image.open(io.BytesIO(tar.extractfile(f"train/{first[0]}").read())))
    assert len(names) == 11
    rows = [line.split(",") for line in label_csv.splitlines()]
    assert len(rows) == 10 and all(row[1] == "neckline_design_labels" for row in rows)
    assert first[2] == "nnnynnnnnn"  # image 3 is class 3 (Dress)
    assert first[0].startswith("Images/neckline_design_labels/") and len(first[0]) == 66
    assert pixels.shape == (28, 28) and abs(int(pixels.mean()) - 65) <= 1
    extracted = tmp_path / "extracted"
    with tarfile.open(work / bench.TRAIN_ARCHIVE) as tar:
        tar.extractall(extracted, filter="data")
    table = read_annotation_file(extracted / "train/Annotations/label.csv")
    assert len(table) == 10 and (extracted / "train" / table["image_path"]).map(Path.is_file).all()
    with tarfile.open(work / bench.TEST_ARCHIVE) as tar:
        question = tar.extractfile("rank/Tests/question.csv").read().decode().splitlines()
    assert len(question) == 6 and question[0].endswith(",neckline_design_labels,?")
    labels = pd.read_csv(work / bench.TEST_LABELS)
    assert labels["label_index"].tolist() == [0, 1, 2, 3, 4, 5]
    assert set(labels["image_name"]).isdisjoint(row[0].rsplit("/")[-1] for row in rows)
    config = yaml.safe_load((work / bench.CONFIG).read_text())
    monkeypatch.chdir(work)
    validate_config(config)
    assert config["train"]["image_size"] == 28 and config["questions"] == bench.TEST_ARCHIVE


def test_accuracy_scores_the_submission_on_the_official_labels(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    bench.convert(data, work)
    labels = pd.read_csv(work / bench.TEST_LABELS)
    rows = []
    for i, (name, label) in enumerate(
        labels[["image_name", "label_index"]].itertuples(index=False)
    ):
        probabilities = np.full(10, 0.05)
        probabilities[label if i < 4 else (label + 1) % 10] = 0.55  # 4 of 6 right
        joined = ";".join(f"{p:.2f}" for p in probabilities)
        rows.append(f"Images/neckline_design_labels/{name},neckline_design_labels,{joined}")
    submission = work / "results/submission.csv"
    submission.parent.mkdir()
    submission.write_text("\n".join(rows) + "\n")
    assert bench.accuracy(submission, work / bench.TEST_LABELS) == (pytest.approx(4 / 6), 6)
    table = bench.report(work)
    assert table["official"].iloc[0] == "0.6667"
    assert table["own test"].iloc[0] == "" and table["model"].iloc[0] == "submission"
    submission.write_text("\n".join(rows[:5]) + "\n")
    with pytest.raises(ValueError, match=r"submission\.csv: no row for 1 test image"):
        bench.accuracy(submission, work / bench.TEST_LABELS)


LOG = """\
[     0.2s] settings: TrainSettings(backbone='SmallCNN', ...)
[    12.0s] epoch 0/3 [fine_tune] loss 2.1 acc 0.3 val_loss 1.9 val_acc 0.4 9.5 s, 1,263 images/s best, at most 29 s left in phase fine_tune
[    16.5s] epoch 1/3 [fine_tune] loss 1.1 acc 0.6 val_loss nan val_acc 0.6 4.1 s, 2,927 images/s best, at most 14 s left in phase fine_tune
[    20.5s] epoch 2/3 [fine_tune] loss 0.9 acc 0.7 val_loss 0.9 val_acc 0.6 3.8 s, 3,158 images/s, at most 6 s left in phase fine_tune
[    26.5s] epoch 3/3 [fine_tune] loss 0.8 acc 0.7 val_loss 0.9 val_acc 0.6 3.9 s, 3,077 images/s (early stop)
[    30.0s] best val_accuracy 0.6000 at epoch 1
"""  # noqa: E501


def test_epoch_times_count_each_epoch_from_line_to_line() -> None:
    # The first epoch's own seconds, then line to line: the backup between epochs counts.
    assert bench.epoch_times(LOG) == pytest.approx([9.5, 4.5, 4.0, 6.0])
    assert bench.steady(bench.epoch_times(LOG)) == pytest.approx(4.5)  # median after the first
    assert bench.steady([7.0]) == 7.0 and bench.steady([]) is None
    assert bench.epoch_times("no epochs here\n") == []


def member_metrics(accuracy: float, tta: float | None = None, n: int = 6) -> dict:
    """A model's metrics.json, the keys the report reads."""
    metrics = {"evaluated_on": "test", "accuracy": accuracy, "n_images": n}
    if tta is not None:
        metrics["flip_tta"] = {"accuracy": tta}
    return metrics


def out_of_fold_metrics(accuracy: float, test: float, without_tta: float | None = None) -> dict:
    """Rule out_of_fold's metrics.json of experiment k's two folds, the keys the report reads;
    with ``without_tta`` (eval.tta) ``test`` is flip TTA's and ``without_tta`` the plain one."""
    folds = ["k-fold1", "k-fold2"]
    ensemble = {"members": folds, "tta": without_tta is not None}
    block = {"accuracy": test, "n_images": 6, "ensemble": ensemble}
    if without_tta is not None:
        block["without_tta"] = {"accuracy": without_tta}
    return {
        **member_metrics(accuracy, n=12),
        "evaluated_on": "out_of_fold",
        "folds": folds,
        "test": block,
    }


SUMMARY = {"epochs_run": 4, "best_epoch": 1, "seconds": 90.0, "images": {"train": 900}}


def test_table_row_reads_each_kind_of_metrics() -> None:
    model = bench.Record("member default", 0.9, member_metrics(0.8, 0.85), SUMMARY, (9.5, 4.5))
    assert bench.table_row(model) == {
        "model": "member default", "official": "0.9000", "own test": "0.8000",
        "own TTA": "0.8500", "own images": "6", "out-of-fold": "", "epochs": "4",
        "best": "1", "train min": "1.5", "epoch s": "4.5", "img/s": "200",
    }  # fmt: skip
    ensemble = {**member_metrics(0.75), "without_tta": {"accuracy": 0.7},
                "ensemble": {"members": ["a", "b"], "tta": True}}  # fmt: skip
    row = bench.table_row(bench.Record("submission", 0.5, ensemble))
    assert (row["own test"], row["own TTA"], row["epochs"]) == ("0.7000", "0.7500", "")
    untta = {**member_metrics(0.75), "ensemble": {"members": ["a", "b"], "tta": False}}
    row = bench.table_row(bench.Record("submission", None, untta))
    assert (row["official"], row["own test"], row["own TTA"]) == ("", "0.7500", "")
    out_of_fold = out_of_fold_metrics(0.6, test=0.7)
    row = bench.table_row(bench.Record("k: 2 folds", None, out_of_fold))
    assert (row["out-of-fold"], row["own test"], row["own TTA"], row["own images"]) == (
        "0.6000", "0.7000", "", "6",
    )  # fmt: skip
    flipped = out_of_fold_metrics(0.6, test=0.7, without_tta=0.68)  # eval.tta
    row = bench.table_row(bench.Record("k: 2 folds", None, flipped))
    assert (row["own test"], row["own TTA"]) == ("0.6800", "0.7000")


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_submission(path: Path, labels: pd.DataFrame, right: int, top: float = 0.55) -> None:
    """Answers for every test image, the first ``right`` of them right, each class answered
    with probability ``top``."""
    rows = []
    for i, (name, label) in enumerate(labels.itertuples(index=False)):
        probabilities = np.full(10, 0.05)
        probabilities[label if i < right else (label + 1) % 10] = top
        joined = ";".join(f"{p:.2f}" for p in probabilities)
        rows.append(f"Images/neckline_design_labels/{name},neckline_design_labels,{joined}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def test_report_has_a_row_per_member_and_the_folds_beside_the_ensemble(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    bench.convert(data, work)
    labels = pd.read_csv(work / bench.TEST_LABELS)
    write_submission(work / submission_file(), labels, right=5)
    for member, right, top in (("default", 4, 0.55), ("k-fold1", 3, 0.55), ("k-fold2", 5, 0.9)):
        write_submission(work / submission_file(member), labels, right, top)
        write_json(work / model_file(SUMMARY_FILE, CATEGORY, member), SUMMARY)
        write_json(work / eval_file(METRICS_FILE, CATEGORY, member), member_metrics(0.5))
    log = work / train_log(CATEGORY, "default")
    log.parent.mkdir(parents=True)
    log.write_text(LOG)
    ensemble = {
        **member_metrics(0.8),
        "without_tta": {"accuracy": 0.7},
        "ensemble": {"members": ["default", "k-fold1", "k-fold2"], "tta": True},
    }
    write_json(work / eval_file(METRICS_FILE, CATEGORY, ENSEMBLE), ensemble)
    write_json(work / eval_file(METRICS_FILE, CATEGORY, "k"), out_of_fold_metrics(0.6, test=0.9))
    write_json(work / bench.WORKFLOW_TIME, {"seconds": 150.0})

    table = bench.report(work).set_index("model")
    printed = capsys.readouterr().out
    assert "the submissions hold flip TTA" in printed and "workflow wall time: 2.5 min" in printed
    assert list(table.index[:5]) == [
        "submission (ensemble)", "member default", "member k-fold1", "member k-fold2",
        "k: 2 folds",
    ]  # fmt: skip
    assert table.loc["submission (ensemble)", ["official", "own test", "own TTA"]].tolist() == [
        "0.8333", "0.7000", "0.8000",
    ]  # fmt: skip
    default = table.loc["member default"]
    assert default[["official", "epochs", "best", "epoch s", "img/s"]].tolist() == [
        "0.6667", "4", "1", "4.5", "200",
    ]  # fmt: skip
    assert table.loc["member k-fold1", "epoch s"] == ""  # no training log
    # The folds' ensemble on the official set: the mean of their probabilities (k-fold2's
    # surer answers win: 5 of 6, not the mean of 3 and 5), beside its out-of-fold and test
    # figures.
    folds = table.loc["k: 2 folds"]
    assert folds[["official", "out-of-fold", "own test", "own images"]].tolist() == [
        "0.8333", "0.6000", "0.9000", "6",
    ]  # fmt: skip
    assert table.loc["member k-fold1", "official"] == "0.5000"
    assert "published: ResNet18" in table.index


def test_report_without_an_ensemble_shows_the_single_model_and_no_tta(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    bench.convert(data, work)
    labels = pd.read_csv(work / bench.TEST_LABELS)
    write_submission(work / submission_file(), labels, right=4)
    write_submission(work / submission_file("default"), labels, right=4)
    write_json(work / eval_file(METRICS_FILE, CATEGORY, "default"), member_metrics(0.5, 0.55))
    table = bench.report(work).set_index("model")
    assert "do not hold flip TTA" in capsys.readouterr().out
    assert table.loc["submission (default)", ["official", "own test", "own TTA"]].tolist() == [
        "0.6667", "0.5000", "0.5500",
    ]  # fmt: skip
