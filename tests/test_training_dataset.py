"""Listing a regrouped tree, the stratified split, decoding, and the tf.data pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from training_helpers import add_corrupt_files, limit_threads, make_tree

limit_threads()

from fashionai.training.dataset import (  # noqa: E402
    COLUMNS,
    find_undecodable,
    list_images,
    make_dataset,
    split_dataset,
)
from fashionai.training.images import decode_and_resize, load_images  # noqa: E402


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", per_class=(5, 4, 3), size=20)


def test_list_images_follows_labels_json(tree: Path) -> None:
    (tree / "circle" / ".DS_Store").write_text("x")
    (tree / "circle" / "notes.txt").write_text("x")
    frame = list_images(tree)
    assert list(frame.columns) == COLUMNS
    assert frame["label"].value_counts().to_dict() == {"circle": 5, "square": 4, "triangle": 3}
    assert frame["label_index"].tolist() == [0] * 5 + [1] * 4 + [2] * 3
    assert frame["image_name"].tolist()[:2] == ["circle_000.jpg", "circle_001.jpg"]
    assert all(Path(p).is_file() and Path(p).parent.name == lab
               for p, lab in zip(frame["image"], frame["label"], strict=True))  # fmt: skip
    assert frame.equals(list_images(tree))


def test_list_images_class_order_is_that_of_labels_json(tree: Path) -> None:
    labels = json.loads((tree / "labels.json").read_text())
    labels["classes"] = [
        {**entry, "index": i} for i, entry in enumerate(reversed(labels["classes"]))
    ]
    (tree / "labels.json").write_text(json.dumps(labels))
    frame = list_images(tree)
    assert frame.groupby("label")["label_index"].first().to_dict() == {
        "triangle": 0, "square": 1, "circle": 2,
    }  # fmt: skip


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


def test_split_is_stratified_reproducible_and_covers_every_class(tree: Path) -> None:
    frame = list_images(tree)
    split = split_dataset(frame, 0.3, seed=117)
    assert split[list(frame.columns)].equals(frame)
    counts = split.groupby(["label", "subset"]).size().to_dict()
    assert counts == {
        ("circle", "train"): 3, ("circle", "validation"): 2,
        ("square", "train"): 3, ("square", "validation"): 1,
        ("triangle", "train"): 2, ("triangle", "validation"): 1,
    }  # fmt: skip
    assert split.equals(split_dataset(frame, 0.3, seed=117))
    others = [split_dataset(frame, 0.3, seed=s)["subset"].tolist() for s in range(1, 6)]
    assert any(subsets != split["subset"].tolist() for subsets in others)


def test_split_edge_cases(tree: Path) -> None:
    frame = list_images(tree)
    two_and_one = frame[frame["image_name"].isin(
        ["circle_000.jpg", "circle_001.jpg", "square_000.jpg"])]  # fmt: skip
    split = split_dataset(two_and_one, 0.01, seed=0)
    assert sorted(split[split["label"] == "circle"]["subset"]) == ["train", "validation"]
    assert split[split["label"] == "square"]["subset"].tolist() == ["train"]
    high = split_dataset(frame, 0.99, seed=0)
    assert (high.groupby("label")["subset"].apply(lambda s: (s == "train").sum()) == 1).all()
    with pytest.raises(ValueError):
        split_dataset(frame, 1.0, seed=0)


def test_decode_handles_grayscale_png_in_jpg_and_odd_sizes(tmp_path: Path) -> None:
    from PIL import Image

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
