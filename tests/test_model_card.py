"""Model cards from a model's files: data counts per class and subset, settings, best epoch,
training time, test metrics and the configuration that reproduces the model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from fashionai.evaluation.model_card import data_counts, write_model_card

CLASSES = [
    {"index": 0, "slug": "a", "name": "Short", "members": ["Short"]},
    {"index": 1, "slug": "b", "name": "Long", "members": ["Long", "Extra Long"]},
    {"index": 2, "slug": "c", "name": "Rare", "members": ["Rare"]},
]
SPLIT = pd.DataFrame(
    {
        "image": [f"i{n}.jpg" for n in range(7)],
        "image_name": [f"i{n}" for n in range(7)],
        "label": list("aaaabbb"),
        "label_index": [0, 0, 0, 0, 1, 1, 1],
        "subset": ["train", "train", "validation", "test", "train", "test", "test"],
    }
)
SUMMARY = {
    "category": "coat_length_labels",
    "classes": CLASSES,
    "settings": {"backbone": "SmallCNN", "image_size": 48, "augmentations": ["flip"], "seed": 7},
    "best_epoch": 2,
    "best_val_accuracy": 0.75,
    "epochs_run": 3,
    "stopped_early": False,
    "seconds": 3725.4,
}
HISTORY = pd.DataFrame(
    {
        "epoch": [1, 2, 3],
        "accuracy": [0.5, 0.625, 0.7],
        "loss": [1.0, 0.875, 0.8],
        "val_accuracy": [0.5, 0.75, 0.7],
        "val_loss": [1.0, 0.6875, 0.7],
    }
)
FIGURES = {
    "accuracy": 0.6667,
    "basic_precision": 0.5,
    "ap": 0.8125,
    "official_basic_precision": 0.5,
    "official_ap": 0.75,
    "n_images": 3,
}
METRICS = {
    "evaluated_on": "test",
    **FIGURES,
    "per_class": {
        "Short": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
        "Long": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "Rare": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    },
    "validation": {**FIGURES, "ap": 0.9375, "n_images": 1},
}
CONFIGURATION = {
    "categories": ["coat_length_labels"],
    "train": {"backbone": "SmallCNN", "image_size": 48, "seed": 7, "validation_split": 0.2},
}


def test_data_counts_per_class_and_subset():
    counts = data_counts(SPLIT, CLASSES).set_index("class")
    assert list(counts.columns) == ["train", "validation", "test", "total"]
    assert counts.loc["Short"].tolist() == [2, 1, 1, 4]
    assert counts.loc["Long"].tolist() == [1, 0, 2, 3]
    assert counts.loc["Rare"].tolist() == [0, 0, 0, 0]  # a class without images is listed
    assert counts.loc["total"].tolist() == [3, 1, 3, 7]


def card_of(folder: Path, experiment: str, summary=SUMMARY, metrics=METRICS, split=SPLIT) -> str:
    """write_model_card on these files, written to ``folder``; the card (also in card.md)."""
    (folder / "training.json").write_text(json.dumps(summary))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    split.to_csv(folder / "split.csv", index=False)
    HISTORY.to_csv(folder / "history.csv", index=False)
    return write_model_card(
        *(folder / name for name in ("training.json", "split.csv", "history.csv")),
        folder / "metrics.json",
        folder / "card.md",
        experiment=experiment,
        configuration=CONFIGURATION,
    )


def test_card_from_the_model_files(tmp_path):
    card = card_of(tmp_path, "irv2_299")
    assert (tmp_path / "card.md").read_text() == card
    assert card.startswith("# Model card: coat_length_labels, experiment `irv2_299`")
    assert "best epoch 3 of 3 (counted from 1;" in card and "trained in 1:02:05" in card
    assert "| training time | 1:02:05 (3725.4 s) |" in card
    assert "| Short | 2 | 1 | 1 | 4 |" in card and "| total | 3 | 1 | 3 | 7 |" in card
    assert "On the 3 test images (validation: 1)" in card
    assert "| ap | 0.8125 | 0.9375 |" in card
    assert "| Long | 0.5000 | 0.5000 | 0.5000 | 2 |" in card
    assert "| 2 | 0.6250 | 0.8750 | 0.7500 | 0.6875 |" in card  # the best epoch's history row
    assert '| augmentations | ["flip"] |' in card and "| backbone | SmallCNN |" in card
    assert "| best_val_accuracy | 0.75 |" in card
    reproduce = card.split("```yaml\n")[1].split("```")[0]
    assert yaml.safe_load(reproduce) == CONFIGURATION


def test_card_on_validation_images_has_no_validation_column(tmp_path):
    metrics = {key: value for key, value in METRICS.items() if key != "validation"}
    metrics["evaluated_on"] = "validation"
    split = SPLIT.assign(subset=SPLIT["subset"].replace("test", "validation"))
    card = card_of(tmp_path, "default", metrics=metrics, split=split)
    assert "On the 3 validation images (`metrics.json`)" in card
    assert "| figure | validation |\n" in card
    assert "| class | train | validation | total |" in card


def test_card_of_a_fold_member_says_which_fold_of_how_many(tmp_path):
    summary = {**SUMMARY, "settings": {**SUMMARY["settings"], "folds": 5, "fold": 2}}
    card = card_of(tmp_path, "wide-fold2", summary=summary)
    assert "Fold 2 of 5 (`train.folds`): it validates on fold 2 of the non-test images" in card
    assert "which trains it as the experiment `default-fold2`." in card


def test_card_of_a_grouped_category_names_its_group(tmp_path):
    summary = {**SUMMARY, "group": "length", "group_categories": ["coat_length_labels", "x"]}
    card = card_of(tmp_path, "shared", summary=summary)
    assert "One head of the group `length`'s model (`train.grouped`: coat_length_labels, x)" in card
    assert "the archives, the group's categories, their regrouping, the group and the" in card
