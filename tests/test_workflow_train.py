"""End to end through snakemake: archives -> trained models, curves, metrics, submission,
the prediction command and the HTML report, for two categories on tiny generated data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashionai.attributes import ATTRIBUTES
from tests.workflow_helpers import REPO, run_snakemake, tiny_config

pytestmark = pytest.mark.slow

CATEGORIES = ["collar_design_labels", "sleeve_length_labels"]


def config() -> dict:
    return tiny_config(
        categories=CATEGORIES,
        questions="resources/synthetic/fashionAI_attributes_test_a_20180222.tar",
        train={"fine_tune": True, "head_epochs": 1, "epochs": 3, "learning_rate": 0.01},
        eval={"tta": True},
    )


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("full-run")
    result = run_snakemake(workdir, config())
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir


def test_every_category_has_its_model_weights_history_and_curves(full_run: Path) -> None:
    for category in CATEGORIES:
        models = full_run / "results/models" / category
        for name in ("model.keras", "best.weights.h5", "split.csv", "training.json"):
            assert (models / name).stat().st_size > 0, name
        history = pd.read_csv(models / "history.csv")
        assert list(history.columns) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
        assert history["epoch"].tolist() == list(range(len(history)))
        summary = json.loads((models / "training.json").read_text())
        assert summary["best_val_accuracy"] == pytest.approx(history["val_accuracy"].max())
        assert not (models / ".backup").exists()
        plot = full_run / "results/plots" / category / "learning_curves.png"
        assert plot.stat().st_size > 20_000
        assert "best val_accuracy" in (full_run / "logs/train" / f"{category}.log").read_text()


def test_the_split_holds_out_30_percent_of_each_class(full_run: Path) -> None:
    split = pd.read_csv(full_run / "results/models/collar_design_labels/split.csv")
    share = split.groupby("label")["subset"].apply(lambda s: (s == "validation").mean())
    assert share.between(0.15, 0.5).all(), share


def test_metrics_and_confusion_matrix(full_run: Path) -> None:
    for category in CATEGORIES:
        metrics = json.loads((full_run / "results/eval" / category / "metrics.json").read_text())
        split = pd.read_csv(full_run / "results/models" / category / "split.csv")
        held_out = split["subset"].value_counts()
        on = metrics["evaluated_on"]
        assert on == ("test" if "test" in held_out else "validation")
        assert metrics["n_images"] + len(metrics["skipped_images"]) == held_out[on]
        if on == "test":
            validation = metrics["validation"]
            assert validation["n_images"] == held_out["validation"]
            assert "flip_tta" in validation
        for key in ("accuracy", "basic_precision", "ap", "per_class", "flip_tta"):
            assert key in metrics
        assert np.array(metrics["confusion_matrix"]).sum() == metrics["n_images"]
        assert (full_run / "results/eval" / category / "confusion_matrix.png").exists()
    summary = pd.read_csv(full_run / "results/summary.csv")
    assert summary["category"].tolist() == [*CATEGORIES, "mean"]
    assert "evaluated_on" in summary.columns


def test_submission_has_one_line_per_question_of_the_trained_categories(full_run: Path) -> None:
    lines = (full_run / "results/submission.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines]
    assert {attribute for _, attribute, _ in rows} == set(CATEGORIES)
    per_category = pd.Series([attribute for _, attribute, _ in rows]).value_counts()
    assert (per_category == 4).all()  # questions_per_attribute in tiny_config
    for _, attribute, probabilities in rows:
        values = [float(p) for p in probabilities.split(";")]
        assert len(values) == len(ATTRIBUTES[attribute])
        assert sum(values) == pytest.approx(1.0, abs=5e-3)
    sleeve = [p for _, a, p in rows if a == "sleeve_length_labels"]
    assert all(p.split(";")[0] == "0.0000" for p in sleeve)  # Invisible is dropped
    log = (full_run / "logs/predict.log").read_text()
    assert "left out: no model for it" in log  # the other six categories' questions


def test_predict_command_labels_an_image_file_and_names_a_folder(full_run: Path) -> None:
    image = next((full_run / "results/regrouped/collar_design_labels").glob("*/*.jpg"))
    command = [sys.executable, "-m", "fashionai", "predict", "--category", "collar_design_labels"]
    command += ["--models", str(full_run / "results/models"), str(image), str(image.parent)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 1, result.stderr
    labelled, folder = result.stdout.splitlines()
    path, label, probability, ranked = labelled.split("\t")
    assert path == str(image) and label in ATTRIBUTES["collar_design_labels"]
    assert 0 < float(probability) <= 1 and ranked.count("=") == 5
    assert folder == f"{image.parent}\tERROR: a folder, not an image file"


def test_html_report(full_run: Path) -> None:
    result = run_snakemake(full_run, config(), extra=("--report", "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    html = (full_run / "report.html").read_text(errors="replace")
    assert "learning_curves.png" in html and "confusion_matrix.png" in html
