"""Ensembles on tiny real models: the mean of the members' probabilities (with flip TTA the
mean of each member's plain and mirrored predictions), scored like a single model, submitted
once per member and once for the ensemble; members that differ are refused by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from fashionai.evaluation.ensemble import evaluate
from fashionai.evaluation.metric import evaluate_predictions
from fashionai.model_folder import check_members, write_held_out
from fashionai.outputs import MEAN
from fashionai.prediction.classes import expand_to_official
from fashionai.prediction.predict import TrainedModel, member_probabilities, predict_files
from fashionai.prediction.submission import write_submissions
from tests.prediction_helpers import expected, identity_classes, save_model, write_image
from tests.training_helpers import limit_threads

COLLAR = "collar_design_labels"
CLASSES = identity_classes(COLLAR)
SUBSETS = ["test", "test", "test", "test", "validation", "validation", "train"]


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory):
    """Two members (different weights) sharing classes and split, their held-out predictions
    as their training jobs write them, their images and codes."""
    limit_threads()
    root = tmp_path_factory.mktemp("ensemble")
    pixels = [write_image(root / "images" / f"i{n}.png", seed=n) for n in range(len(SUBSETS))]
    split = pd.DataFrame(
        {
            "image": [str(root / "images" / f"i{n}.png") for n in range(len(SUBSETS))],
            "image_name": [f"i{n}" for n in range(len(SUBSETS))],
            "label": "x",
            "label_index": [n % len(CLASSES) for n in range(len(SUBSETS))],
            "subset": SUBSETS,
        }
    )
    dirs = {}
    for name, seed in (("default", 1), ("wide", 2)):
        dirs[name] = save_model(root / name, COLLAR, CLASSES, seed)
        split.to_csv(dirs[name] / "split.csv", index=False)
        held_out = split[split["subset"] != "train"]
        predictions = predict_files(TrainedModel.load(dirs[name]), held_out["image"], tta=True)
        write_held_out(dirs[name] / "held_out.csv", held_out, predictions)
    codes = ["".join("y" if k == n % 5 else "n" for k in range(5)) for n in range(len(SUBSETS))]
    codes[1] = codes[1][:3] + "m" + codes[1][4:]  # an m code: some predictions are not counted
    pd.DataFrame({"attribute": COLLAR, "image_name": split["image_name"], "code": codes}).to_csv(
        root / "decoded.csv", index=False
    )
    return root, dirs, pixels, split, codes


def by_hand(dirs, pixels, tta):
    """Each member's probabilities by model.predict (plain, or mean with the mirror image)."""
    own = {}
    for name, folder in dirs.items():
        plain = expected(folder, *pixels)
        mirrored = expected(folder, *[p[:, ::-1] for p in pixels])
        own[name] = (plain + mirrored) / 2 if tta else plain
    return own


@pytest.mark.parametrize("tta", [False, True])
def test_ensemble_is_the_mean_of_the_members(members, tta):
    root, dirs, pixels, split, _ = members
    own, mean = member_probabilities(dirs, split["image"], tta=tta, log=lambda _: None)
    hand = by_hand(dirs, pixels, tta)
    for name in dirs:
        np.testing.assert_allclose(own[name], hand[name], atol=1e-6)
    assert not np.allclose(hand["default"], hand["wide"], atol=1e-3)  # the members differ
    ensemble = mean.flipped_tta if tta else mean.plain
    np.testing.assert_allclose(ensemble, (hand["default"] + hand["wide"]) / 2, atol=1e-6)
    plain = by_hand(dirs, pixels, tta=False)
    np.testing.assert_allclose(mean.plain, (plain["default"] + plain["wide"]) / 2, atol=1e-6)


