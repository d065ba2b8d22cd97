"""Hardening, third round (issue 18): the feature cache refuses damaged and stale contents with
advice that works, holds every backbone's features, follows the run seed of a random backbone;
the image cache holds; the training set is the split's training rows; the flip is left-right;
model cards and the experiment comparison show each model's own test figures."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from training_helpers import SHAPES, limit_threads, make_tree, split_files

limit_threads()

import keras  # noqa: E402

from fashionai.evaluation.comparison import write_comparison  # noqa: E402
from fashionai.evaluation.model_card import model_card  # noqa: E402
from fashionai.evaluation.summary import FIGURES  # noqa: E402
from fashionai.pixels import load_images  # noqa: E402
from fashionai.training import features as features_module  # noqa: E402
from fashionai.training import run as run_module  # noqa: E402
from fashionai.training.augment import build_augmentation  # noqa: E402
from fashionai.training.dataset import make_dataset  # noqa: E402
from fashionai.training.features import (  # noqa: E402
    StaleFeatures,
    extract_features,
    feature_dependencies,
    open_features,
)
from fashionai.training.model import build_feature_extractor  # noqa: E402
from fashionai.training.run import train_category  # noqa: E402
from fashionai.training.settings import FEATURE_KEYS, TrainSettings, feature_settings  # noqa: E402
from fashionai.trees import read_labels  # noqa: E402

pytestmark = pytest.mark.slow

SLUGS = [kind for kind, _ in SHAPES]  # make_tree's classes, in order
REBUILD = r"delete .* and rerun snakemake \(or rerun it with --forcerun features\)"
# A value other than the cache's for each setting the features depend on: every one of them
# must make the cache stale. Spelled out (not taken from FEATURE_KEYS), so that a key dropped
# from FEATURE_KEYS fails here; test_every_feature_key_has_a_change checks none is missing.
FEATURE_CHANGES = {
    "backbone": "MobileNetV3Small",
    "weights": "imagenet",
    "image_size": 24,
    "resize": "pad",
    "augmentations": ("flip", "rotation"),
    "views": 3,
    "seed": 4,
    "init_seed": 5,
    "validation_split": 0.3,
    "test_split": 0.2,
    "folds": 2,
    "mixed_precision": True,
}


def small(**overrides: object) -> TrainSettings:
    base = dict(backbone="SmallCNN", weights=None, image_size=16, batch_size=8, epochs=1,
                patience=5, learning_rate=1e-2, seed=3, augmentations=("flip",))  # fmt: skip
    return TrainSettings(**{**base, **overrides})


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A tree and its feature cache (SmallCNN, random init, 2 views)."""
    root = tmp_path_factory.mktemp("cache")
    tree = make_tree(root / "tree", per_class=8, size=24, seed=1)
    settings = small()
    extract_features(
        tree,
        root / "features",
        settings,
        split=split_files(tree, settings)["split"],
        log=lambda line: None,
    )
    return SimpleNamespace(root=root, tree=tree, settings=settings)


def copy_cache(cached: SimpleNamespace, tmp_path: Path) -> Path:
    folder = tmp_path / "features"
    shutil.copytree(cached.root / "features", folder)
    return folder


# 1. Damaged values.


def test_a_cache_with_damaged_values_is_refused_naming_the_file(
    cached: SimpleNamespace, tmp_path: Path
) -> None:
    folder = copy_cache(cached, tmp_path)
    dependencies = feature_dependencies(cached.settings)
    open_features(folder, dependencies, SLUGS)  # whole: accepted
    damaged = np.load(folder / "train_features.npy", mmap_mode="r+")  # same shape and header
    damaged[:] = np.random.default_rng(0).standard_normal(damaged.shape)
    damaged.flush()
    del damaged
    pattern = rf"train_features\.npy is damaged.*{REBUILD}"
    with pytest.raises(StaleFeatures, match=pattern):
        open_features(folder, dependencies, SLUGS)
    with pytest.raises(StaleFeatures, match=pattern):
        train_category(
            cached.tree,
            tmp_path / "out",
            cached.settings,
            **split_files(cached.tree, cached.settings),
            features=folder,
        )
    assert not (tmp_path / "out" / "model.keras").exists()
    extract_features(
        cached.tree,
        folder,
        cached.settings,
        split=split_files(cached.tree, cached.settings)["split"],
        log=lambda line: None,
    )  # the rebuild
    open_features(folder, dependencies, SLUGS)


