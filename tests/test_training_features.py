"""The frozen-backbone feature cache: contents, training on it, the saved model, staleness,
reading through the memory map. SmallCNN on tiny shape images."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from training_helpers import (
    add_corrupt_files,
    assert_held_out_is_the_models,
    limit_threads,
    make_tree,
    pretrained_weights,
    split_files,
)

limit_threads()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from fashionai.pixels import load_images  # noqa: E402
from fashionai.splits import TRAIN, VALIDATION, read_skipped, read_split  # noqa: E402
from fashionai.training import features as features_module  # noqa: E402
from fashionai.training.features import (  # noqa: E402
    IN_MEMORY_BYTES,
    FeatureCache,
    FeatureCaches,
    StaleFeatures,
    extract_features,
    feature_dependencies,
    open_features,
    weights_fingerprint,
)
from fashionai.training.model import build_feature_extractor  # noqa: E402
from fashionai.training.run import train_category  # noqa: E402
from fashionai.training.settings import TrainSettings  # noqa: E402

pytestmark = pytest.mark.slow

SLUGS = ["circle", "square", "triangle"]


def small(**overrides: object) -> TrainSettings:
    base = dict(backbone="SmallCNN", weights=None, image_size=16, batch_size=8, epochs=3,
                patience=5, learning_rate=1e-2, seed=3)  # fmt: skip
    return TrainSettings(**{**base, **overrides})


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A tree with three undecodable files, its cache with 2 views (flip), a run on it."""
    root = tmp_path_factory.mktemp("features")
    tree = make_tree(root / "tree", per_class=8, size=24, seed=1)
    corrupt = add_corrupt_files(tree)
    settings = small(augmentations=("flip",))
    lines: list[str] = []
    files = split_files(tree, settings)  # rule split's
    cache = extract_features(
        tree, root / "features", settings, split=files["split"], log=lines.append
    )
    summary = train_category(
        tree, root / "model", settings, **files, log=lines.append, features=root / "features"
    )
    return SimpleNamespace(root=root, tree=tree, corrupt=corrupt, settings=settings, files=files,
                           cache=cache, summary=summary, lines=lines)  # fmt: skip


def test_cache_holds_every_subset_of_the_split_and_its_features(cached: SimpleNamespace) -> None:
    folder, cache = cached.root / "features", cached.cache
    assert sorted(p.name for p in folder.iterdir()) == [
        "backbone.weights.h5", "manifest.json", "test_features.npy", "test_labels.npy",
        "train_features.npy", "train_labels.npy", "validation_features.npy",
        "validation_labels.npy",
    ]  # fmt: skip
    split = read_split(cached.files["split"], SLUGS)  # the rows follow the split file's
    assert "skipped_files" not in cache.manifest
    rows = {subset: split[split["subset"] == subset] for subset in ("train", "validation", "test")}
    assert all(len(subset) for subset in rows.values())
    extractor = build_feature_extractor("SmallCNN", 16, folder / "backbone.weights.h5")
    for subset, images in rows.items():
        features = np.load(folder / f"{subset}_features.npy")
        assert features.dtype == np.float32 and features.shape == (2, len(images), 128)
        labels = np.load(folder / f"{subset}_labels.npy")
        np.testing.assert_array_equal(labels, images["label_index"])
        # View 0: the plain images through the cached extractor; a held-out image's view 1:
        # its mirror image's.
        plain = load_images(images["image"].tolist(), 16)
        fresh = extractor.predict(plain, verbose=0)
        np.testing.assert_allclose(rows_of(features[0]), fresh, rtol=2e-3, atol=2e-3)
        if subset != "train":
            mirrored = extractor.predict(tf.image.flip_left_right(plain), verbose=0)
            np.testing.assert_allclose(rows_of(features[1]), mirrored, rtol=2e-3, atol=2e-3)
        # View 1 is mirrored, or flipped at random: some rows differ from view 0.
        assert not np.allclose(features[0], features[1], atol=1e-3)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["dependencies"] == feature_dependencies(cached.settings)
    assert manifest["classes"] == SLUGS
    assert manifest["images"] == {subset: len(images) for subset, images in rows.items()}


