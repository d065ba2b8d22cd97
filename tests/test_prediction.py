"""Predicting files with a tiny real model: rows follow files, flip TTA flips, refused images
are named with their reason, and the command line reports each image."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fashionai.__main__ import main
from fashionai.images import check_image
from fashionai.prediction.predict import FOLDER, TrainedModel, predict_files
from tests.prediction_helpers import (
    expected,
    identity_classes,
    save_model,
    write_image,
    write_mirror,
    write_pixel_bomb,
)
from tests.training_helpers import limit_threads, subprocess_env

COLLAR = "collar_design_labels"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory):
    limit_threads()
    return save_model(tmp_path_factory.mktemp("models") / COLLAR, COLLAR, identity_classes(COLLAR))


def test_each_row_is_the_prediction_of_its_file(model_dir, tmp_path) -> None:
    pixels = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(5)]
    trained = TrainedModel.load(model_dir)
    predictions = predict_files(trained, [tmp_path / f"{i}.png" for i in range(5)], batch_size=2)
    want = expected(model_dir, *pixels)
    assert np.abs(want[0] - want[1]).max() > 0.05  # different images, different predictions
    np.testing.assert_allclose(predictions.plain, want, atol=1e-5)
    assert predictions.flipped_tta is None and predictions.skipped == {}


def test_flip_tta_is_the_mean_of_the_image_and_its_mirror_copy(model_dir, tmp_path) -> None:
    write_image(tmp_path / "image.png", seed=7)
    write_mirror(tmp_path / "image.png", tmp_path / "mirror.png")
    trained = TrainedModel.load(model_dir)
    files = [tmp_path / "image.png", tmp_path / "mirror.png"]
    predictions = predict_files(trained, files, tta=True)
    image, mirror = predictions.plain
    assert np.abs(image - mirror).max() > 0.05  # the model is not mirror-symmetric
    np.testing.assert_allclose(predictions.flipped_tta[0], (image + mirror) / 2, atol=1e-5)
    np.testing.assert_allclose(predictions.flipped_tta[1], (image + mirror) / 2, atol=1e-5)


def test_refused_files_are_skipped_with_their_reason(model_dir, tmp_path) -> None:
    write_image(tmp_path / "good.png", seed=1)
    write_pixel_bomb(tmp_path / "bomb.png")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "text.jpg").write_text("not an image")
    files = [str(tmp_path / name) for name in ("bomb.png", "good.png", "folder.jpg", "text.jpg")]
    messages: list[str] = []
    predictions = predict_files(TrainedModel.load(model_dir), files, log=messages.append)
    assert predictions.skipped == {
        files[0]: check_image(files[0]),
        files[2]: FOLDER,
        files[3]: check_image(files[3]),
    }
    assert "pixels" in predictions.skipped[files[0]]
    assert np.isnan(predictions.plain[[0, 2, 3]]).all() and np.isfinite(predictions.plain[1]).all()
    assert f"WARNING: no prediction for {files[0]}: {check_image(files[0])}" in messages


def test_a_model_and_classes_that_disagree_are_refused(model_dir, tmp_path) -> None:
    summary = json.loads((model_dir / "training.json").read_text())
    summary["classes"] = summary["classes"][:3]
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.keras").write_bytes((model_dir / "model.keras").read_bytes())
    (folder / "training.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="model.keras predicts 5 classes, training.json lists 3"):
        TrainedModel.load(folder)
    (folder / "model.keras").unlink()
    with pytest.raises(FileNotFoundError, match=r"model.keras does not exist"):
        TrainedModel.load(folder)


def test_command_line_labels_images_and_names_refused_ones(model_dir, tmp_path, capsys) -> None:
    pixels = write_image(tmp_path / "good.png", seed=3)
    write_pixel_bomb(tmp_path / "bomb.png")
    (tmp_path / "folder").mkdir()
    arguments = ["good.png", "folder", "bomb.png", "missing.jpg"]
    status = main(
        ["predict", "--category", COLLAR, "--models", str(model_dir.parent)]
        + [str(tmp_path / name) for name in arguments]
    )
    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert len(lines) == 4
    path, label, probability, _ = lines[0].split("\t")
    want = expected(model_dir, pixels)[0]
    assert path == str(tmp_path / "good.png")
    assert (label, float(probability)) == (
        identity_classes(COLLAR)[want.argmax()]["name"],
        pytest.approx(want.max(), abs=1e-3),
    )
    assert lines[1] == f"{tmp_path / 'folder'}\tERROR: {FOLDER}"
    assert lines[2] == f"{tmp_path / 'bomb.png'}\tERROR: {check_image(tmp_path / 'bomb.png')}"
    assert lines[3].startswith(f"{tmp_path / 'missing.jpg'}\tERROR: ")


def test_command_line_without_a_model_names_the_file_and_the_command_that_trains_it(
    tmp_path, capsys
) -> None:
    models = tmp_path / "results" / "experiments" / "wide" / "models"
    status = main(["predict", "--category", COLLAR, "--models", str(models), "a.jpg"])
    assert status == 2
    assert capsys.readouterr().err == (
        f"error: {models / COLLAR / 'model.keras'} does not exist: train the category first, "
        "with it in categories: of the configuration (snakemake --cores 8 --resources gpu=1 "
        f"results/experiments/wide/models/{COLLAR}/best.weights.h5)\n"
    )


def test_command_line_without_a_model_says_so_before_tensorflow_starts(tmp_path) -> None:
    code = (
        "import sys; from fashionai.__main__ import main; "
        f"status = main(['predict', '--category', '{COLLAR}', '--models', sys.argv[1], 'a.jpg']); "
        "print(status, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert result.stdout == "2 False\n"
    assert "does not exist: train the category first" in result.stderr


def test_command_line_without_a_default_model_names_the_experiments_that_have_one(
    tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for experiment in ("default-fold1", "default-fold2"):
        folder = tmp_path / "results" / "experiments" / experiment / "models" / COLLAR
        folder.mkdir(parents=True)
        (folder / "model.keras").touch()
    assert main(["predict", "--category", COLLAR, "a.jpg"]) == 2
    error = capsys.readouterr().err
    assert "results/experiments/default/models/collar_design_labels/model.keras does not" in error
    assert error.rstrip().endswith(
        "--models can name one of: results/experiments/default-fold1/models, "
        "results/experiments/default-fold2/models"
    )


@pytest.mark.parametrize(
    "models", [[], ["--models", "results/experiments/default/models"]], ids=["default", "--models"]
)
def test_command_line_refuses_the_model_of_an_experiment_with_folds(
    models, model_dir, tmp_path, capsys, monkeypatch
) -> None:
    """train.folds turned on: the folded experiment's own model is stale (its evaluation is the
    fold members'), so predict names the fold members' folders, which predict."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "results" / "experiments"
    for experiment in ("default", "default-fold1", "default-fold2"):
        shutil.copytree(model_dir, root / experiment / "models" / COLLAR)
    metrics = root / "default" / "eval" / COLLAR / "metrics.json"
    metrics.parent.mkdir(parents=True)
    folds = ["default-fold1", "default-fold2"]
    metrics.write_text(json.dumps({"evaluated_on": "out_of_fold", "folds": folds}))
    write_image(tmp_path / "a.png", seed=1)
    assert main(["predict", "--category", COLLAR, *models, "a.png"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: results/experiments/default/eval/{COLLAR}/metrics.json evaluates the fold "
        f"members of default (train.folds), not results/experiments/default/models/{COLLAR}, "
        "which the workflow no longer trains; --models can name one of: "
        "results/experiments/default-fold1/models, results/experiments/default-fold2/models\n"
    )
    fold = ["--models", "results/experiments/default-fold1/models"]
    assert main(["predict", "--category", COLLAR, *fold, "a.png"]) == 0
    assert capsys.readouterr().out.startswith("a.png\t")


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_command_line_refuses_a_batch_size_below_one(value, tmp_path, capsys) -> None:
    """An argparse error before TensorFlow starts, not a TensorFlow traceback."""
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--category", COLLAR, "--batch-size", value, str(tmp_path / "a.png")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"error: argument --batch-size: {value!r} is not a whole number of 1 or more\n"
    )


