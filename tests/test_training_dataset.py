"""Listing a regrouped tree, the stratified split, decoding, and the tf.data pipelines."""

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
from fashionai.pixels import decode_and_resize, find_undecodable, load_images  # noqa: E402
from fashionai.regrouping import plan_regroup  # noqa: E402
from fashionai.training.dataset import (  # noqa: E402
    COLUMNS,
    UNDECODABLE,
    list_images,
    make_dataset,
    prepare_split,
    split_dataset,
)
from fashionai.training.settings import TrainSettings  # noqa: E402
from fashionai.trees import build_category_tree, regroup_tree  # noqa: E402


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", per_class=(5, 4, 3), size=20)


SLUGS = ["circle", "square", "triangle"]


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
    """Names decide nothing: odd names train, non-images are skipped and say why."""
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
    settings = TrainSettings(validation_split=0.3, test_split=0, seed=0)
    split, skipped = prepare_split(tree, SLUGS, settings, log=lambda line: None)
    assert set(split["image"]) | set(skipped) == tree_entries(tree)
    assert len(split) + len(skipped) == len(tree_entries(tree))
    names = set(split.loc[split["label"] == "square", "image_name"])
    assert {"IMG", "x.JPG", ".hidden.jpg", "photo.png"} <= names
    reasons = {Path(path).name: why for path, why in skipped.items()}
    assert reasons.pop(Path(corrupt[1]).name).startswith("corrupt or truncated image header")
    unknown = "not an image (unknown header)"
    assert reasons == {
        ".DS_Store": unknown,
        "notes.txt": unknown,
        "folder": "not a regular file",
        Path(corrupt[0]).name: "empty file",
        Path(corrupt[2]).name: unknown,
        "cut.bmp": UNDECODABLE,  # passes the header check, fails the training decoder
    }


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
    slugs = [group.slug for group in plan.groups]
    settings = TrainSettings(validation_split=0.2, test_split=0.1, seed=117)
    split, skipped = prepare_split(tmp_path / "regrouped", slugs, settings, log=lambda line: None)
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


def test_decode_handles_grayscale_png_in_jpg_and_odd_sizes(tmp_path: Path) -> None:
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((30, 10), 200, np.uint8)).save(gray, format="JPEG")
    png = tmp_path / "png.jpg"
    Image.fromarray(np.full((7, 40, 4), 255, np.uint8)).save(png, format="PNG")
    for path in (gray, png):
        image = decode_and_resize(str(path), 16).numpy()
        assert image.shape == (16, 16, 3) and image.dtype == np.float32
        assert image.min() >= 0 and image.max() <= 255
    assert abs(float(decode_and_resize(str(gray), 16).numpy().mean()) - 200) < 3
    batch = load_images([gray, png], 12)
    assert batch.shape == (2, 12, 12, 3)


def test_load_images_names_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("text")
    with pytest.raises(ValueError, match="bad.jpg"):
        load_images([bad], 8)


def test_corrupt_files_are_found_and_dropped_by_the_pipeline(tree: Path) -> None:
    corrupt = add_corrupt_files(tree)
    missing = str(tree / "circle" / "gone.jpg")
    frame = list_images(tree)
    paths = [*frame["image"], missing]
    assert sorted(find_undecodable(paths)) == sorted([*map(str, corrupt), missing])
    labels = [*frame["label_index"], 0]
    data = make_dataset(paths, labels, image_size=16, batch_size=4, training=True, seed=1)
    batches = list(data.as_numpy_iterator())
    assert sum(len(y) for _, y in batches) == len(frame) - len(corrupt)
    images, labels_out = batches[0]
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.float32
    assert labels_out.dtype == np.int32