def rows_of(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def test_training_on_the_cache_saves_the_whole_model(cached: SimpleNamespace) -> None:
    out, summary = cached.root / "model", cached.summary
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.keras", "best.weights.h5", "history.csv", "split.csv", "training.json"]
        + ["held_out.csv"]
    )
    assert (out / "split.csv").read_bytes() == cached.files["split"].read_bytes()
    assert (out / "split.csv").stat().st_ino != cached.files["split"].stat().st_ino
    assert summary["skipped_files"] == read_skipped(cached.files["skipped"])
    assert sorted(summary["skipped_files"]) == sorted(map(str, cached.corrupt))
    assert summary["skipped_images"] == 3 and summary["features"]["views"] == 2
    assert summary["features"]["read_from"] == "memory"
    assert any("on cached features (2 view(s)" in line for line in cached.lines)
    # The saved model takes images: its predictions are the trained head's on the features.
    split = pd.read_csv(out / "split.csv")
    validation = split[split["subset"] == "validation"]
    saved = keras.models.load_model(out / "model.keras")
    on_images = saved.predict(load_images(validation["image"].tolist(), 16), verbose=0)
    features = np.load(cached.root / "features" / "validation_features.npy")[0]
    on_features = saved.get_layer("head").predict(features, verbose=0)
    np.testing.assert_allclose(on_images, on_features, atol=2e-3)
    assert np.allclose(on_images.sum(axis=1), 1, atol=1e-5)
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    accuracy = (on_images.argmax(axis=1) == validation["label_index"].to_numpy()).mean()
    assert accuracy == pytest.approx(summary["best_val_accuracy"], abs=1e-6)


def test_a_head_only_model_predicts_its_held_out_images_from_the_cache(
    cached: SimpleNamespace,
) -> None:
    """held_out.csv: the head on the cached features of each image and its mirror image, the
    numbers of the whole model on the images, with no image decoded."""
    assert any(
        line.startswith("predicting the") and str(cached.root / "features") in line
        for line in cached.lines
    ), cached.lines
    assert_held_out_is_the_models(cached.root / "model")


def test_a_fine_tuned_model_predicts_its_held_out_images_through_its_own_backbone(
    tmp_path: Path,
) -> None:
    """The cache's backbone is not the fine-tuned model's: its held-out predictions come
    from the whole model, as the cache would give other numbers."""
    tree = make_tree(tmp_path / "tree", per_class=8, size=24, seed=2, odd_files=False)
    weights = pretrained_weights(tmp_path / "pretrained.weights.h5")
    settings = small(fine_tune=True, head_epochs=1, epochs=2, weights=weights)
    files = split_files(tree, settings)
    features = tmp_path / "features"
    extract_features(tree, features, settings, split=files["split"], log=lambda line: None)
    lines: list[str] = []
    out = tmp_path / "model"
    train_category(tree, out, settings, **files, log=lines.append, features=features)
    assert any("on cached features" in line for line in lines)
    assert any("held-out images" in line and "(plain and mirrored)" in line for line in lines)
    assert_held_out_is_the_models(out)


def test_head_on_cached_features_trains_like_the_model_on_images(tmp_path: Path) -> None:
    """Without augmentation, the same batches and dropout masks: the same epochs, whether the
    features come from memory, from the memory map, or from the backbone every epoch."""
    tree = make_tree(tmp_path / "tree", per_class=8, size=24, seed=2, odd_files=False)
    settings = small(epochs=4)
    images = train_category(
        tree, tmp_path / "images", settings, **split_files(tree, settings)
    )  # given no cache
    features = tmp_path / "features"  # rule features' job
    extract_features(
        tree, features, settings, split=split_files(tree, settings)["split"], log=lambda line: None
    )
    in_memory = train_category(
        tree, tmp_path / "memory", settings, **split_files(tree, settings), features=features
    )
    lines: list[str] = []
    mapped = train_category(
        tree,
        tmp_path / "mapped",
        settings,
        **split_files(tree, settings),
        max_in_memory_bytes=1,
        log=lines.append,
        features=features,
    )
    assert mapped["features"]["read_from"] == "memory map"
    assert any("read from the memory map" in line for line in lines)
    histories = [pd.read_csv(tmp_path / name / "history.csv") for name in
                 ("images", "memory", "mapped")]  # fmt: skip
    pd.testing.assert_frame_equal(histories[1], histories[2])
    pd.testing.assert_frame_equal(histories[0], histories[1], atol=2e-3)
    assert images["best_epoch"] == in_memory["best_epoch"] == mapped["best_epoch"]
    assert images["features"] is None


def batches_of(
    cache: FeatureCache, subset: str, size: int, seed: int = 0, max_bytes: int = IN_MEMORY_BYTES
) -> tf.data.Dataset:
    """The cache's batches of ``subset`` as training reads them, with the labels it stored."""
    labels = np.load(cache.folder / f"{subset}_labels.npy")
    return FeatureCaches([cache]).dataset(subset, size, seed, None, max_bytes, labels)


