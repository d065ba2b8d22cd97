"""K-fold members (train.folds): the fold split, the expansion of an experiment into its fold
members (names, settings, ensemble members, refused names), the out-of-fold evaluation on
hand-made predictions, and the ensemble of fold members scored on the test images alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashionai.config import (
    ConfigError,
    ensemble_members,
    experiment_settings,
    fold_members,
    validate_config,
)
from fashionai.evaluation.ensemble import evaluate
from fashionai.evaluation.metric import evaluate_predictions
from fashionai.model_folder import Predictions, write_held_out
from fashionai.outputs import MEAN, OUT_OF_FOLD
from fashionai.splits import COLUMNS, fold_split, split_dataset
from fashionai.training.settings import TrainSettings, feature_settings, model_settings
from tests.prediction_helpers import identity_classes
from tests.workflow_helpers import workflow_config

COLLAR = "collar_design_labels"
CLASSES = identity_classes(COLLAR)  # 5 classes


def listing(per_class: tuple[int, ...]) -> pd.DataFrame:
    """A category listing with ``per_class`` images per class (no files needed)."""
    rows = [
        (f"c{i}/{j:03d}.jpg", f"c{i}_{j:03d}", f"c{i}", i)
        for i, n in enumerate(per_class)
        for j in range(n)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_the_folds_share_the_test_part_and_cut_the_rest_into_disjoint_strata() -> None:
    frame = listing((23, 11, 7, 40))
    slugs = [f"c{i}" for i in range(4)]
    plain = split_dataset(frame, slugs, 0.2, 0.1, seed=117)
    folds = [fold_split(plain, 3, fold, seed=117) for fold in (1, 2, 3)]
    test = plain["subset"] == "test"
    for split in folds:
        assert split[COLUMNS].equals(plain[COLUMNS])
        assert (split["subset"] == "test").equals(test)  # the no-fold split's test part
    validation = [set(split.loc[split["subset"] == "validation", "image"]) for split in folds]
    assert sum(map(len, validation)) == (~test).sum()  # disjoint ...
    assert set().union(*validation) == set(plain.loc[~test, "image"])  # ... and covering
    for split, own in zip(folds, validation, strict=True):
        assert set(split.loc[split["subset"] == "train", "image"]) == (
            set(plain.loc[~test, "image"]) - own
        )
    per_fold = pd.DataFrame(
        [split.loc[split["subset"] == "validation", "label"].value_counts() for split in folds]
    )
    assert (per_fold.max() - per_fold.min() <= 1).all(), per_fold  # stratified
    assert abs(per_fold.sum(axis=1).max() - per_fold.sum(axis=1).min()) <= 1  # balanced folds
    again = fold_split(split_dataset(frame, slugs, 0.2, 0.1, seed=117), 3, 2, seed=117)
    assert again.equals(folds[1])
    other = fold_split(split_dataset(frame, slugs, 0.2, 0.1, seed=117), 3, 2, seed=5)
    assert not other["subset"].equals(folds[1]["subset"])


def test_a_fold_outside_the_folds_or_a_class_too_small_is_refused() -> None:
    frame = listing((10, 3))
    plain = split_dataset(frame, ["c0", "c1"], 0.2, 0.1, seed=0)  # c1: 2 non-test images
    with pytest.raises(ValueError, match=r"fold 4 of 3"):
        fold_split(plain, 3, 4, seed=0)
    with pytest.raises(ValueError, match=r"class 'c1' has 2 image\(s\) outside the test part"):
        fold_split(plain, 3, 1, seed=0)
    assert set(fold_split(plain, 2, 1, seed=0)["subset"]) == {"train", "validation", "test"}


def config_with(**overrides: object) -> dict:
    return validate_config(workflow_config(categories=[COLLAR], **overrides))


def test_an_experiment_with_folds_is_its_fold_members() -> None:
    config = config_with(
        experiments={"wide": {"folds": 3, "image_size": 40}, "plain": {"dropout": 0.3}},
        ensemble={"members": ["wide", "plain"]},
    )
    settings = experiment_settings(config)
    assert list(settings) == ["default", "wide-fold1", "wide-fold2", "wide-fold3", "plain"]
    assert fold_members(config) == {"wide": ["wide-fold1", "wide-fold2", "wide-fold3"]}
    assert [settings[f"wide-fold{i}"]["fold"] for i in (1, 2, 3)] == [1, 2, 3]
    assert settings["wide-fold2"] == {**config["train"], "image_size": 40, "folds": 3, "fold": 2}
    assert "fold" not in settings["plain"] and settings["plain"]["folds"] is None
    assert ensemble_members(config) == ["wide-fold1", "wide-fold2", "wide-fold3", "plain"]
    model = TrainSettings.from_config(model_settings(settings["wide-fold3"]))
    assert (model.folds, model.fold) == (3, 3)
    # Each fold member has a split of its own, so a feature cache of its own.
    features = [feature_settings(model_settings(settings[f"wide-fold{i}"])) for i in (1, 2)]
    assert features[0] != features[1]
    assert "fold" not in feature_settings(model_settings(settings["plain"]))


def test_folds_in_train_fold_every_experiment_and_the_default_prediction() -> None:
    config = config_with(train={"folds": 2}, experiments={"single": {"folds": None}})
    assert list(experiment_settings(config)) == ["default-fold1", "default-fold2", "single"]
    assert ensemble_members(config) == ["default-fold1", "default-fold2"]  # no ensemble: block


LONG = "e" + "0123456789" * 5 + "abcdefghi"  # 60 characters, the longest fold name 66
REFUSED = {
    "a name of a fold member": (
        {"experiments": {"wide": {"folds": 2}, "wide-fold2": {"dropout": 0.1}}},
        "experiments.wide-fold2: the name of fold member 'wide-fold2' of experiments.wide.folds",
    ),
    "a name of a default fold member, in other case": (
        {"train": {"folds": 2}, "experiments": {"Default-Fold1": None}},
        "experiments.Default-Fold1: the name of fold member 'default-fold1' of train.folds = 2",
    ),
    "one fold": ({"experiments": {"w": {"folds": 1}}}, "experiments.w.folds = 1: "),
    "no test part": (
        {"train": {"folds": 2, "test_split": 0}},
        "train.folds = 2: needs train.test_split above 0",
    ),
    "a fold member's name too long": (
        {"experiments": {LONG: {"folds": 2}}},
        f"experiments.{LONG}.folds = 2: fold member: the name has 66 characters",
    ),
    "fold is not a config key": ({"train": {"fold": 1}}, "train.fold = 1: not a known key"),
}


@pytest.mark.parametrize(("overrides", "expected"), REFUSED.values(), ids=list(REFUSED))
def test_bad_folds_are_refused_by_key(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        config_with(**overrides)
    assert str(error.value).startswith(expected), error.value


def probabilities(winners: list[int], confidence: float) -> np.ndarray:
    """One row per image: ``confidence`` at its winning class, the rest spread evenly."""
    rows = np.full((len(winners), len(CLASSES)), (1 - confidence) / (len(CLASSES) - 1))
    rows[np.arange(len(winners)), winners] = confidence
    return rows.astype(np.float32)


@pytest.fixture
def fold_members_on_disk(tmp_path: Path) -> tuple[dict[str, Path], pd.DataFrame, dict]:
    """Two fold members of a 5-class category (the folds of :func:`fold_split`) with hand-made
    held-out predictions: each member predicts every held-out image's class right except the
    images listed in ``wrong`` (its own), and decoded.csv with one ``m`` code."""
    frame = listing((4, 4, 4, 4, 4))
    frame["image"] = [str(tmp_path / "images" / path) for path in frame["image"]]
    plain = split_dataset(frame, [f"c{i}" for i in range(5)], 0.2, 0.2, seed=3)
    codes = {
        name: "".join("y" if k == label else "n" for k in range(5))
        for name, label in zip(frame["image_name"], frame["label_index"], strict=True)
    }
    codes["c2_001"] = "nnymm"
    pd.DataFrame(
        {"attribute": COLLAR, "image_name": list(codes), "code": list(codes.values())}
    ).to_csv(tmp_path / "decoded.csv", index=False)
    dirs, wrong = {}, {}
    for fold in (1, 2):
        split = fold_split(plain, 2, fold, seed=3)
        held_out = split[split["subset"] != "train"].reset_index(drop=True)
        winners = held_out["label_index"].to_numpy().copy()
        wrong[fold] = set(held_out["image_name"][:: 3 + fold])  # every 4th / 5th image
        missed = held_out["image_name"].isin(wrong[fold]).to_numpy()
        winners[missed] = (winners[missed] + 1) % 5
        folder = tmp_path / f"wide-fold{fold}"
        folder.mkdir()
        (folder / "training.json").write_text(json.dumps({"category": COLLAR, "classes": CLASSES}))
        split.to_csv(folder / "split.csv", index=False)
        plain_rows, flipped = (probabilities(winners, confidence(fold, f)) for f in (0, 1))
        predictions = Predictions(plain_rows, flipped, {})
        write_held_out(folder / "held_out.csv", held_out, predictions)
        dirs[f"wide-fold{fold}"] = folder
    return dirs, plain, {"codes": codes, "wrong": wrong}


def test_out_of_fold_figures_are_on_every_non_test_image(fold_members_on_disk, tmp_path) -> None:
    dirs, plain, hand = fold_members_on_disk
    metrics = evaluate(
        dirs,
        tmp_path / "decoded.csv",
        tmp_path / "oof.json",
        tmp_path / "oof.png",
        combine=OUT_OF_FOLD,
        tta=True,
        log=lambda _: None,
    )
    assert json.loads((tmp_path / "oof.json").read_text()) == metrics
    assert (tmp_path / "oof.png").stat().st_size > 0
    assert metrics["evaluated_on"] == "out_of_fold"
    assert metrics["folds"] == ["wide-fold1", "wide-fold2"]
    non_test = plain[plain["subset"] != "test"]
    assert metrics["n_images"] == len(non_test) == 15
    # Each image scored by the member that validated on it: wrong where that member was.
    splits = {fold: pd.read_csv(dirs[f"wide-fold{fold}"] / "split.csv") for fold in (1, 2)}
    rows = pd.concat([split.assign(fold=fold) for fold, split in splits.items()])
    rows = rows[rows["subset"] == "validation"]
    truth, codes = rows["label_index"].to_numpy(), [hand["codes"][n] for n in rows["image_name"]]
    for flipped, figures in ((False, metrics), (True, metrics["flip_tta"])):
        table = np.vstack(
            [
                member_row(row.image_name, row.label_index, row.fold, hand["wrong"], flipped)
                for row in rows.itertuples()
            ]
        )
        assert figures["accuracy"] == pytest.approx(np.mean(table.argmax(axis=1) == truth))
        by_hand = evaluate_predictions(table, truth, codes, CLASSES, COLLAR)
        for key in ("ap", "basic_precision", "official_ap", "official_basic_precision"):
            assert figures[key] == pytest.approx(by_hand[key]), (flipped, key)
    assert 0.5 < metrics["accuracy"] < 1  # some of each member's own images are wrong
    assert metrics["ap"] != metrics["flip_tta"]["ap"]  # the folds rank in other orders
    # Beside them: the members' ensemble on the test images, as the ensemble's metrics.json
    # has it: the mean of their TTA rows, the plain mean under without_tta.
    test = plain[plain["subset"] == "test"]
    assert metrics["test"]["n_images"] == len(test) == 5
    assert metrics["test"]["ensemble"] == {"members": ["wide-fold1", "wide-fold2"], "tta": True}
    accuracies = []
    for flipped, figures in ((False, metrics["test"]["without_tta"]), (True, metrics["test"])):
        mean = [
            sum(member_row(name, label, fold, hand["wrong"], flipped) for fold in (1, 2)) / 2
            for name, label in zip(test["image_name"], test["label_index"], strict=True)
        ]
        right = np.vstack(mean).argmax(axis=1) == test["label_index"].to_numpy()
        assert figures["accuracy"] == pytest.approx(right.mean()), flipped
        accuracies.append(figures["accuracy"])
    assert len({*accuracies, metrics["accuracy"]}) == 3  # plain, TTA and out-of-fold differ


def confidence(fold: int, flipped: bool) -> float:
    """A fold member's confidence: the folds rank in one order plain, in the other with TTA."""
    return 0.6 + 0.1 * fold if flipped else 0.9 - 0.1 * fold