def test_training_pipeline_shuffles_validation_keeps_order(tree: Path) -> None:
    frame = list_images(tree)
    paths, labels = frame["image"].tolist(), frame["label_index"].tolist()
    ordered = make_dataset(paths, labels, 8, batch_size=64, training=False, seed=0)
    (_, first), *_ = ordered.as_numpy_iterator()
    assert first.tolist() == labels
    shuffled = make_dataset(paths, labels, 8, batch_size=64, training=True, seed=0, threads=1)
    epochs = [next(shuffled.as_numpy_iterator())[1].tolist() for _ in range(3)]
    assert all(sorted(epoch) == sorted(labels) for epoch in epochs)
    assert any(epoch != labels for epoch in epochs)


def test_image_cache_is_written_once_then_read_instead_of_the_files(tree: Path) -> None:
    corrupt = add_corrupt_files(tree)
    frame = list_images(tree)
    paths, labels = frame["image"].tolist(), frame["label_index"].tolist()
    cache = tree.parent / "cache"
    cache.mkdir()
    plain = make_dataset(paths, labels, 12, batch_size=5, training=False, seed=0)
    cached = make_dataset(paths, labels, 12, 5, training=False, seed=0, cache=cache / "val")
    expected = np.concatenate([x for x, _ in plain.as_numpy_iterator()])
    first = np.concatenate([x for x, _ in cached.as_numpy_iterator()])
    np.testing.assert_array_equal(first, np.round(expected))  # whole grey levels, same order
    assert len(first) == len(frame) - len(corrupt) and any(cache.iterdir())
    for path in paths:  # later passes read the cache, not the files
        Path(path).unlink()
    np.testing.assert_array_equal(np.concatenate([x for x, _ in cached.as_numpy_iterator()]), first)
    training = make_dataset(paths, labels, 12, 4, training=True, seed=0, cache=cache / "train")
    assert list(training.as_numpy_iterator()) == []  # no cache there: the files are gone


def test_pipelines_have_no_autotuning_thread_and_parallel_calls_per_thread(tree: Path) -> None:
    # Deleting an iterator waits for its autotuning thread (up to 60 s in TensorFlow 2.21),
    # and fit deletes the last validation iterator at every epoch.
    frame = list_images(tree)
    paths, labels = frame["image"].tolist(), frame["label_index"].tolist()
    cache = tree.parent / "cache"
    cache.mkdir()
    for data in (
        make_dataset(paths, labels, 8, 4, training=True, seed=0, threads=2),
        make_dataset(paths, labels, 8, 4, training=False, seed=0, threads=2, cache=cache / "v"),
    ):
        options = data.options()
        assert options.autotune.enabled is False
        assert options.threading.private_threadpool_size == 2
        assert sum(len(x) for x, _ in data.as_numpy_iterator()) == len(paths)


def test_jpegs_are_decoded_at_a_reduced_scale_close_to_an_exact_resize(tmp_path: Path) -> None:
    """A 96 px JPEG for 24 px inputs decodes at 1/4 scale, closer to the exact antialiased
    resize than a plain bilinear resize; other formats take the antialiased resize."""
    import tensorflow as tf
    from training_helpers import shape_image

    rng = np.random.default_rng(0)
    for fmt in ("JPEG", "PNG"):
        errors = {"ours": [], "bilinear": []}
        for i in range(4):
            path = tmp_path / f"{i}.{fmt.lower()}"
            shape_image("circle", (220, 40, 40), 96, rng).save(path, format=fmt, quality=90)
            decoded = tf.io.decode_image(tf.io.read_file(str(path)), channels=3)
            exact = tf.image.resize(decoded, (24, 24), antialias=True).numpy()
            ours = decode_and_resize(str(path), 24).numpy()
            assert ours.shape == (24, 24, 3)
            errors["ours"].append(np.abs(ours - exact).mean())
            errors["bilinear"].append(np.abs(tf.image.resize(decoded, (24, 24)) - exact).mean())
        if fmt == "PNG":
            assert max(errors["ours"]) < 1e-3
        else:
            assert np.mean(errors["ours"]) < min(3.0, np.mean(errors["bilinear"])), errors
