"""End to end through snakemake, one run shared by every test here (tests/conftest.py): archives
-> three experiments' models (one as two fold members), curves, evaluations and cards, the
out-of-fold figures, their ensemble, the comparison, the submissions, the prediction command,
the HTML report, and what a changed setting reruns; on two stand-in GPUs, two jobs at a time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashionai.attributes import ATTRIBUTES
from fashionai.evaluation.ensemble import evaluate
from fashionai.outputs import (
    CONFUSION_FILE,
    ENSEMBLE,
    MEAN,
    METRICS_FILE,
    MODEL_CARD_FILE,
    curves_file,
    eval_file,
    fold_file,
    model_dir,
    model_file,
    skipped_file,
    split_file,
    summary_file,
)
from fashionai.splits import read_skipped
from tests.conftest import FULL_RUN_CATEGORIES as CATEGORIES
from tests.conftest import TERMINAL_FILE, full_run_config
from tests.test_clean_output import alarming_lines
from tests.workflow_helpers import REPO, run_snakemake

pytestmark = pytest.mark.slow

# The config's order (its YAML sorts the names); wide (folds: 2) is its two fold members.
EXPERIMENTS = ("default", "frozen", "wide-fold1", "wide-fold2")
FOLDS = ("wide-fold1", "wide-fold2")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_experiment_has_its_model_weights_history_curves_and_card(full_run: Path) -> None:
    for experiment in EXPERIMENTS:
        for category in CATEGORIES:
            models = full_run / model_dir(category, experiment)
            for name in ("model.keras", "best.weights.h5", "split.csv", "held_out.csv"):
                assert (models / name).stat().st_size > 0, name
            history = pd.read_csv(models / "history.csv")
            assert list(history.columns) == [
                "epoch",
                "accuracy",
                "loss",
                "val_accuracy",
                "val_loss",
            ]
            assert history["epoch"].tolist() == list(range(len(history)))
            summary = read_json(models / "training.json")
            assert summary["best_val_accuracy"] == pytest.approx(history["val_accuracy"].max())
            assert not (models / ".backup").exists()
            assert (full_run / curves_file(category, experiment)).stat().st_size > 20_000
            log = full_run / "logs/train" / experiment / f"{category}.log"
            assert "best val_accuracy" in log.read_text()
            card = (models / "model_card.md").read_text()
            assert f"experiment `{experiment}`" in card
            # Its configuration holds what the data depend on too (the generated set here).
            assert "synthetic:" in card and "images_per_class: 8" in card


def test_every_model_trains_on_the_split_drawn_once_by_the_split_stage(full_run: Path) -> None:
    """Rule split's file, copied into each model folder (a fold member's: rule split_fold's,
    derived from it); training.json lists the skipped file's images."""
    for category in CATEGORIES:
        base = (full_run / split_file(category)).read_bytes()
        skipped = read_skipped(full_run / skipped_file(category))
        for experiment in EXPERIMENTS:
            fold = int(experiment[-1]) if experiment in FOLDS else None
            drawn = full_run / (fold_file(category, 2, fold) if fold else split_file(category))
            models = full_run / model_dir(category, experiment)
            assert (models / "split.csv").read_bytes() == drawn.read_bytes()
            summary = read_json(models / "training.json")
            assert summary["skipped_files"] == skipped
            log = (full_run / "logs/train" / experiment / f"{category}.log").read_text()
            assert f"split from {drawn.relative_to(full_run)}" in log
        assert (full_run / model_dir(category, "default") / "split.csv").read_bytes() == base


def test_each_experiment_trains_as_its_settings_say(full_run: Path) -> None:
    for category in CATEGORIES:
        default = read_json(full_run / model_dir(category, "default") / "training.json")
        assert default["fine_tune_start_epoch"] == 0  # a random network: one phase, no head
        assert default["features"] is None
        frozen = read_json(full_run / model_dir(category, "frozen") / "training.json")
        assert frozen["features"] is not None  # rule features' cache, an input of the job
        assert frozen["soft_targets"]["train_images"] == frozen["images"]["train"]
        wide = read_json(full_run / model_dir(category, "wide-fold1") / "training.json")
        assert wide["settings"]["image_size"] == 40
    train_log = (full_run / "logs/train/default" / f"{CATEGORIES[0]}.log").read_text()
    assert "backbone trainable," in train_log  # BatchNorm trains too: not "(BatchNorm frozen)"