def test_command_line_escapes_tabs_and_newlines_in_file_names(model_dir, tmp_path, capsys) -> None:
    """One line of tab-separated fields per image, whatever its name (escaped as --help says)."""
    good = tmp_path / "a\tb\nc\\d.png"
    write_image(good, seed=4)
    missing = tmp_path / "gone\r\n.png"
    status = main(
        [
            "predict",
            "--category",
            COLLAR,
            "--models",
            str(model_dir.parent),
            str(good),
            str(missing),
        ]
    )
    lines = capsys.readouterr().out.split("\n")
    assert status == 1
    assert len(lines) == 3 and lines[2] == ""
    fields = lines[0].split("\t")
    assert len(fields) == 4
    assert fields[0] == f"{tmp_path}/a\\tb\\nc\\\\d.png"
    assert fields[0].encode().decode("unicode_escape") == str(good)  # reversible
    path, reason = lines[1].split("\t")
    assert path == f"{tmp_path}/gone\\r\\n.png"
    assert reason.startswith("ERROR: ") and "\r" not in reason


def test_a_model_trained_on_padded_images_sees_padded_images(model_dir, tmp_path) -> None:
    """train.resize: pad is applied at prediction as at training (collar: padded below)."""
    from dataclasses import replace

    from tests.prediction_helpers import SIZE

    wide = np.random.default_rng(3).integers(0, 256, (SIZE // 2, SIZE, 3), dtype=np.uint8)
    Image.fromarray(wide).save(tmp_path / "wide.png", format="PNG")
    trained = replace(TrainedModel.load(model_dir), resize="pad")
    padded = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    padded[: SIZE // 2] = wide  # a design category keeps the top of the frame
    got = predict_files(trained, [tmp_path / "wide.png"]).plain
    np.testing.assert_allclose(got, expected(model_dir, padded), atol=1e-5)
    stretched = predict_files(TrainedModel.load(model_dir), [tmp_path / "wide.png"]).plain
    assert np.abs(got - stretched).max() > 0.01
