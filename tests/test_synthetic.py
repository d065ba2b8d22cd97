"""The synthetic dataset: real archive layout, faults as documented, learnable classes."""

from __future__ import annotations

import filecmp
import hashlib
import io
import itertools
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from demo.synthetic import (
    ANNOTATION_FILES,
    ARCHIVE_NAMES,
    ARCHIVE_ROOTS,
    MANIFEST_COLUMNS,
    generate_dataset,
    main,
    nearest_classes,
    render_image,
)
from fashionai.attributes import ATTRIBUTES

KEY_OF = {name: key for key, name in ARCHIVE_NAMES.items()}
HEX_IMAGE = re.compile(r"Images/([a-z_]+)/([0-9a-f]{32})\.jpg")
SIDECAR = re.compile(r"base/Images/([a-z_]+)/\._([0-9a-f]{32})\.jpg")


def read_members(path: Path) -> dict[str, bytes]:
    """Every file member (not directories) of a tar or zip, with its bytes."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("synthetic")
    manifest = generate_dataset(out, images_per_class=3, image_size=32, log=lambda _: None)
    return out, manifest


@pytest.fixture(scope="module")
def members(dataset: tuple[Path, pd.DataFrame]) -> dict[str, dict[str, bytes]]:
    out, _ = dataset
    return {key: read_members(out / name) for key, name in ARCHIVE_NAMES.items()}


def test_archives_and_manifest_written(dataset: tuple[Path, pd.DataFrame]) -> None:
    out, manifest = dataset
    for name in ARCHIVE_NAMES.values():
        assert (out / name).is_file()
    on_disk = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert tuple(on_disk.columns) == MANIFEST_COLUMNS
    pd.testing.assert_frame_equal(on_disk, manifest, check_dtype=False)
    assert set(manifest["archive"]) == {ARCHIVE_NAMES[k] for k in ("round1", "warmup", "round2")}


def test_member_names_follow_the_real_layout(
    dataset: tuple[Path, pd.DataFrame], members: dict[str, dict[str, bytes]]
) -> None:
    _, manifest = dataset
    for key in ("round1", "warmup", "round2"):
        root = ARCHIVE_ROOTS[key]
        rows = manifest[manifest["archive"] == ARCHIVE_NAMES[key]]
        present = rows[rows["expected"] != "image_missing"]
        expected = {f"{root}/{p}" for p in present["image_path"]} | {ANNOTATION_FILES[key]}
        names = set(members[key])
        sidecars = {n for n in names if SIDECAR.fullmatch(n)}
        assert names - sidecars == expected
        assert len(sidecars) == (2 if key == "round1" else 0)
        for path in present["image_path"]:
            assert HEX_IMAGE.fullmatch(path)
    assert ANNOTATION_FILES == {
        "round1": "base/Annotations/label.csv",
        "warmup": "web/Annotations/skirt_length_labels.csv",
        "round2": "train/Annotations/label.csv",
        "questions": "rank/Tests/question.csv",
    }
    warmup = manifest[manifest["archive"] == ARCHIVE_NAMES["warmup"]]
    assert set(warmup["attribute"]) == {"skirt_length_labels"}
    with zipfile.ZipFile(dataset[0] / ARCHIVE_NAMES["round2"]) as archive:
        assert {"train/", "train/Images/", "train/Annotations/"} <= set(archive.namelist())


def test_sidecars_are_junk_beside_real_images(members: dict[str, dict[str, bytes]]) -> None:
    for name, data in members["round1"].items():
        if match := SIDECAR.fullmatch(name):
            attribute, image = match.groups()
            assert f"base/Images/{attribute}/{image}.jpg" in members["round1"]
            assert len(data) < 200
            with pytest.raises(OSError):
                Image.open(io.BytesIO(data))


def test_annotation_files_match_manifest(
    dataset: tuple[Path, pd.DataFrame], members: dict[str, dict[str, bytes]]
) -> None:
    _, manifest = dataset
    for key in ("round1", "warmup", "round2"):
        raw = members[key][ANNOTATION_FILES[key]]
        if key == "round2":
            assert raw.startswith(b"\xef\xbb\xbf")
            assert raw.count(b"\r\n") == raw.count(b"\n") > 0
            text = raw.decode("utf-8-sig")
            lines = text.split("\r\n")
        else:
            assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
            lines = raw.decode().split("\n")
        assert lines[-1] == ""
        rows = manifest[manifest["archive"] == ARCHIVE_NAMES[key]]
        written = [tuple(line.split(",")) for line in lines[:-1]]
        assert written == list(
            zip(rows["image_path"], rows["attribute"], rows["code"], strict=True)
        )
        assert list(rows["line"]) == list(range(1, len(rows) + 1))
        assert set(rows["annotation"]) == {ANNOTATION_FILES[key]}


def test_every_class_has_valid_used_rows(dataset: tuple[Path, pd.DataFrame]) -> None:
    _, manifest = dataset
    used = manifest[manifest["expected"] == "used"]
    for attribute, names in ATTRIBUTES.items():
        rows = used[used["attribute"] == attribute]
        assert set(rows["class_index"]) == set(range(len(names)))
        for code, k in zip(rows["code"], rows["class_index"], strict=True):
            assert len(code) == len(names) and set(code) <= set("ynm")
            assert code.count("y") == 1 and code.index("y") == k
    counts = used.groupby(["attribute", "class_index"]).size()
    assert counts.min() >= 3  # 3 per class, plus the valid oddities
    with_maybe = manifest["code"].str.contains("m").mean()
    assert 0.05 < with_maybe < 0.45


def test_regular_images_split_between_rounds(dataset: tuple[Path, pd.DataFrame]) -> None:
    _, manifest = dataset
    used = manifest[manifest["expected"] == "used"]
    for (attribute, _k), group in used.groupby(["attribute", "class_index"]):
        archives = group["archive"].map(KEY_OF).value_counts()
        assert archives["round1"] >= 2
        if attribute == "skirt_length_labels":
            assert archives.get("warmup", 0) >= 1


def test_faults_are_listed_with_their_reasons(
    dataset: tuple[Path, pd.DataFrame], members: dict[str, dict[str, bytes]]
) -> None:
    _, manifest = dataset
    counts = manifest["expected"].value_counts()
    reasons = ("wrong_length", "no_y", "multiple_y", "unknown_attribute", "image_missing")
    for reason in (*reasons, "image_unreadable", "conflicting_codes"):
        assert 1 <= counts[reason] <= 2, reason
    assert counts["duplicate"] == 1

    def rows(reason: str) -> pd.DataFrame:
        return manifest[manifest["expected"] == reason]

    def data(row: pd.Series) -> bytes | None:
        key = KEY_OF[row["archive"]]
        return members[key].get(f"{ARCHIVE_ROOTS[key]}/{row['image_path']}")

    for _, row in rows("wrong_length").iterrows():
        assert len(row["code"]) != len(ATTRIBUTES[row["attribute"]])
    for _, row in rows("no_y").iterrows():
        assert "y" not in row["code"]
    for _, row in rows("multiple_y").iterrows():
        assert row["code"].count("y") == 2
    assert not set(rows("unknown_attribute")["attribute"]) & set(ATTRIBUTES)
    for _, row in rows("image_missing").iterrows():
        assert data(row) is None
    unreadable = [data(row) for _, row in rows("image_unreadable").iterrows()]
    assert b"" in unreadable
    truncated = [d for d in unreadable if d]
    assert len(truncated) == 1
    with pytest.raises(OSError):
        Image.open(io.BytesIO(truncated[0])).load()
    for reason in ("wrong_length", "no_y", "multiple_y", "unknown_attribute"):
        assert set(rows(reason)["class_index"]) == {-1}

    conflict = rows("conflicting_codes")
    assert conflict["image_path"].nunique() == 1 and conflict["code"].nunique() == 2
    assert set(conflict["archive"].map(KEY_OF)) == {"round1", "round2"}
    first, second = (data(row) for _, row in conflict.iterrows())
    assert first == second and first

    duplicate = rows("duplicate").iloc[0]
    twins = manifest[manifest["image_path"] == duplicate["image_path"]]
    assert list(twins["expected"]) == ["used", "duplicate"]
    assert twins["code"].nunique() == 1
    assert list(twins["archive"].map(KEY_OF)) == ["round1", "round2"]


def test_valid_oddities_decode(
    dataset: tuple[Path, pd.DataFrame], members: dict[str, dict[str, bytes]]
) -> None:
    _, manifest = dataset
    used = manifest[manifest["expected"] == "used"]
    formats = {}
    for _, row in used.iterrows():
        key = KEY_OF[row["archive"]]
        image = Image.open(io.BytesIO(members[key][f"{ARCHIVE_ROOTS[key]}/{row['image_path']}"]))
        image.load()
        assert image.size == (32, 32)
        formats[(image.format, image.mode)] = formats.get((image.format, image.mode), 0) + 1
    assert formats[("PNG", "RGB")] == 1
    assert formats[("JPEG", "L")] == 1
    assert formats[("JPEG", "RGB")] == len(used) - 2


def test_questions_archive(
    dataset: tuple[Path, pd.DataFrame], members: dict[str, dict[str, bytes]]
) -> None:
    out, _ = dataset
    files = members["questions"]
    lines = files["rank/Tests/question.csv"].decode().splitlines()
    assert len(lines) == 10 * len(ATTRIBUTES)
    answers = (out / "question_answers.csv").read_text().splitlines()
    assert len(answers) == len(lines)
    for line, answer in zip(lines, answers, strict=True):
        path, attribute, code = line.split(",")
        assert code == "?"
        assert HEX_IMAGE.fullmatch(path) and path.split("/")[1] == attribute
        assert f"rank/{path}" in files
        a_path, a_attribute, a_code = answer.split(",")
        assert (a_path, a_attribute) == (path, attribute)
        assert len(a_code) == len(ATTRIBUTES[attribute]) and a_code.count("y") == 1


def test_classes_look_different() -> None:
    """Class-mean images differ clearly, and more than two samples of one class do."""
    size = 32
    for attribute, names in ATTRIBUTES.items():
        means = []
        for k in range(len(names)):
            rng = np.random.default_rng(k)
            stack = np.stack([render_image(attribute, k, rng, size) for _ in range(6)])
            means.append(stack.astype(np.float32).mean(axis=0))
        gaps = [np.abs(a - b).mean() for a, b in itertools.combinations(means, 2)]
        assert min(gaps) > 8.0, (attribute, min(gaps))


def test_render_image_contract() -> None:
    image = render_image("collar_design_labels", 2, np.random.default_rng(0), 48)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert image.std() > 10
    again = render_image("collar_design_labels", 2, np.random.default_rng(0), 48)
    assert np.array_equal(image, again)
    with pytest.raises(ValueError):
        render_image("collar_design_labels", 5, np.random.default_rng(0), 48)
    with pytest.raises(KeyError):
        render_image("hat_labels", 0, np.random.default_rng(0), 48)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    options = dict(images_per_class=1, image_size=16, questions_per_attribute=2, log=print)
    first = generate_dataset(tmp_path / "a", **options)
    second = generate_dataset(tmp_path / "b", **options)
    pd.testing.assert_frame_equal(first, second)
    for name in [*ARCHIVE_NAMES.values(), "manifest.csv", "question_answers.csv"]:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    other = generate_dataset(tmp_path / "c", seed=5, **options)
    assert set(other["image_path"]).isdisjoint(first["image_path"])


def test_no_faults_and_cli(tmp_path: Path) -> None:
    options = "--images-per-class 2 --image-size 16 --questions-per-attribute 1 --no-faults"
    assert main([str(tmp_path), *options.split()]) == 0
    manifest = pd.read_csv(tmp_path / "manifest.csv")
    assert set(manifest["expected"]) == {"used"}
    assert len(manifest) == 2 * sum(map(len, ATTRIBUTES.values()))
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, images_per_class=0)


def test_difficulty_zero_keeps_the_easy_images() -> None:
    """The easy set's pixels, as they were before the difficulty setting existed."""
    expected = {
        (
            "skirt_length_labels",
            2,
        ): "5c8e527336095bbd5f8fd96e8d2405f66e3c291da94154d516bffa2a8e9fa047",
        (
            "collar_design_labels",
            3,
        ): "3634f4260847dda1af22aa927aac58e1658cffdf16cc6b383b5fc0ddec32bbfa",
    }
    for (attribute, k), digest in expected.items():
        image = render_image(attribute, k, np.random.default_rng(5), 24, difficulty=0.0)
        assert hashlib.sha256(image.tobytes()).hexdigest() == digest