def test_memory_map_and_memory_give_the_same_batches(cached: SimpleNamespace) -> None:
    cache = cached.cache
    for big, tiny in (
        (batches_of(cache, TRAIN, 4, seed=1), batches_of(cache, TRAIN, 4, seed=1, max_bytes=0)),
        (batches_of(cache, VALIDATION, 4), batches_of(cache, VALIDATION, 4, max_bytes=0)),
    ):
        batches = list(zip(big.as_numpy_iterator(), tiny.as_numpy_iterator(), strict=True))
        assert batches
        for (x1, y1), (x2, y2) in batches:
            assert x1.dtype == np.float32 and x1.shape[1] == 128
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    # Every training image once per epoch, each as one of its views.
    train = np.load(cached.root / "features" / "train_features.npy").astype(np.float32)
    seen = np.concatenate([x for x, _ in batches_of(cache, TRAIN, 5, seed=2).as_numpy_iterator()])
    assert len(seen) == train.shape[1]
    matches = [np.flatnonzero((np.abs(train - row).max(axis=-1) == 0).any(axis=0)) for row in seen]
    assert sorted(int(m[0]) for m in matches) == list(range(train.shape[1]))
    # Held-out images in the split's order, each as its plain view (view 0; 1 is mirrored).
    validation = np.load(cached.root / "features" / "validation_features.npy")
    plain = np.concatenate([x for x, _ in batches_of(cache, VALIDATION, 4).as_numpy_iterator()])
    np.testing.assert_array_equal(plain, validation[0])


def test_a_stale_cache_is_refused_until_recomputed(cached: SimpleNamespace, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(cached.tree, tree)
    folder = tmp_path / "features"
    lines: list[str] = []
    extract_features(
        tree,
        folder,
        cached.settings,
        split=split_files(tree, cached.settings)["split"],
        log=lines.append,
    )

    for change in (
        {"image_size": 24},
        {"views": 1},
        {"augmentations": ()},
        {"seed": 4},
        {"validation_split": 0.4},
        {"backbone": "MobileNetV3Small", "image_size": 32},
    ):
        changed = dataclasses.replace(cached.settings, **change)  # fmt: skip
        key = next(iter(change))
        with pytest.raises(StaleFeatures, match=key):
            open_features(folder, feature_dependencies(changed), SLUGS)
    reseeded = dataclasses.replace(cached.settings, seed=9)
    with pytest.raises(StaleFeatures, match="stale"):
        train_category(tree, tmp_path / "out", reseeded, **split_files(tree, reseeded),
                       features=folder)  # fmt: skip

    # A new image in the tree: rule split's rerun lists it, rule features' rerun takes it in;
    # a training job given the new split and the old cache refuses the cache.
    new = tree / "square" / "square_new.jpg"
    shutil.copy(next((tree / "square").glob("*_001.jpg")), new)
    files = split_files(tree, cached.settings)
    with pytest.raises(StaleFeatures, match=r"image\(s\), .*split.csv lists .*another split"):
        train_category(tree, tmp_path / "out", cached.settings, **files, features=folder)
    cache = extract_features(tree, folder, cached.settings, split=files["split"], log=lines.append)
    rows = read_split(files["split"])
    assert sum(cache.manifest["images"].values()) == len(rows)
    assert str(new) in rows["image"].tolist()

    # Incomplete (no manifest) and damaged caches are refused too.
    (folder / "manifest.json").unlink()
    with pytest.raises(StaleFeatures, match="manifest.json is missing"):
        open_features(folder, feature_dependencies(cached.settings), SLUGS)


def test_weights_files_are_told_apart_by_content(tmp_path: Path) -> None:
    first, second = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"
    first.write_bytes(b"weights one")
    second.write_bytes(b"weights 2")
    assert weights_fingerprint(str(first)) != weights_fingerprint(str(second))
    second.write_bytes(b"weights one")
    assert weights_fingerprint(str(first))["sha256"] == weights_fingerprint(str(second))["sha256"]
    assert weights_fingerprint(None) is None and "imagenet" in weights_fingerprint("imagenet")


def test_a_weights_file_is_hashed_once_per_job(tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "own.weights.h5"
    weights.write_bytes(b"weights")
    hashed = []
    monkeypatch.setattr(features_module, "file_hash", lambda path: hashed.append(path) or "h")
    for _ in range(3):  # the cache's check and the backup's signature, per category
        weights_fingerprint(str(weights))
    assert len(hashed) == 1
    weights.write_bytes(b"other weights")  # a new file: hashed again
    weights_fingerprint(str(weights))
    assert len(hashed) == 2
