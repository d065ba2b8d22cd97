"""The split stage (fashionai/splits.py, rules split and split_fold): listing a regrouped tree,
checking each image once with the training decoder, the stratified seeded split, fold files
derived from it, and the split and skipped files as later stages read them."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from training_helpers import add_corrupt_files, limit_threads, make_tree

limit_threads()

from fashionai.annotations import merge_annotations  # noqa: E402
from fashionai.decoding import decode_labels, reconcile  # noqa: E402
from fashionai.images import NOT_A_FILE, UNDECODABLE  # noqa: E402
from fashionai.regrouping import plan_regroup  # noqa: E402
from fashionai.splits import (  # noqa: E402
    COLUMNS,
    SPLIT_COLUMNS,
    fold_split,
    list_images,
    make_split,
    read_skipped,
    read_split,
    split_dataset,
    write_skipped,
    write_split,
)
from fashionai.trees import build_category_tree, regroup_tree  # noqa: E402


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", per_class=(5, 4, 3), size=20)


SLUGS = ["circle", "square", "triangle"]


def quiet(line: str) -> None:
    pass


def test_list_images_follows_labels_json(tree: Path) -> None:
    frame = list_images(tree)
    assert list(frame.columns) == COLUMNS
    assert frame["label"].value_counts().to_dict() == {"circle": 5, "square": 4, "triangle": 3}
    assert frame["label_index"].tolist() == [0] * 5 + [1] * 4 + [2] * 3
    assert frame["image_name"].tolist()[:2] == ["circle_000.jpg", "circle_001.jpg"]
    labels = zip(frame["image"], frame["label"], strict=True)
    assert all(Path(p).is_file() and Path(p).parent.name == label for p, label in labels)
    assert frame.equals(list_images(tree))


def tree_entries(tree: Path) -> set[str]:
    """Every entry of the class folders, counted without the code under test."""
    return {str(path) for folder in tree.iterdir() if folder.is_dir() for path in folder.iterdir()}


def test_every_file_is_split_or_skipped_with_its_reason(tree: Path) -> None:
    """Names decide nothing: odd names train; what the training decoder cannot read, and what
    is not a file, is skipped with its reason."""
    image = (tree / "circle" / "circle_000.jpg").read_bytes()
    for name in ("IMG", "x.JPG", ".hidden.jpg", "photo.png"):
        (tree / "square" / name).write_bytes(image)
    (tree / "circle" / ".DS_Store").write_text("x")
    (tree / "circle" / "notes.txt").write_text("x")
    (tree / "circle" / "folder").mkdir()
    corrupt = add_corrupt_files(tree)
    bmp = io.BytesIO()
    Image.new("RGB", (20, 20)).save(bmp, "BMP")
    (tree / "triangle" / "cut.bmp").write_bytes(bmp.getvalue()[:300])
    lines: list[str] = []
    split, skipped = make_split(tree, 0.3, 0, seed=0, log=lines.append)
    assert set(split["image"]) | set(skipped) == tree_entries(tree)
    assert len(split) + len(skipped) == len(tree_entries(tree))
    names = set(split.loc[split["label"] == "square", "image_name"])
    assert {"IMG", "x.JPG", ".hidden.jpg", "photo.png"} <= names
    reasons = {Path(path).name: why for path, why in skipped.items()}
    undecodable = [".DS_Store", "notes.txt", "cut.bmp", *(path.name for path in corrupt)]
    assert reasons == {"folder": NOT_A_FILE, **dict.fromkeys(undecodable, UNDECODABLE)}
    assert list(skipped) == [path for path in list_images(tree)["image"] if path in skipped]
    assert "skipping 7 image(s) that cannot be used:" in lines
    assert "  circle: 3 train, 2 validation, 0 test" in lines


def test_list_images_class_order_is_that_of_labels_json(tree: Path) -> None:
    labels = json.loads((tree / "labels.json").read_text())
    labels["classes"] = [
        {**entry, "index": i} for i, entry in enumerate(reversed(labels["classes"]))
    ]
    (tree / "labels.json").write_text(json.dumps(labels))
    frame = list_images(tree)
    first_index = frame.groupby("label")["label_index"].first().to_dict()
    assert first_index == {"triangle": 0, "square": 1, "circle": 2}


def test_list_images_allows_empty_classes_and_rejects_strays(tree: Path) -> None:
    for path in (tree / "triangle").iterdir():
        path.unlink()
    (tree / "triangle").rmdir()
    assert set(list_images(tree)["label"]) == {"circle", "square"}
    (tree / "hat").mkdir()
    with pytest.raises(ValueError, match="hat.* is not a class"):
        list_images(tree)


def test_missing_labels_json_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="labels.json: missing"):
        list_images(tmp_path)


def test_odd_names_go_from_the_label_file_to_the_split(tmp_path: Path) -> None:
    """Through the data half and the split as the workflow runs them: content decides what is
    an image, and every file of the regrouped tree is split or skipped."""
    category, classes = "skirt_length_labels", 6
    images = tmp_path / "round1/base/Images" / category
    images.mkdir(parents=True)
    rows = []
    names = [f"{k}_{i}.jpg" for k in range(classes) for i in range(4)]
    names[:4] = ["IMG", "x.JPG", ".hidden.jpg", "tiff.jpg"]
    for i, name in enumerate(names):
        fmt = "TIFF" if name == "tiff.jpg" else "JPEG"
        Image.new("RGB", (8, 8), (40 * (i % 6), 90, 10)).save(images / name, fmt)
        code = "".join("y" if k == i % classes else "n" for k in range(classes))
        rows.append(f"Images/{category}/{name},{category},{code}")
    labels = tmp_path / "round1/base/Annotations/label.csv"
    labels.parent.mkdir(parents=True)
    labels.write_text("\n".join(rows) + "\n")

    merged = merge_annotations([("round1", tmp_path / "round1")])
    decoded, rejected = decode_labels(merged)
    reconcile(merged, decoded, rejected)
    assert {"IMG", "x.JPG", ".hidden.jpg"} <= set(decoded["image_name"])
    assert rejected["reason"].tolist()[:1] == [
        "image unreadable: unsupported image format TIFF (training decodes JPEG, PNG, GIF and BMP)"
    ]
    build_category_tree(decoded, category, tmp_path / "tree", log=lambda line: None)
    plan = plan_regroup(category, None)
    regroup_tree(tmp_path / "tree", tmp_path / "regrouped", plan, log=lambda line: None)
    split, skipped = make_split(tmp_path / "regrouped", 0.2, 0.1, seed=117, log=quiet)
    assert {"IMG", "x.JPG", ".hidden.jpg"} <= set(split["image_name"])
    assert len(split) + len(skipped) == len(tree_entries(tmp_path / "regrouped"))
    assert len(split) == len(decoded) and not skipped


def test_split_is_stratified_reproducible_and_covers_every_class(tree: Path) -> None:
    frame = list_images(tree)
    split = split_dataset(frame, SLUGS, 0.3, 0, seed=117)
    assert split[list(frame.columns)].equals(frame)
    counts = split.groupby(["label", "subset"]).size().to_dict()
    assert counts == {
        ("circle", "train"): 3,
        ("circle", "validation"): 2,
        ("square", "train"): 3,
        ("square", "validation"): 1,
        ("triangle", "train"): 2,
        ("triangle", "validation"): 1,
    }
    assert split.equals(split_dataset(frame, SLUGS, 0.3, 0, seed=117))
    others = [split_dataset(frame, SLUGS, 0.3, 0, seed=s)["subset"].tolist() for s in range(1, 6)]
    assert any(subsets != split["subset"].tolist() for subsets in others)


def many(per_class: tuple[int, ...]) -> tuple[pd.DataFrame, list[str]]:
    """A listing of ``per_class`` images per class, no files needed."""
    slugs = [f"class_{i}" for i in range(len(per_class))]
    rows = [
        (f"{slug}/{j:04d}.jpg", f"{j:04d}.jpg", slug, i)
        for i, (slug, n) in enumerate(zip(slugs, per_class, strict=True))
        for j in range(n)
    ]
    return pd.DataFrame(rows, columns=COLUMNS), slugs


def test_train_validation_and_test_are_disjoint_shares_of_each_class() -> None:
    frame, slugs = many((100, 40, 7, 3))
    split = split_dataset(frame, slugs, 0.2, 0.1, seed=117)
    assert len(split) == len(frame) and split["image"].is_unique  # each image in one part
    counts = split.groupby(["label", "subset"]).size().unstack(fill_value=0)
    assert counts.loc["class_0"].to_dict() == {"test": 10, "train": 70, "validation": 20}
    assert counts.loc["class_1"].to_dict() == {"test": 4, "train": 28, "validation": 8}
    assert counts.loc["class_2"].to_dict() == {"test": 1, "train": 5, "validation": 1}
    assert counts.loc["class_3"].to_dict() == {"test": 1, "train": 1, "validation": 1}
    assert split.equals(split_dataset(frame.copy(), list(slugs), 0.2, 0.1, seed=117))
    assert not split.equals(split_dataset(frame, slugs, 0.2, 0.1, seed=118))


def test_the_original_split_is_test_split_zero() -> None:
    """validation_split 0.3 with test_split 0 is the original's split: same draws, no test."""
    frame, slugs = many((50, 9, 2))
    split = split_dataset(frame, slugs, 0.3, 0, seed=117)
    assert set(split["subset"]) == {"train", "validation"}
    rng = np.random.default_rng(117)  # the original: one permutation per class, in order
    for label, n in enumerate((50, 9, 2)):
        rows = np.flatnonzero(frame["label_index"].to_numpy() == label)
        n_val = min(max(int(np.floor(n * 0.3 + 0.5)), 1), n - 1)
        held_out = set(frame["image"].to_numpy()[rows[rng.permutation(n)[:n_val]]])
        assert held_out == set(split.loc[split["subset"] == "validation", "image"]) & set(
            frame["image"].to_numpy()[rows]
        )