def test_training_jobs_running_at_once_never_share_a_gpu(full_run: Path) -> None:
    """The run has two stand-in GPUs and ``--resources gpu=2``: each training job records the
    GPU it claimed (training.json) and, in its log, when it claimed it and how long it ran then:
    the time it held the GPU (training.json's times leave out TensorFlow's start and the saving)."""
    jobs = []
    for experiment in EXPERIMENTS:
        for category in CATEGORIES:
            summary = read_json(full_run / model_dir(category, experiment) / "training.json")
            log = (full_run / "logs/train" / experiment / f"{category}.log").read_text()
            devices = summary["gpu_devices"]
            assert devices in ("0", "1"), (experiment, devices)
            claim = re.search(rf"GPUs: claimed {devices} of 0, 1 at (\S+): ", log)
            assert claim and f": CUDA_VISIBLE_DEVICES={devices}\n" in log, log[:500]
            started = datetime.fromisoformat(claim[1])
            seconds = float(re.findall(r"^\[\s*([\d.]+)s\] ", log, flags=re.MULTILINE)[-1])
            jobs.append((experiment, devices, started, started + timedelta(seconds=seconds)))
    at_once = [(a, b) for a, b in combinations(jobs, 2) if a[2] < b[3] and b[2] < a[3]]
    assert at_once, f"no two training jobs ran at the same time, nothing was tested: {jobs}"
    for a, b in at_once:
        assert a[1] != b[1], f"{a[0]} and {b[0]} ran at the same time on GPU {a[1]}: {jobs}"


def test_every_experiment_has_one_split_and_no_test_image_is_trained_on(full_run: Path) -> None:
    for category in CATEGORIES:
        folders = [full_run / model_dir(category, e) for e in EXPERIMENTS]
        splits = [pd.read_csv(folder / "split.csv") for folder in folders]
        assert splits[1].equals(splits[0])  # default and frozen
        # The fold members: the same images and test part, a validation part of their own.
        test_parts = [split.assign(subset=split["subset"] == "test") for split in splits]
        assert all(part.equals(test_parts[0]) for part in test_parts)
        test_images = set(splits[0].loc[splits[0]["subset"] == "test", "image"])
        assert test_images
        for folder, split in zip(folders, splits, strict=True):
            assert test_images.isdisjoint(split.loc[split["subset"] != "test", "image"])
            images = read_json(folder / "training.json")["images"]
            assert images["test"] == len(test_images)
            held_out = pd.read_csv(folder / "held_out.csv")
            assert set(held_out["image"]) == set(split.loc[split["subset"] != "train", "image"])
        share = splits[0].groupby("label")["subset"].apply(lambda s: (s == "train").mean())
        assert share.between(0.4, 0.9).all(), share
        (features,) = (full_run / "results/features" / category).iterdir()  # frozen's
        cached = read_json(features / "manifest.json")["images"]
        assert cached["train"] + cached["validation"] == len(splits[0]) - len(test_images)


def test_metrics_confusion_matrices_and_summaries(full_run: Path) -> None:
    for experiment in EXPERIMENTS:
        for category in CATEGORIES:
            metrics = read_json(full_run / eval_file(METRICS_FILE, category, experiment))
            split = pd.read_csv(full_run / model_dir(category, experiment) / "split.csv")
            held_out = split["subset"].value_counts()
            assert metrics["evaluated_on"] == "test"
            assert metrics["n_images"] + len(metrics["skipped_images"]) == held_out["test"]
            assert metrics["validation"]["n_images"] == held_out["validation"]
            for key in ("accuracy", "basic_precision", "ap", "per_class", "flip_tta"):
                assert key in metrics
            assert np.array(metrics["confusion_matrix"]).sum() == metrics["n_images"]
            assert (full_run / eval_file(CONFUSION_FILE, category, experiment)).exists()
        summary = pd.read_csv(full_run / summary_file("csv", experiment))
        assert summary["category"].tolist() == [*CATEGORIES, "mean"]


def test_the_ensemble_and_the_comparison(full_run: Path) -> None:
    for category in CATEGORIES:
        metrics = read_json(full_run / eval_file(METRICS_FILE, category, ENSEMBLE))
        single = read_json(full_run / eval_file(METRICS_FILE, category, "default"))
        assert metrics["evaluated_on"] == single["evaluated_on"]  # the same held-out images
        assert metrics["n_images"] == single["n_images"]
        assert metrics["ensemble"] == {"members": ["default", *FOLDS], "tta": True}
        assert "validation" not in metrics  # the fold members validate on other images
        assert "without_tta" in metrics
        assert (full_run / eval_file(CONFUSION_FILE, category, ENSEMBLE)).exists()
    table = pd.read_csv(full_run / "results/experiments.csv")
    assert list(zip(table["experiment"], table["category"], strict=True)) == [
        (e, c) for e in (*EXPERIMENTS, "wide", ENSEMBLE) for c in (*CATEGORIES, "mean")
    ]
    assert (full_run / "results/plots/experiments.png").exists()