def colour_accuracy(attribute: str, difficulty: float) -> float:
    """How well an image's colours tell its class: leave-one-out accuracy of the nearest class
    mean of hue histograms (saturated pixels only)."""
    n_classes, per_class = len(ATTRIBUTES[attribute]), 8
    rng = np.random.default_rng(3)
    features = []
    for k in range(n_classes):
        for _ in range(per_class):
            image = Image.fromarray(render_image(attribute, k, rng, 16, difficulty))
            hsv = np.asarray(image.convert("HSV")).reshape(-1, 3)
            hues = hsv[hsv[:, 1] > 80, 0]
            features.append(np.histogram(hues, bins=12, range=(0, 256))[0] / max(len(hues), 1))
    features = np.reshape(features, (n_classes, per_class, -1))
    sums = features.sum(axis=1)
    correct = 0
    for k in range(n_classes):
        for feature in features[k]:
            means = sums / per_class
            means[k] = (sums[k] - feature) / (per_class - 1)
            correct += int(np.abs(means - feature).sum(axis=1).argmin() == k)
    return correct / (n_classes * per_class)


@pytest.mark.parametrize("attribute", ["skirt_length_labels", "neckline_design_labels"])
def test_colours_stop_telling_the_class_when_hard(attribute: str) -> None:
    easy = colour_accuracy(attribute, 0.0)
    hard = colour_accuracy(attribute, 1.0)
    assert easy > 0.85 and hard < easy - 0.3, (easy, hard)