@pytest.mark.parametrize(
    ("per_class", "test_split", "message"),
    [
        ((5, 2, 5), 0.1, "class 'class_1' has 2 image(s), too few for 3 parts"),
        ((5, 1, 5), 0, "class 'class_1' has 1 image(s), too few for 2 parts"),
        ((5, 5, 0), 0, "class 'class_2' has 0 image(s), too few for 2 parts"),
    ],
)
def test_a_class_too_small_for_every_part_is_refused_by_name(per_class, test_split, message):
    frame, slugs = many(per_class)
    with pytest.raises(ValueError, match=re.escape(message)):
        split_dataset(frame, slugs, 0.2, test_split, seed=0)


def test_split_edge_cases() -> None:
    frame, slugs = many((3, 4))
    high = split_dataset(frame, slugs, 0.6, 0.3, seed=0)  # each part keeps one image
    assert (high.groupby("label")["subset"].apply(lambda s: (s == "train").sum()) == 1).all()
    assert (high.groupby("label")["subset"].nunique() == 3).all()
    for validation_split, test_split in ((1.0, 0), (0, 0.1), (0.5, 0.5), (0.2, -0.1)):
        with pytest.raises(ValueError, match="validation_split"):
            split_dataset(frame, slugs, validation_split, test_split, seed=0)