def test_the_fold_members_and_their_out_of_fold_figures(full_run: Path) -> None:
    for category in CATEGORIES:
        splits = [pd.read_csv(full_run / model_dir(category, fold) / "split.csv") for fold in FOLDS]
        validation = [set(split.loc[split["subset"] == "validation", "image"]) for split in splits]
        non_test = set(splits[0].loc[splits[0]["subset"] != "test", "image"])
        assert validation[0].isdisjoint(validation[1]) and validation[0] | validation[1] == non_test
        for fold, name in enumerate(FOLDS, 1):
            settings = read_json(full_run / model_dir(category, name) / "training.json")["settings"]
            assert (settings["folds"], settings["fold"]) == (2, fold)
            card = (full_run / model_dir(category, name) / "model_card.md").read_text()
            assert f"Fold {fold} of 2 (`train.folds`)" in card
        metrics = read_json(full_run / eval_file(METRICS_FILE, category, "wide"))
        assert metrics["evaluated_on"] == "out_of_fold" and metrics["folds"] == list(FOLDS)
        assert metrics["n_images"] + len(metrics["skipped_images"]) == len(non_test)
        assert 0 <= metrics["accuracy"] <= 1 and "flip_tta" in metrics  # eval.tta
        single = read_json(full_run / eval_file(METRICS_FILE, category, "default"))
        assert metrics["test"]["n_images"] == single["n_images"]  # the fold members' ensemble
        assert (full_run / eval_file(CONFUSION_FILE, category, "wide")).exists()
    table = pd.read_csv(full_run / "results/experiments.csv")
    assert set(table.loc[table["experiment"] == "wide", "evaluated_on"]) == {"out_of_fold"}
    for name in FOLDS:  # the default target's submission of each ensemble member
        assert (full_run / f"results/submissions/{name}.csv").stat().st_size > 0


