"""Decoding image files and the tf.data pipelines (the split itself: tests/test_splits.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training_helpers import add_corrupt_files, limit_threads, make_tree

limit_threads()

from fashionai.pixels import decode_and_resize, find_undecodable, load_images  # noqa: E402
from fashionai.splits import list_images  # noqa: E402
from fashionai.training.dataset import make_dataset  # noqa: E402


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", per_class=(5, 4, 3), size=20)


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
