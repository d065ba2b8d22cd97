"""benchmarks/fashion_mnist.py on fake idx-ubyte files: the archives, the configuration and the
score. Nothing here needs the Debian package."""

from __future__ import annotations

import gzip
import io
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
    assert table["test accuracy"].iloc[0] == "0.6667"
    submission.write_text("\n".join(rows[:5]) + "\n")
    with pytest.raises(ValueError, match=r"submission\.csv: no row for 1 test image"):
        bench.accuracy(submission, work / bench.TEST_LABELS)