def test_the_split_and_skipped_files_are_read_as_written(tree: Path, tmp_path: Path) -> None:
    add_corrupt_files(tree)
    split, skipped = make_split(tree, 0.2, 0.2, seed=117, log=quiet)
    write_split(tmp_path / "out" / "split.csv", split)
    write_skipped(tmp_path / "out" / "skipped.csv", skipped)
    text = (tmp_path / "out" / "split.csv").read_text()
    assert text.splitlines()[0] == ",".join(SPLIT_COLUMNS)  # a model folder's split.csv
    assert text == split.to_csv(index=False)
    pd.testing.assert_frame_equal(read_split(tmp_path / "out" / "split.csv", SLUGS), split)
    assert read_skipped(tmp_path / "out" / "skipped.csv") == skipped and len(skipped) == 3
    # Odd names (a file named like a missing value) stay text.
    odd = split.assign(image_name="NA", image=lambda f: f["label"] + "/NA")
    write_split(tmp_path / "odd.csv", odd)
    assert (read_split(tmp_path / "odd.csv")["image_name"] == "NA").all()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="subset"), r"split.csv: not a split file, no column 'subset'"),
        (lambda f: f.assign(subset="holdout"), r"split.csv: row 2: .*subset 'holdout'"),
        (lambda f: f.assign(label_index=f["label_index"] + 1),
         r"split.csv: row 2: label 'circle' with label_index 1: .*\(classes: circle, square"),
    ],
)  # fmt: skip
def test_a_split_file_that_does_not_fit_the_tree_is_named(
    tree: Path, tmp_path: Path, edit, message: str
) -> None:
    split, _ = make_split(tree, 0.3, 0, seed=1, log=quiet)
    path = tmp_path / "split.csv"
    path.write_text(edit(split).to_csv(index=False))
    with pytest.raises(ValueError, match=message):
        read_split(path, SLUGS)


def test_a_bad_tree_is_named(tree: Path, tmp_path: Path) -> None:
    (tree / "hat").mkdir()
    with pytest.raises(ValueError, match=r"tree/hat is not a class of .*labels.json"):
        make_split(tree, 0.3, 0, seed=0, log=quiet)
    (tree / "hat").rmdir()
    (tree / "triangle" / "triangle_000.jpg").unlink()
    with pytest.raises(ValueError, match=r"class 'triangle' has 2 image\(s\), too few for 3"):
        make_split(tree, 0.2, 0.1, seed=0, log=quiet)
    with pytest.raises(FileNotFoundError, match="labels.json: missing"):
        make_split(tmp_path, 0.3, 0, seed=0, log=quiet)


def test_a_fold_file_is_derived_from_the_category_split_alone(tree: Path, tmp_path: Path) -> None:
    """As rule split_fold makes it: the category's split file read back and dealt into folds,
    no image looked at (the images are gone); the test part is the category's."""
    make_tree(tree, per_class=(9, 8, 7), size=20, seed=5)
    split, _ = make_split(tree, 0.2, 0.2, seed=117, log=quiet)
    write_split(tmp_path / "split.csv", split)
    for path in tree.rglob("*.jpg"):
        path.unlink()
    base = read_split(tmp_path / "split.csv")
    folds = [fold_split(base, 3, fold, seed=117) for fold in (1, 2, 3)]
    for fold in folds:
        assert fold[COLUMNS].equals(split[COLUMNS])
        assert ((fold["subset"] == "test") == (split["subset"] == "test")).all()
    validation = [set(fold.loc[fold["subset"] == "validation", "image"]) for fold in folds]
    assert set().union(*validation) == set(split.loc[split["subset"] != "test", "image"])
    assert sum(map(len, validation)) == (split["subset"] != "test").sum()
