"""Evaluating a category with a tiny real model: the figures are on the test images (validation
beside them), match a hand computation on the model's own outputs, and the summary says which
images they are on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashionai.evaluation import ensemble
from fashionai.evaluation.ensemble import evaluate
from fashionai.evaluation.evaluate import TTA_KEYS, load_held_out
from fashionai.evaluation.summary import summary_table, to_markdown, write_summary
from fashionai.images import check_image
from fashionai.model_folder import Predictions, read_held_out, write_held_out
from fashionai.prediction.predict import TrainedModel, predict_files
from tests.prediction_helpers import (
    expected,
    identity_classes,
    save_model,
    write_image,
    write_pixel_bomb,
)
from tests.training_helpers import limit_threads

COLLAR = "collar_design_labels"
OUTCOMES = {"test": "yyny mny", "validation": "ynm"}  # per image: y right, n wrong, m not counted


def hand_scores(probabilities: np.ndarray, codes: list[str]) -> tuple[float, float]:
    """AP and BasicPrecision as the competition defines them, one threshold at a time."""
    ranked = sorted(
        ((row.max(), code[row.argmax()]) for row, code in zip(probabilities, codes, strict=True)),
        key=lambda pair: -pair[0],
    )
    precisions = []
    for kept in range(1, len(ranked) + 1):
        counted = [letter for _, letter in ranked[:kept] if letter != "m"]
        if counted:
            precisions.append(counted.count("y") / len(counted))
    return sum(precisions) / len(precisions), precisions[-1]


@pytest.fixture(scope="module")
def category(tmp_path_factory: pytest.TempPathFactory):
    """A model, its split (train, validation and test images, one test image a pixel bomb),
    its held-out predictions and decoded codes chosen so that each prediction is right, wrong
    or at an ``m`` class."""
    limit_threads()
    root = tmp_path_factory.mktemp("category")
    model = save_model(root / "model", COLLAR, identity_classes(COLLAR))
    rows, decoded, truth = [], [], {}
    for subset, outcomes in (("train", "yy"), *OUTCOMES.items()):
        for i, outcome in enumerate(outcomes.replace(" ", "")):
            name = f"{subset}{i}"
            image = root / "images" / f"{name}.png"
            predicted = int(expected(model, write_image(image, seed=len(rows)))[0].argmax())
            label = predicted if outcome == "y" else (predicted + 1) % 5
            code = ["n"] * 5
            code[label] = "y"
            if outcome == "m":
                code[predicted] = "m"
            rows.append((str(image), name, f"class{label}", label, subset))
            decoded.append((COLLAR, name, "".join(code)))
            truth[name] = (label, "".join(code))
    write_pixel_bomb(root / "images" / "bomb.png")
    rows.append((str(root / "images" / "bomb.png"), "bomb", "class0", 0, "test"))
    decoded.append((COLLAR, "bomb", "ynnnn"))
    columns = ["image", "image_name", "label", "label_index", "subset"]
    split = pd.DataFrame(rows, columns=columns)
    split.to_csv(model / "split.csv", index=False)
    held_out = split[split["subset"] != "train"]  # predicted as the training job does
    predictions = predict_files(TrainedModel.load(model), held_out["image"], tta=True)
    write_held_out(model / "held_out.csv", held_out, predictions)
    decoded_frame = pd.DataFrame(decoded, columns=["attribute", "image_name", "code"])
    decoded_frame.to_csv(root / "decoded.csv", index=False)
    return root, truth


def check_figures(metrics: dict, root, truth: dict, names: list[str]) -> None:
    """Every figure of ``metrics`` against a hand computation on the model's outputs."""
    images = [np.asarray(Image.open(root / "images" / f"{name}.png")) for name in names]
    probabilities = expected(root / "model", *images)
    labels = [truth[name][0] for name in names]
    codes = [truth[name][1] for name in names]
    ap, basic = hand_scores(probabilities, codes)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((5, 5), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    assert metrics["n_images"] == len(names)
    assert metrics["ap"] == pytest.approx(ap) and metrics["official_ap"] == pytest.approx(ap)
    assert metrics["basic_precision"] == pytest.approx(basic)
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert metrics["confusion_matrix"] == confusion.tolist()


def test_figures_are_on_the_test_images_with_validation_beside(category, tmp_path, monkeypatch):
    root, truth = category
    titles = []
    plot = ensemble.plot_confusion_matrix
    monkeypatch.setattr(
        ensemble, "plot_confusion_matrix", lambda *a: (titles.append(a[3]), plot(*a))[1]
    )
    out = tmp_path / "eval"
    evaluate(
        {"default": root / "model"},
        root / "decoded.csv",
        out / "metrics.json",
        out / "confusion_matrix.png",
        tta=True,
        log=lambda _: None,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "test"
    check_figures(metrics, root, truth, [f"test{i}" for i in range(7)])
    check_figures(metrics["validation"], root, truth, [f"validation{i}" for i in range(3)])
    assert "evaluated_on" not in metrics["validation"]
    assert set(metrics["flip_tta"]) == set(metrics["validation"]["flip_tta"]) == set(TTA_KEYS)
    bomb = str(root / "images" / "bomb.png")
    assert metrics["skipped_images"] == {bomb: check_image(bomb)}
    assert titles == [f"{COLLAR}: 7 test images, accuracy {metrics['accuracy']:.3f}"]
    assert (out / "confusion_matrix.png").stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "metrics.json"]


def test_without_test_images_the_figures_are_on_the_validation_images(category, tmp_path):
    root, truth = category
    model = shutil.copytree(root / "model", tmp_path / "model")
    split = pd.read_csv(model / "split.csv")
    split[split["subset"] != "test"].to_csv(model / "split.csv", index=False)
    metrics = evaluate(
        {"default": model},
        root / "decoded.csv",
        tmp_path / "metrics.json",
        tmp_path / "confusion_matrix.png",
        log=lambda _: None,
    )
    assert metrics["evaluated_on"] == "validation" and "validation" not in metrics
    check_figures(metrics, root, truth, [f"validation{i}" for i in range(3)])
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics


def test_load_held_out_names_bad_input(tmp_path):
    split, decoded = tmp_path / "split.csv", tmp_path / "decoded.csv"
    split.write_text(
        "image,image_name,label,label_index,subset\n"
        "t/a.jpg,a,x,0,train\nt/b.jpg,b,y,1,test\nt/c.jpg,c,x,0,validation\n"
    )
    decoded.write_text(
        "attribute,image_name,code\n"
        "neck_design_labels,c,ynnnn\ncollar_design_labels,b,ynnnn\n"
        "neck_design_labels,b,nmnyn\nneck_design_labels,b,nmnyn\n"
    )
    rows = load_held_out(split, decoded, "neck_design_labels")
    assert rows[["image_name", "subset", "code"]].values.tolist() == [
        ["b", "test", "nmnyn"],
        ["c", "validation", "ynnnn"],
    ]
    with pytest.raises(
        ValueError, match=r"no collar_design_labels row for 1 held-out image.*first: c"
    ):
        load_held_out(split, decoded, "collar_design_labels")
    with decoded.open("a") as handle:
        handle.write("neck_design_labels,b,nynnn\n")
    with pytest.raises(ValueError, match="image b has different codes: nmnyn, nynnn"):
        load_held_out(split, decoded, "neck_design_labels")
    split.write_text("image,image_name,label,label_index,subset\nt/a.jpg,a,x,0,train\n")
    with pytest.raises(ValueError, match="split.csv: no validation or test rows"):
        load_held_out(split, decoded, "neck_design_labels")
    split.write_text("image,image_name,label,label_index\n")
    with pytest.raises(ValueError, match="split.csv: not a split file, no column 'subset'"):
        load_held_out(split, decoded, "neck_design_labels")


METRICS = {
    "coat_length_labels": {
        "evaluated_on": "test",
        "n_images": 10,
        **dict(accuracy=0.8, basic_precision=0.7, ap=0.9),
        **dict(official_basic_precision=0.6, official_ap=0.8),
    },
    "skirt_length_labels": {
        "evaluated_on": "validation",
        "n_images": 30,
        **dict(accuracy=0.6, basic_precision=0.5, ap=None),
        **dict(official_basic_precision=0.4, official_ap=None),
    },
}


def test_summary_says_which_images_and_skips_missing_values():
    table = summary_table(METRICS)
    assert to_markdown(table).splitlines() == [
        "| category | evaluated_on | n_images | accuracy | basic_precision | ap "
        "| official_basic_precision | official_ap |",
        "|---|---|---|---|---|---|---|---|",
        "| coat_length_labels | test | 10 | 0.8000 | 0.7000 | 0.9000 | 0.6000 | 0.8000 |",
        "| skirt_length_labels | validation | 30 | 0.6000 | 0.5000 | n/a | 0.4000 | n/a |",
        "| mean | test, validation | 40 | 0.7000 | 0.6000 | 0.9000 | 0.5000 | 0.8000 |",
    ]


def test_write_summary_writes_csv_and_markdown(tmp_path):
    files = {}
    for category, metrics in METRICS.items():
        files[category] = tmp_path / f"{category}.json"
        files[category].write_text(json.dumps(metrics))
    markdown = write_summary(files, tmp_path / "summary.csv", tmp_path / "summary.md")
    assert (tmp_path / "summary.md").read_text() == markdown
    table = pd.read_csv(tmp_path / "summary.csv")
    assert table["evaluated_on"].tolist() == ["test", "validation", "test, validation"]
    assert table["ap"].tolist()[0] == 0.9 and np.isnan(table["ap"][1])


def test_read_held_out_names_the_file_and_what_is_wrong(tmp_path):
    """A held_out.csv that does not fit its model (other classes, an image missing) is refused,
    naming the file and telling to retrain; one without flip-TTA figures is never written."""
    rows = pd.DataFrame({"image": ["a.png", "b.png"], "subset": ["test", "validation"]})
    plain = np.array([[0.7, 0.3], [0.2, 0.8]], dtype=np.float32)
    path = tmp_path / "held_out.csv"
    with pytest.raises(ValueError, match="need flip-TTA figures"):
        write_held_out(path, rows, Predictions(plain, None, {}))
    write_held_out(path, rows, Predictions(plain, plain, {"b.png": "cannot be decoded"}))
    read = read_held_out(path, pd.Series(["b.png", "a.png"]), 2)
    np.testing.assert_allclose(read.plain, plain[::-1])
    assert read.skipped == {"b.png": "cannot be decoded"}
    with pytest.raises(ValueError, match=rf"{path}: holds 2 class probabilities .* has 3 classes"):
        read_held_out(path, rows["image"], 3)
    with pytest.raises(ValueError, match=rf"{path}: no prediction for 1 held-out image.*c\.png"):
        read_held_out(path, pd.Series(["a.png", "c.png"]), 2)