def member_row(name: str, label: int, fold: int, wrong: dict, flipped: bool) -> np.ndarray:
    """A fold member's probabilities of one image, as the fixture wrote them."""
    winner = (label + 1) % 5 if name in wrong[fold] else label
    return probabilities([winner], confidence(fold, flipped))


@pytest.mark.parametrize(
    "folds", [(1, 1), (1, 2, 1)], ids=["a fold missing", "every fold, one twice"]
)
def test_validation_parts_that_are_not_folds_are_refused(
    folds, fold_members_on_disk, tmp_path
) -> None:
    dirs, *_ = fold_members_on_disk
    listed = {f"member{i}": dirs[f"wide-fold{fold}"] for i, fold in enumerate(folds)}
    with pytest.raises(ValueError, match=re.escape("do not cover each non-test image")):
        evaluate(
            listed,
            tmp_path / "decoded.csv",
            tmp_path / "m.json",
            tmp_path / "c",
            combine=OUT_OF_FOLD,
        )
    assert not (tmp_path / "m.json").exists()


# Changes to a fold member's folder that check_members refuses; each returns what it names.
def rename_a_class(folder: Path) -> str:
    summary = json.loads((folder / "training.json").read_text())
    summary["classes"][0]["name"] = "Other"
    (folder / "training.json").write_text(json.dumps(summary))
    return "classes"