def submission_values(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    return np.concatenate([[float(p) for p in line.split(",")[2].split(";")] for line in lines])


def test_the_submission_is_the_mean_of_the_members(full_run: Path) -> None:
    results = full_run / "results"
    lines = (results / "submission.csv").read_text().splitlines()
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
    assert "left out: no model for it" in (full_run / "logs/predict.log").read_text()
    members = [submission_values(results / f"submissions/{m}.csv") for m in ("default", *FOLDS)]
    np.testing.assert_allclose(
        submission_values(results / "submission.csv"), sum(members) / 3, atol=1.5e-4
    )


def test_predict_command_labels_an_image_file_and_names_a_folder(full_run: Path) -> None:
    image = next((full_run / "results/regrouped" / CATEGORIES[0]).glob("*/*.jpg"))
    models = full_run / model_dir(CATEGORIES[0], "default")
    classes = read_json(models / "training.json")["classes"]
    command = [sys.executable, "-m", "fashionai", "predict", "--category", CATEGORIES[0]]
    command += ["--models", str(models.parent), str(image), str(image.parent)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    assert (result.returncode, result.stderr) == (1, "")  # no TensorFlow start-up notices
    labelled, folder = result.stdout.splitlines()
    path, label, probability, ranked = labelled.split("\t")
    assert path == str(image) and label in [group["name"] for group in classes]
    assert 0 < float(probability) <= 1 and ranked.count("=") == len(classes) == 4
    assert folder == f"{image.parent}\tERROR: a folder, not an image file"


def test_a_run_that_goes_well_prints_no_exception(full_run: Path) -> None:
    """Neither in the terminal nor in any rule's log (here, beside the full run: a session
    fixture is made once per test worker)."""
    assert alarming_lines((full_run / TERMINAL_FILE).read_text()) == []
    logs = sorted((full_run / "logs").rglob("*.log"))
    assert len(logs) > 20  # every rule's log, training included
    assert {log: found for log in logs if (found := alarming_lines(log.read_text()))} == {}


def test_html_report(full_run: Path) -> None:
    result = run_snakemake(full_run, full_run_config(), extra=("--report", "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    html = (full_run / "report.html").read_text(errors="replace")
    assert "learning_curves.png" in html and "confusion_matrix.png" in html
    assert "experiment</th>" in html and "Experiments" in html


def planned(full_run: Path, config: dict) -> str:
    """The jobs a dry run of ``config`` in the full run's folder would run."""
    result = run_snakemake(full_run, config, extra=("--dry-run", "--quiet", "rules"))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_run_only_settings_rerun_nothing(full_run: Path) -> None:
    config = full_run_config()
    config["train"].update(gpus=2, threads=3, cache_images=False, weights_url="file:///elsewhere")
    assert "Nothing to be done" in planned(full_run, config)


def test_a_model_setting_reruns_what_depends_on_it(full_run: Path) -> None:
    config = full_run_config()
    config["experiments"]["wide"]["dropout"] = 0.5
    jobs = planned(full_run, config)
    rules = dict(re.findall(r"^(\w+)\s+(\d+)$", jobs, flags=re.MULTILINE))
    assert rules.get("train") == "2", jobs  # wide's two fold members
    # wide's two fold members, wide (out of fold) and the ensemble
    assert "features" not in rules and rules.get("evaluate") == "4", jobs
    assert "split" not in rules and "split_fold" not in rules, jobs


def test_a_split_setting_reruns_the_split_features_and_every_model(full_run: Path) -> None:
    config = full_run_config()
    config["train"]["seed"] = 5
    jobs = planned(full_run, config)
    rules = dict(re.findall(r"^(\w+)\s+(\d+)$", jobs, flags=re.MULTILINE))
    assert rules.get("split") == "1" and rules.get("split_fold") == "2", jobs
    assert rules.get("features") == "1" and rules.get("train") == "4", jobs


def test_a_grouped_experiment_beside_the_others(full_run: Path, tmp_path: Path) -> None:
    """On the full run's data, experiment ``shared`` trains its category and a second one of
    the group ``length`` as one model (one train_group job, no train job); each category's
    files are hard links into the group's folder, evaluated, plotted and carded as any model's,
    on its own split; a grouped member ensembles with a single one; a second run plans nothing.
    Last here: it adds a category and an experiment to the full run's folder."""
    categories = [*CATEGORIES, "skirt_length_labels"]  # sleeve's partner in the group length
    config = full_run_config()
    config["categories"] = categories
    # One epoch: the test is about the group's jobs and files, not what it learns; each later
    # epoch of the two-headed model is CPU time spent on nothing asserted here.
    config["experiments"]["shared"] = {"grouped": True, "epochs": 1}
    targets = [summary_file("csv", "shared")]
    for category in categories:
        targets += [
            model_file(MODEL_CARD_FILE, category, "shared"),
            curves_file(category, "shared"),
        ]
    result = run_snakemake(full_run, config, *targets)
    assert result.returncode == 0, result.stderr[-6000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout + result.stderr, re.MULTILINE))
    assert jobs.get("train_group") == "1" and jobs.get("group_member") == "2", jobs
    assert "train" not in jobs and "features" not in jobs, jobs
    group = full_run / model_dir("length", "shared")
    history = pd.read_csv(group / "history.csv")
    assert {f"val_{category}_accuracy" for category in categories} <= set(history.columns)
    for category in categories:
        folder = full_run / model_dir(category, "shared")
        for name in ("model.keras", "held_out.csv", "split.csv", "training.json"):
            linked = (group / "members" / category / name).stat()
            assert (folder / name).stat().st_ino == linked.st_ino, name
        assert read_json(folder / "training.json")["group"] == "length"
        assert "One head of the group `length`'s model" in (folder / "model_card.md").read_text()
        assert read_json(full_run / eval_file(METRICS_FILE, category, "shared"))["n_images"] > 0
    summary = pd.read_csv(full_run / summary_file("csv", "shared"))
    assert set(categories) <= set(summary["category"])
    # The same split as the category's other experiments; an ensemble with one of them.
    sleeve = [full_run / model_dir(CATEGORIES[0], name) for name in ("default", "shared")]
    assert (sleeve[0] / "split.csv").read_bytes() == (sleeve[1] / "split.csv").read_bytes()
    members = dict(zip(("default", "shared"), sleeve, strict=True))
    decoded = full_run / "results/labels/decoded.csv"
    metrics = evaluate(
        members,
        decoded,
        tmp_path / "metrics.json",
        tmp_path / "confusion.png",
        combine=MEAN,
        log=print,
    )
    single = read_json(full_run / eval_file(METRICS_FILE, CATEGORIES[0], "default"))
    assert metrics["ensemble"]["members"] == ["default", "shared"]
    assert metrics["n_images"] == single["n_images"] and metrics["evaluated_on"] == "test"
    again = run_snakemake(full_run, config, *targets, extra=("--dry-run",))
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]