# 2. Every backbone's features are stored as computed.


def test_a_random_mobilenet_caches_its_tiny_features_and_trains_on_them(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", per_class=6, size=24, seed=4, odd_files=False)
    settings = small(backbone="MobileNetV3Small", image_size=32, augmentations=())
    folder = tmp_path / "features"
    extract_features(
        tree, folder, settings, split=split_files(tree, settings)["split"], log=lambda line: None
    )
    cached = np.load(folder / "validation_features.npy")[0]  # the plain images'
    assert cached.dtype == np.float32
    # The premise: a random MobileNetV3Small's features lie below float16's smallest value.
    assert 0 < np.abs(cached).max() < np.finfo(np.float16).smallest_subnormal
    split = pd.read_csv(split_files(tree, settings)["split"])
    validation = split[split["subset"] == "validation"]
    extractor = build_feature_extractor("MobileNetV3Small", 32, folder / "backbone.weights.h5")
    fresh = extractor.predict(load_images(validation["image"].tolist(), 32), verbose=0)
    np.testing.assert_allclose(cached, fresh, rtol=1e-3, atol=0)
    train_category(
        tree, tmp_path / "model", settings, **split_files(tree, settings), features=folder
    )


# 3. Every refusal names the file or key and how to rebuild.


def test_every_feature_key_has_a_change() -> None:
    # fold counts only beside folds: test_the_cache_key_holds_folds_only_with_folds
    assert set(FEATURE_CHANGES) == set(FEATURE_KEYS) - {"fold"}


@pytest.mark.parametrize("key", list(FEATURE_CHANGES))
def test_a_cache_is_stale_for_a_change_of_any_feature_key(
    cached: SimpleNamespace, key: str
) -> None:
    changed = dataclasses.replace(cached.settings, **{key: FEATURE_CHANGES[key]})
    folder = cached.root / "features"
    with pytest.raises(StaleFeatures, match=rf"(^|\W){key}: .*{REBUILD}"):
        open_features(folder, feature_dependencies(changed), SLUGS)


def test_refusals_of_an_incomplete_cache_say_how_to_rebuild(
    cached: SimpleNamespace, tmp_path: Path
) -> None:
    folder = copy_cache(cached, tmp_path)
    dependencies = feature_dependencies(cached.settings)
    np.save(folder / "validation_features.npy", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(StaleFeatures, match=rf"validation_features\.npy has shape.*{REBUILD}"):
        open_features(folder, dependencies, SLUGS)
    (folder / "manifest.json").write_text("{}")
    with pytest.raises(StaleFeatures, match=rf"manifest\.json is not a complete.*{REBUILD}"):
        open_features(folder, dependencies, SLUGS)
    (folder / "manifest.json").unlink()
    with pytest.raises(StaleFeatures, match=rf"manifest\.json is missing.*{REBUILD}"):
        open_features(folder, dependencies, SLUGS)


# 3b. A training job judges no file by its timestamp, which reruns no rule features; it refuses a
# cache of another class order and any damaged file of the cache.


@pytest.mark.parametrize("name", ["circle/circle_002.jpg", "labels.json"])
def test_a_file_of_the_tree_touched_with_the_same_bytes_keeps_the_cache(
    cached: SimpleNamespace, tmp_path: Path, name: str
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(cached.tree, tree)  # timestamps kept
    stat = (tree / name).stat()
    os.utime(tree / name, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    folder = cached.root / "features"
    files = split_files(tree, cached.settings)
    labels = read_labels(tree)
    member = run_module.prepare_member(
        labels, files["split"], files["skipped"], cached.settings, folder, None, lambda line: None
    )
    assert member.data.features is not None and member.data.features.folder == folder


def test_a_manifest_recording_more_dependencies_than_the_job_checks_is_accepted(
    cached: SimpleNamespace, tmp_path: Path
) -> None:
    folder = copy_cache(cached, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["dependencies"]["tree"] = {"files": 24, "sha256": "0" * 64}  # not the job's to judge
    (folder / "manifest.json").write_text(json.dumps(manifest))
    open_features(folder, feature_dependencies(cached.settings), SLUGS)


def test_a_cache_of_another_class_order_is_refused(cached: SimpleNamespace, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(cached.tree, tree)
    labels = json.loads((tree / "labels.json").read_text())
    labels["classes"] = [{**entry, "index": index}
                         for index, entry in enumerate(reversed(labels["classes"]))]  # fmt: skip
    (tree / "labels.json").write_text(json.dumps(labels))
    pattern = rf"label indices are of the classes .*labels\.json lists .*{REBUILD}"
    with pytest.raises(StaleFeatures, match=pattern):
        train_category(
            tree,
            tmp_path / "out",
            cached.settings,
            **split_files(tree, cached.settings),
            features=cached.root / "features",
        )


def test_every_file_of_a_cache_is_checked_against_its_recorded_checksum(
    cached: SimpleNamespace, tmp_path: Path
) -> None:
    folder = copy_cache(cached, tmp_path)
    dependencies = feature_dependencies(cached.settings)
    names = sorted(path.name for path in folder.iterdir() if path.name != "manifest.json")
    assert len(names) == 7  # features and labels of each subset, the random backbone
    for name in names:
        whole = (folder / name).read_bytes()
        (folder / name).write_bytes(whole[:-1] + bytes([whole[-1] ^ 1]))  # same size
        with pytest.raises(StaleFeatures, match=rf"{re.escape(name)} is damaged.*{REBUILD}"):
            open_features(folder, dependencies, SLUGS)
        (folder / name).write_bytes(whole)
    open_features(folder, dependencies, SLUGS)


@pytest.mark.parametrize("checksums", [{}, [], None, "missing"])
def test_a_manifest_without_checksums_is_refused(
    cached: SimpleNamespace, tmp_path: Path, checksums: object
) -> None:
    folder = copy_cache(cached, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    if checksums == "missing":
        del manifest["sha256"]
    else:
        manifest["sha256"] = checksums
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StaleFeatures, match=rf"manifest\.json records no checksums.*{REBUILD}"):
        open_features(folder, feature_dependencies(cached.settings), SLUGS)


# 4. A random backbone comes from the run seed.


def test_the_cache_key_holds_the_run_seed_of_a_random_backbone_only() -> None:
    default = {"backbone": "SmallCNN", "weights": None, "seed": 3}
    assert feature_settings(default)["init_seed"] == 3
    assert feature_settings(default) == feature_settings({**default, "init_seed": 3})
    assert feature_settings({**default, "init_seed": 2})["init_seed"] == 2
    pretrained = {**default, "weights": "imagenet"}
    assert feature_settings(pretrained) == feature_settings({**pretrained, "init_seed": 2})
    assert feature_settings(pretrained)["init_seed"] is None


def test_the_cache_key_holds_folds_only_with_folds() -> None:
    default = {"backbone": "SmallCNN", "weights": None, "seed": 3}
    assert set(feature_settings(default)) == set(FEATURE_KEYS) - {"folds", "fold"}
    assert feature_settings(default) == feature_settings({**default, "fold": 1})
    folded = {**default, "folds": 2, "fold": 1}
    assert set(feature_settings(folded)) == set(FEATURE_KEYS)
    assert feature_settings(folded) != feature_settings({**folded, "fold": 2})


def test_a_random_backbone_is_initialised_from_the_run_seed(
    cached: SimpleNamespace, tmp_path: Path
) -> None:
    settings = dataclasses.replace(cached.settings, init_seed=2)
    folder = tmp_path / "features"
    extract_features(
        cached.tree,
        folder,
        settings,
        split=split_files(cached.tree, settings)["split"],
        log=lambda line: None,
    )
    keras.utils.set_random_seed(2)
    expected = build_feature_extractor("SmallCNN", 16, None)
    other = build_feature_extractor("SmallCNN", 16, cached.root / "features/backbone.weights.h5")
    mine = build_feature_extractor("SmallCNN", 16, folder / "backbone.weights.h5")
    for got, want in zip(mine.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    pairs = zip(mine.get_weights(), other.get_weights(), strict=True)
    assert any(
        not np.array_equal(a, b) for a, b in pairs
    )  # not the backbone of seed 3, the default experiment's


# 5. The resized-image cache holds from the first batch on and changes nothing but rounding.


def test_the_image_cache_gives_the_uncached_batches_without_the_files(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", per_class=5, size=24, seed=5)
    paths = sorted(str(path) for path in tree.glob("*/*.jpg"))
    paths.append(str(tmp_path / "missing.jpg"))  # dropped by both pipelines
    labels = np.arange(len(paths)) % 3
    (tmp_path / "cache").mkdir()
    plain_data = make_dataset(paths, labels, 16, 4, True, 1)
    epochs = [list(plain_data.as_numpy_iterator()) for _ in range(2)]
    cached = make_dataset(paths, labels, 16, 4, True, 1, cache=tmp_path / "cache" / "train")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["train.npy"]
    shutil.rmtree(tree)  # every pass reads the cache, the first one too
    for plain in epochs:  # the same batches in the same order, epoch after epoch
        batches = list(cached.as_numpy_iterator())
        assert len(batches) == len(plain)
        for (images, y), (plain_images, plain_y) in zip(batches, plain, strict=True):
            np.testing.assert_array_equal(y, plain_y)
            np.testing.assert_allclose(images, plain_images, atol=0.5 + 1e-3)


# 6. The model card's headline.


def card_inputs() -> dict:
    classes = [{"index": 0, "slug": "a", "name": "A", "members": ["A"]}]
    test = {"accuracy": 0.6111, "basic_precision": 0.5222, "ap": 0.8333,
            "official_basic_precision": 0.5444, "official_ap": 0.7555}  # fmt: skip
    validation = {key: round(value / 2, 4) for key, value in test.items()}
    return {
        "summary": {
            "category": "coat_length_labels",
            "classes": classes,
            "seconds": 61,
            "settings": {"backbone": "SmallCNN", "image_size": 48},
            "best_epoch": 0,
            "epochs_run": 3,
        },  # fmt: skip
        "split": pd.DataFrame({"label_index": [0, 0], "subset": ["train", "test"]}),
        "history": pd.DataFrame({"epoch": [0, 1, 2], "val_accuracy": [0.9, 0.5, 0.4]}),
        "metrics": {
            "evaluated_on": "test",
            "n_images": 9,
            **test,
            "per_class": {"A": {"support": 9}},
            "validation": {"n_images": 4, **validation},
        },  # fmt: skip
        "experiment": "default",
        "configuration": {},
    }


def test_the_card_headline_gives_the_test_figures_and_a_1_based_best_epoch() -> None:
    given = card_inputs()
    headline = model_card(**given).split("\n\n")[1]
    metrics = given["metrics"]
    assert re.search(r"best epoch 1 of 3 \(counted from 1; .*count epochs from 0\)", headline)
    shown = dict(re.findall(r"(test AP|BasicPrecision|accuracy) ([0-9.]+)", headline))
    assert shown == {
        "test AP": f"{metrics['ap']:.4f}",
        "BasicPrecision": f"{metrics['basic_precision']:.4f}",
        "accuracy": f"{metrics['accuracy']:.4f}",
    }


# 7. Test gaps: the comparison's rows, the flip's direction, the training rows.


def test_each_comparison_row_holds_its_own_experiments_metrics(tmp_path: Path) -> None:
    files: dict[str, dict[str, Path]] = {}
    given: dict[tuple[str, str], dict] = {}
    for e, experiment in enumerate(("default", "seed2", "ensemble")):
        for c, category in enumerate(("coat_length_labels", "collar_design_labels")):
            metrics = {"evaluated_on": "test", "n_images": 10 + 3 * e + c}
            metrics.update({f: 0.1 + 0.2 * e + 0.05 * c + 0.01 * i for i, f in enumerate(FIGURES)})
            path = tmp_path / experiment / category / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(metrics))
            files.setdefault(experiment, {})[category] = path
            given[experiment, category] = metrics
    out = tmp_path / "experiments"
    write_comparison(
        files,
        out.with_suffix(".csv"),
        out.with_suffix(".md"),
        tmp_path / "c.png",
        tmp_path / "means.csv",
    )
    table = pd.read_csv(out.with_suffix(".csv"))
    rows = table[table["category"] != "mean"]
    assert len(rows) == len(given)
    for row in rows.to_dict("records"):
        metrics = given[row["experiment"], row["category"]]
        assert row["n_images"] == metrics["n_images"]
        assert [row[f] for f in FIGURES] == pytest.approx([metrics[f] for f in FIGURES], abs=1e-4)


def test_the_training_flip_mirrors_left_right_only() -> None:
    image = np.arange(5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)  # no symmetry
    flip = build_augmentation(["flip"], seed=11)
    outputs = np.asarray(flip(np.stack([image] * 32), training=True))
    same = [np.array_equal(out, image) for out in outputs]
    mirrored = [np.array_equal(out, image[:, ::-1]) for out in outputs]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))  # never up-down
    assert any(same) and any(mirrored)


def coloured_tree(root: Path, per_class: int = 10) -> dict[tuple[int, int, int], str]:
    """A tree of plain images, each of its own colour; colour -> path."""
    colours = {}
    classes = []
    for c, slug in enumerate(("a", "b", "c")):
        (root / slug).mkdir(parents=True)
        for i in range(per_class):
            k = c * per_class + i
            colour = (8 * k + 4, 250 - 8 * k, (37 * k) % 256)
            path = root / slug / f"{slug}_{i:02d}.png"
            Image.new("RGB", (20, 20), colour).save(path)
            colours[colour] = str(path)
        classes.append({"index": c, "slug": slug, "name": slug.upper(), "members": [slug]})
    counts = {slug: per_class for slug in ("a", "b", "c")}
    labels = {
        "category": "collar_design_labels",
        "classes": classes,
        "dropped": [],
        "counts": counts,
    }
    (root / "labels.json").write_text(json.dumps(labels))
    return colours


def mean_colour(backbone: str, image_size: int, weights: object) -> keras.Model:
    """A feature extractor whose features are the image's mean colour: its identity here."""
    inputs = keras.Input((image_size, image_size, 3))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))


def test_the_cached_features_are_exactly_the_splits_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    colours = coloured_tree(tmp_path / "tree")
    monkeypatch.setattr(features_module, "build_feature_extractor", mean_colour)
    settings = small(weights="imagenet", augmentations=(), image_size=8)
    folder = tmp_path / "features"
    extract_features(
        tmp_path / "tree",
        folder,
        settings,
        split=split_files(tmp_path / "tree", settings)["split"],
        log=lambda line: None,
    )
    codes = np.array(list(colours), dtype=np.float32)
    names = list(colours.values())
    split = pd.read_csv(split_files(tmp_path / "tree", settings)["split"])
    assert (split["subset"] == "test").any()
    for subset in ("train", "validation", "test"):
        rows = split.loc[split["subset"] == subset, "image"].tolist()
        for features in np.load(folder / f"{subset}_features.npy"):  # each view
            nearest = np.abs(features[:, None, :] - codes[None]).max(axis=-1).argmin(axis=1)
            assert [names[i] for i in nearest] == rows


def test_the_images_a_model_trains_on_are_exactly_the_splits_training_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "tree", per_class=10, size=24, seed=6)
    trained_on: list[list[str]] = []

    def spy(*args: object, **kwargs: object) -> object:
        call = inspect.signature(make_dataset).bind(*args, **kwargs).arguments
        if call["training"]:
            trained_on.append(list(call["paths"]))
        return make_dataset(*args, **kwargs)

    monkeypatch.setattr(run_module, "make_dataset", spy)
    train_category(
        tree,
        tmp_path / "model",
        small(cache_features=False),
        **split_files(tree, small(cache_features=False)),
        log=lambda line: None,
    )
    split = pd.read_csv(tmp_path / "model" / "split.csv")
    train = split.loc[split["subset"] == "train", "image"].tolist()
    assert (split["subset"] == "test").any() and trained_on
    for paths in trained_on:
        assert sorted(paths) == sorted(train)