def test_evaluate_ensemble_scores_the_mean_on_the_test_images(members, tmp_path):
    root, dirs, pixels, split, codes = members
    metrics = evaluate(
        dirs,
        root / "decoded.csv",
        tmp_path / "metrics.json",
        tmp_path / "confusion.png",
        combine=MEAN,
        tta=True,
        log=lambda _: None,
    )
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert (tmp_path / "confusion.png").stat().st_size > 0
    assert metrics["evaluated_on"] == "test"
    assert metrics["ensemble"] == {"members": ["default", "wide"], "tta": True}
    test = (split["subset"] == "test").to_numpy()
    labels, test_codes = (
        split["label_index"][test],
        [c for c, t in zip(codes, test, strict=True) if t],
    )

    def figures(probabilities):
        return evaluate_predictions(probabilities[test], labels, test_codes, CLASSES, COLLAR)

    tta, plain = by_hand(dirs, pixels, tta=True), by_hand(dirs, pixels, tta=False)
    with_tta = figures((tta["default"] + tta["wide"]) / 2)
    without = figures((plain["default"] + plain["wide"]) / 2)
    for key in ("accuracy", "basic_precision", "ap", "official_ap"):
        assert metrics[key] == pytest.approx(with_tta[key])
        assert metrics["without_tta"][key] == pytest.approx(without[key])
    assert metrics["n_images"] == 4 and metrics["validation"]["n_images"] == 2


def test_members_with_other_classes_or_split_are_refused_by_name(members, tmp_path):
    root, dirs, *_ = members
    other = shutil.copytree(dirs["wide"], tmp_path / "other")
    summary = json.loads((other / "training.json").read_text())
    summary["classes"] = summary["classes"][::-1]
    (other / "training.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match=r"members irv2 differ from default in their classes"):
        check_members({"default": dirs["default"], "wide": dirs["wide"], "irv2": other})
    with pytest.raises(ValueError, match=r"members irv2 differ from default in their classes"):
        evaluate(
            {"default": dirs["default"], "irv2": other},
            root / "decoded.csv",
            tmp_path / "m.json",
            tmp_path / "c.png",
            combine=MEAN,
        )
    assert not (tmp_path / "m.json").exists()
    resplit = shutil.copytree(dirs["wide"], tmp_path / "resplit")
    frame = pd.read_csv(resplit / "split.csv")
    frame.loc[0, "subset"] = "train"
    frame.to_csv(resplit / "split.csv", index=False)
    with pytest.raises(ValueError, match=r"members seed2 differ from default in their split"):
        check_members({"default": dirs["default"], "seed2": resplit})


def test_submissions_of_the_ensemble_and_of_each_member(members, tmp_path):
    """Each member predicts once; the ensemble's line is the mean of the raw probabilities."""
    root, dirs, pixels, *_ = members
    rank = tmp_path / "extracted" / "rank"
    (rank / "Images").mkdir(parents=True)
    for n in range(2):
        shutil.copy(root / "images" / f"i{n}.png", rank / "Images" / f"q{n}.png")
    (rank / "Tests").mkdir()
    (rank / "Tests/question.csv").write_text(
        "".join(f"Images/q{n}.png,{COLLAR},?\n" for n in range(2))
    )
    member_csvs = {name: tmp_path / f"{name}.csv" for name in dirs}
    messages: list[str] = []
    lines = write_submissions(
        tmp_path / "extracted",
        {name: {COLLAR: folder} for name, folder in dirs.items()},
        tmp_path / "submission.csv",
        member_csvs,
        tta=True,
        log=messages.append,
    )
    assert lines == 2
    assert sum("member default" in m for m in messages) == 1  # each member loaded once
    hand = by_hand(dirs, pixels[:2], tta=True)
    wanted = {None: (hand["default"] + hand["wide"]) / 2, **hand}
    for name, path in [(None, tmp_path / "submission.csv"), *member_csvs.items()]:
        rows = [line.split(",") for line in path.read_text().splitlines()]
        assert [row[0] for row in rows] == ["Images/q0.png", "Images/q1.png"]
        values = np.array([[float(p) for p in row[2].split(";")] for row in rows])
        official = expand_to_official(wanted[name], CLASSES, COLLAR)
        np.testing.assert_allclose(values, official, atol=5e-5)
