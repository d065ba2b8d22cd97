"""A trained model's card (rule ``model_card``): ``model_card.md`` beside its weights, read
from the files the model's jobs wrote, so that it says what was actually trained."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fashionai.atomic import write_text
from fashionai.evaluation.summary import FIGURES, cell, to_markdown
from fashionai.model_folder import read_summary
from fashionai.outputs import DEFAULT_EXPERIMENT, fold_name
from fashionai.splits import read_split

SUBSETS = ("train", "validation", "test")
TRAINING_KEYS = (  # training.json keys shown under "Training", when present
    "best_epoch",
    "best_val_accuracy",
    "epochs_run",
    "stopped_early",
    "fine_tune_start_epoch",
    "skipped_images",
    "attempts",
    "started",
    "finished",
    "gpu_devices",
    "devices",
)


def data_counts(split: pd.DataFrame, classes: list[dict[str, Any]]) -> pd.DataFrame:
    """Images per class (rows, in class order, then ``total``) and split subset (columns
    ``train``, ``validation``, ``test`` when present, then ``total``)."""
    names = [group["name"] for group in classes]
    subsets = [s for s in SUBSETS if s in set(split["subset"])]
    subsets += sorted(set(split["subset"]) - set(SUBSETS))
    counts = pd.crosstab(split["label_index"].astype(int), split["subset"])
    counts = counts.reindex(index=range(len(names)), columns=subsets, fill_value=0)
    counts.index = names
    counts.loc["total"] = counts.sum()
    counts["total"] = counts.sum(axis=1)
    return counts.rename_axis("class").reset_index()


def model_card(
    summary: Mapping[str, Any],
    split: pd.DataFrame,
    history: pd.DataFrame,
    metrics: Mapping[str, Any],
    experiment: str,
    configuration: Mapping[str, Any],
) -> str:
    """The card's Markdown from the model's files' contents and the ``configuration`` that
    reproduces it."""
    settings = summary["settings"]
    seconds = float(summary["seconds"])
    on = metrics["evaluated_on"]
    figures = pd.DataFrame({"figure": FIGURES, on: [metrics[key] for key in FIGURES]})
    counted = f"{metrics['n_images']} {on} images"
    if "validation" in metrics:
        figures["validation"] = [metrics["validation"][key] for key in FIGURES]
        counted += f" (validation: {metrics['validation']['n_images']})"
    per_class = pd.DataFrame(metrics["per_class"]).T.astype({"support": int})
    best = history[history["epoch"] == summary["best_epoch"]]
    fold, folds = settings.get("fold"), settings.get("folds")  # a fold member's (train.folds)
    as_fold = f" Fold {fold} of {folds} (`train.folds`): it validates on fold {fold} of the "
    as_fold = as_fold + "non-test images and trains on the others." if folds else ""
    in_group, trained = "", "the category, its regrouping"
    if group := summary.get("group"):  # a category trained in its group's model (train.grouped)
        in_group = (
            f" One head of the group `{group}`'s model (`train.grouped`: "
            f"{', '.join(summary.get('group_categories', []))}), sharing its backbone with them; "
            "the best epoch is the group's."
        )
        trained = "the group's categories, their regrouping, the group"
    training = [(key, summary[key]) for key in TRAINING_KEYS if key in summary]
    training.append(("training time", f"{timedelta(seconds=round(seconds))} ({seconds} s)"))
    sections = [
        f"# Model card: {summary['category']}, experiment `{experiment}`",
        f"{settings['backbone']} at {settings['image_size']} px; best epoch "
        f"{summary['best_epoch'] + 1} of {summary['epochs_run']} (counted from 1; "
        f"`history.csv` and `training.json` count epochs from 0); {on} AP "
        f"{cell(metrics['ap'])}, BasicPrecision {cell(metrics['basic_precision'])}, accuracy "
        f"{cell(metrics['accuracy'])}; trained in {timedelta(seconds=round(seconds))}."
        f"{as_fold}{in_group}",
        "## Data\n\nImages per class and split subset (`split.csv`).",
        to_markdown(data_counts(split, summary["classes"])),
        f"## Metrics\n\nOn the {counted} (`metrics.json`).",
        to_markdown(figures),
        f"Per class, on the {on} images:",
        to_markdown(per_class.rename_axis("class").reset_index()),
        "## Training",
        _table(training, "item"),
        "The best epoch's row of `history.csv` (epochs counted from 0):",
        to_markdown(best),
        "## Settings\n\nAs the training ran them (`training.json`).",
        _table(settings.items(), "setting"),
        f"## Reproduce\n\nThe configuration it was trained with: the archives, {trained} and "
        "the experiment's merged `train:` block, which trains it as the "
        f"experiment `{fold_name(DEFAULT_EXPERIMENT, fold) if folds else DEFAULT_EXPERIMENT}`.",
        "```yaml\n" + yaml.safe_dump(dict(configuration), sort_keys=False) + "```",
    ]
    return "\n\n".join(section.rstrip("\n") for section in sections) + "\n"


def write_model_card(
    training_json: Path | str,
    split_csv: Path | str,
    history_csv: Path | str,
    metrics_json: Path | str,
    out_md: Path | str,
    *,
    experiment: str,
    configuration: Mapping[str, Any],
) -> str:
    card = model_card(
        read_summary(training_json),
        read_split(split_csv),
        pd.read_csv(history_csv),
        json.loads(Path(metrics_json).read_text(encoding="utf-8")),
        experiment,
        configuration,
    )
    write_text(out_md, card)
    return card


def _table(pairs: Iterable[tuple[str, Any]], name: str) -> str:
    """A Markdown table of (``name``, ``value``) rows: strings as they are, other values as JSON."""
    rows = [(key, value if isinstance(value, str) else json.dumps(value)) for key, value in pairs]
    return to_markdown(pd.DataFrame(rows, columns=[name, "value"]))