def test_nearest_classes_are_neighbouring_drawings() -> None:
    for attribute, names in ATTRIBUTES.items():
        nearest = nearest_classes(attribute)
        assert len(nearest) == len(names)
        assert all(0 <= j < len(names) and j != k for k, j in enumerate(nearest)), attribute
    skirt = nearest_classes("skirt_length_labels")
    assert all(abs(skirt[k] - k) == 1 for k in range(1, 6))  # the next length up or down


def test_maybe_codes_go_to_the_nearest_class_when_hard(tmp_path: Path) -> None:
    options = dict(images_per_class=4, image_size=16, faults=False, log=lambda _: None)
    shares = {}
    for difficulty in (0.0, 0.6):
        manifest = generate_dataset(tmp_path / str(difficulty), difficulty=difficulty, **options)
        maybe = manifest[manifest["code"].str.contains("m")]
        on_nearest = [
            code[nearest_classes(attribute)[k]] == "m"
            for attribute, code, k in maybe[["attribute", "code", "class_index"]].itertuples(
                index=False
            )
        ]
        shares[difficulty] = (np.mean(on_nearest), len(maybe) / len(manifest))
    assert shares[0.6][0] == 1.0 and shares[0.0][0] < 0.6
    assert shares[0.6][1] > shares[0.0][1]  # the ambiguous images are all marked


def test_difficulty_outside_0_to_1_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="difficulty must be between 0 and 1, not 1.5"):
        generate_dataset(tmp_path, difficulty=1.5, log=lambda _: None)
    with pytest.raises(ValueError, match="difficulty must be between 0 and 1, not -0.1"):
        render_image("skirt_length_labels", 1, np.random.default_rng(0), 16, -0.1)
