"""train_group on two tiny categories: the mask, the outputs of the group and its members,
resume after a kill, the feature cache."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from training_helpers import assert_held_out_is_the_models, limit_threads, make_tree, split_files

limit_threads()

import keras  # noqa: E402

import fashionai.training.run as run_module  # noqa: E402
from fashionai.pixels import load_images  # noqa: E402
from fashionai.prediction.predict import TrainedModel, predict_files  # noqa: E402
from fashionai.training.callbacks import EpochBackup  # noqa: E402
from fashionai.training.groups import HeadRows, masked_targets, train_group  # noqa: E402
from fashionai.training.model import (  # noqa: E402
    OWN_LOSS,
    build_group_classifier,
    classifier_parts,
    compile_classifier,
    group_head_name,
)
from fashionai.training.settings import TrainSettings  # noqa: E402

pytestmark = pytest.mark.slow

CATEGORIES = ("collar_design_labels", "lapel_design_labels")
MEMBER_FILES = ["best.weights.h5", "held_out.csv", "history.csv", "model.keras", "split.csv",
                "training.json"]  # fmt: skip
HISTORY_COLUMNS = ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]


def stage_files(groups: dict[str, Path], settings: TrainSettings) -> dict[str, dict[str, Path]]:
    """The split stage's files of each category: train_group's ``splits`` and ``skipped``."""
    files = {category: split_files(tree, settings) for category, tree in groups.items()}
    return {
        "splits": {category: f["split"] for category, f in files.items()},
        "skipped": {category: f["skipped"] for category, f in files.items()},
    }


def small(**overrides: object) -> TrainSettings:
    base = dict(backbone="SmallCNN", weights=None, image_size=16, batch_size=8, epochs=2,
                patience=5, learning_rate=1e-2, seed=3, cache_features=False)  # fmt: skip
    return TrainSettings(**{**base, **overrides})


def trees(root: Path, per_class: int = 5) -> dict[str, Path]:
    return {
        category: make_tree(
            root / category,
            per_class=per_class,
            size=24,
            seed=index,
            category=category,
            odd_files=False,
        )  # fmt: skip
        for index, category in enumerate(CATEGORIES)
    }


def test_masked_targets_weigh_each_row_for_its_own_head_only() -> None:
    soft = np.array([[0.8, 0.2], [0.0, 1.0]], dtype=np.float32)
    targets, weights = masked_targets({
        "a": HeadRows(np.array([2, 0, 2]), class_weight={0: 3.0, 1: 1.0, 2: 0.5}),
        "b": HeadRows(np.array([0, 1]), targets=soft),
    })  # fmt: skip
    np.testing.assert_array_equal(weights["a"], [0.5, 3.0, 0.5, 0, 0])
    np.testing.assert_array_equal(weights["b"], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(targets["a"][:3], [2, 0, 2])
    assert targets["a"].shape == (5,) and set(targets["a"][3:]) <= {0, 1, 2}
    np.testing.assert_array_equal(targets["b"][3:], soft)
    assert targets["b"].shape == (5, 2) and targets["b"].dtype == np.float32


def test_an_image_trains_its_own_head_and_never_another(tmp_path: Path) -> None:
    """One step on a batch of category a's images only: a's head moves, b's head does not
    (without the sample weights' mask it would: b's loss on a's images pulls it)."""
    settings = small(dropout=0.0)
    keras.utils.set_random_seed(1)
    classifier = build_group_classifier(settings, {"a": 3, "b": 2})
    compile_classifier(classifier.model, 0.05, settings=settings, outputs=("a", "b"))
    tree = make_tree(tmp_path / "tree", per_class=3, size=24, odd_files=False)
    images = load_images([str(p) for p in sorted(tree.glob("*/*.jpg"))], 16)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    targets, weights = masked_targets({"a": HeadRows(labels), "b": HeadRows(labels[:0])})
    heads = {name: classifier.model.get_layer(group_head_name(name)) for name in "ab"}
    before = {name: [w.copy() for w in head.get_weights()] for name, head in heads.items()}
    classifier.model.train_on_batch(images, targets, sample_weight=weights)
    for name, moved in (("a", True), ("b", False)):
        changed = any(
            not np.array_equal(old, new)
            for old, new in zip(before[name], heads[name].get_weights(), strict=True)
        )
        assert changed == moved, name


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("grouped")
    settings = small(augmentations=("flip",), class_weights=True, label_smoothing=0.1)
    lines: list[str] = []
    groups = trees(root)
    summary = train_group(
        "design", groups, root / "out", settings, **stage_files(groups, settings), log=lines.append
    )
    return SimpleNamespace(out=root / "out", summary=summary, lines=lines, settings=settings)


def test_a_group_writes_its_model_and_a_model_folder_per_category(grouped: SimpleNamespace) -> None:
    out, summary = grouped.out, grouped.summary
    assert sorted(p.name for p in out.iterdir()) == [
        "best.weights.h5", "history.csv", "members", "model.keras", "training.json"
    ]  # fmt: skip
    assert json.loads((out / "training.json").read_text()) == summary
    assert summary["group"] == "design" and summary["categories"] == list(CATEGORIES)
    history = pd.read_csv(out / "history.csv")
    heads = [f"{p}{c}_{m}" for c in CATEGORIES for p, m in
             (("", "accuracy"), ("", "loss"), ("val_", "accuracy"), ("val_", "loss"))]  # fmt: skip
    assert list(history.columns) == HISTORY_COLUMNS + heads
    assert history["epoch"].tolist() == [0, 1]
    mean = history[[f"val_{c}_accuracy" for c in CATEGORIES]].mean(axis=1)
    np.testing.assert_allclose(history["val_accuracy"], mean, rtol=1e-6)
    assert summary["best_epoch"] == int(history["val_accuracy"].idxmax())
    model = keras.models.load_model(out / "model.keras")
    assert sorted(model.output) == sorted(CATEGORIES)
    assert any(line.startswith("epoch 1/1 [head] loss") for line in grouped.lines)


@pytest.mark.parametrize("category", CATEGORIES)
def test_each_member_folder_is_a_category_model_folder(
    grouped: SimpleNamespace, category: str
) -> None:
    folder = grouped.out / "members" / category
    assert sorted(p.name for p in folder.iterdir()) == MEMBER_FILES
    summary = json.loads((folder / "training.json").read_text())
    assert summary["category"] == category and summary["group"] == "design"
    assert summary["group_categories"] == list(CATEGORIES)
    assert summary["best_epoch"] == grouped.summary["best_epoch"]
    assert summary["class_weights"] is not None
    history = pd.read_csv(folder / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    group = pd.read_csv(grouped.out / "history.csv")
    np.testing.assert_allclose(history["val_accuracy"], group[f"val_{category}_accuracy"])
    assert summary["best_val_accuracy"] == pytest.approx(
        history["val_accuracy"][summary["best_epoch"]]
    )
    split = pd.read_csv(folder / "split.csv")
    held_out = pd.read_csv(folder / "held_out.csv")
    assert sorted(held_out["image"]) == sorted(split.loc[split["subset"] != "train", "image"])
    assert all(category in path for path in split["image"])
    # The head's validation accuracy (masked to its own images) is its held-out predictions'.
    rows = held_out.merge(split[["image", "label_index"]], on="image")
    validation = rows[rows["subset"] == "validation"]
    guessed = validation.filter(like="plain_").to_numpy().argmax(axis=1)
    own = float((guessed == validation["label_index"].to_numpy()).mean())
    assert summary["best_val_accuracy"] == pytest.approx(own, abs=1e-6)
    trained = TrainedModel.load(folder)
    assert classifier_parts(trained.model).head.output_shape[-1] == 3
    predictions = predict_files(trained, held_out["image"], tta=True, log=lambda line: None)
    np.testing.assert_allclose(predictions.plain, held_out.filter(like="plain_"), atol=1e-5)


def test_the_member_model_is_the_group_model_for_its_category(grouped: SimpleNamespace) -> None:
    group = keras.models.load_model(grouped.out / "model.keras")
    for category in CATEGORIES:
        member = keras.models.load_model(grouped.out / "members" / category / "model.keras")
        split = pd.read_csv(grouped.out / "members" / category / "split.csv")
        images = load_images(split["image"][:4].tolist(), 16)
        np.testing.assert_allclose(
            member.predict(images, verbose=0),
            group.predict(images, verbose=0)[category],
            rtol=1e-5,
            atol=1e-6,
        )


class Interrupted(Exception):
    pass


def test_a_killed_group_continues_from_its_last_finished_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class KilledAfterEpoch1(EpochBackup):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                raise Interrupted

    groups, out, settings = trees(tmp_path), tmp_path / "out", small(epochs=3)
    files = stage_files(groups, settings)
    monkeypatch.setattr(run_module, "EpochBackup", KilledAfterEpoch1)
    with pytest.raises(Interrupted):
        train_group("design", groups, out, settings, **files, log=lambda line: None)
    assert [p.name for p in out.iterdir()] == [".backup"]
    monkeypatch.setattr(run_module, "EpochBackup", EpochBackup)
    lines: list[str] = []
    summary = train_group("design", groups, out, settings, **files, log=lines.append)
    assert any("resuming" in line and "2 epoch(s) finished" in line for line in lines), lines
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["2/2"]
    assert summary["attempts"] == 2 and summary["epochs_run"] == 3
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert not history[f"val_{CATEGORIES[1]}_loss"].isna().any()
    assert not (out / ".backup").exists()


def test_a_group_trains_its_heads_on_the_categories_feature_caches(tmp_path: Path) -> None:
    from fashionai.training.features import extract_features

    groups, settings = trees(tmp_path), small(epochs=2, cache_features=True)
    caches = {c: tmp_path / "features" / c for c in CATEGORIES}
    files = stage_files(groups, settings)
    for category, tree in groups.items():
        split = files["splits"][category]
        extract_features(tree, caches[category], settings, split=split, log=lambda line: None)
    lines: list[str] = []
    out = tmp_path / "out"
    summary = train_group(
        "design", groups, out, settings, **files, log=lines.append, features=caches
    )
    assert any("on cached features" in line for line in lines), lines
    assert summary["epochs_run"] == 2
    for category in CATEGORIES:
        member = json.loads((out / "members" / category / "training.json").read_text())
        assert member["features"]["cache"] == str(caches[category])
        cached = pd.read_csv(files["splits"][category])
        split = pd.read_csv(out / "members" / category / "split.csv")
        assert split["image_name"].tolist() == cached["image_name"].tolist()
        # Its held-out predictions: its head on its category's cached features.
        assert any(f"of {category} from {caches[category]}" in line for line in lines)
        assert_held_out_is_the_models(out / "members" / category)
    assert OWN_LOSS not in "".join(pd.read_csv(out / "history.csv").columns)