def drop_a_training_image(folder: Path) -> str:
    split = pd.read_csv(folder / "split.csv")
    dropped = split.drop(index=split.index[split["subset"] == "train"][0])
    dropped.to_csv(folder / "split.csv", index=False)
    return "split"


def swap_a_test_image(folder: Path) -> str:
    split = pd.read_csv(folder / "split.csv")
    test, validation = (
        split.index[split["subset"] == subset][0] for subset in ("test", "validation")
    )
    split.loc[[test, validation], "subset"] = ["validation", "test"]
    split.to_csv(folder / "split.csv", index=False)
    return "split"


@pytest.mark.parametrize("change", [rename_a_class, drop_a_training_image, swap_a_test_image])
def test_fold_members_that_differ_are_refused_by_name(change, fold_members_on_disk, tmp_path):
    dirs, *_ = fold_members_on_disk
    what = change(dirs["wide-fold2"])
    expected = f"ensemble members wide-fold2 differ from wide-fold1 in their {what} "
    with pytest.raises(ValueError, match=re.escape(expected)):
        evaluate(
            dirs, tmp_path / "decoded.csv", tmp_path / "m.json", tmp_path / "c", combine=OUT_OF_FOLD
        )
    assert not (tmp_path / "m.json").exists()


def test_the_ensemble_of_fold_members_is_scored_on_the_test_images(fold_members_on_disk, tmp_path):
    dirs, plain, _ = fold_members_on_disk
    metrics = evaluate(
        dirs,
        tmp_path / "decoded.csv",
        tmp_path / "e.json",
        tmp_path / "e.png",
        combine=MEAN,
        tta=True,
    )
    assert metrics["evaluated_on"] == "test" and "validation" not in metrics
    assert metrics["n_images"] == (plain["subset"] == "test").sum()
    assert metrics["ensemble"] == {"members": ["wide-fold1", "wide-fold2"], "tta": True}
