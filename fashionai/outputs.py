"""Where the workflow writes each file, spelled in one place: the rules call these with the
wildcards as defaults, the package and the tests with real names. Every experiment (and the
ensemble's evaluation) has the same layout under ``results/experiments/<experiment>/``. Cheap
to import (the Snakefile does it at parse time).
"""

from __future__ import annotations

from pathlib import Path

MODEL_FILE = "model.keras"  # the full model, best epoch's weights
WEIGHTS_FILE = "best.weights.h5"  # the best epoch's weights alone
HISTORY_FILE = "history.csv"  # one row per epoch
SPLIT_FILE = "split.csv"  # every image of the category with its subset
SUMMARY_FILE = "training.json"  # settings, counts, best epoch, devices, times
HELD_OUT_FILE = "held_out.csv"  # the best epoch's predictions on the validation and test images
MODEL_CARD_FILE = "model_card.md"  # the model's card (rule model_card)
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
CURVES_FILE = "learning_curves.png"
# A category's trained model: its files by the names the rules give them (rule train's outputs).
TRAINED_FILES = {
    "model": MODEL_FILE,
    "weights": WEIGHTS_FILE,
    "history": HISTORY_FILE,
    "split": SPLIT_FILE,
    "summary": SUMMARY_FILE,
    "held_out": HELD_OUT_FILE,
}
PREVIEW_SUFFIX = ".jpg"  # a label's preview grid (rule label_statistics): photos, so JPEG

MODELS_DIR, EVAL_DIR = "models", "eval"  # an experiment's folders of models and evaluations
MEMBERS_DIR = "members"  # a group's model folder's folder of its categories' models

DEFAULT_EXPERIMENT = "default"  # the plain train: block
ENSEMBLE = "ensemble"  # the ensemble's name among the experiments
# How an evaluated name combines its members' held-out predictions (rule evaluate): a model
# alone, the mean of an ensemble's, or fold members each on the fold it validated on.
SINGLE, MEAN, OUT_OF_FOLD = "single", "mean", "out_of_fold"

CATEGORY, EXPERIMENT, GROUP = "{category}", "{experiment}", "{group}"  # the rules' wildcards

# The data stages' files, before any model.
MERGED_CSV = "results/labels/merged.csv"  # every annotation row of every archive
DECODED_CSV = "results/labels/decoded.csv"  # one row per usable image and category
REJECTED_CSV = "results/labels/rejected.csv"  # every row not used, with its reason
EXPERIMENTS_TABLE = "results/experiments.csv"  # every experiment and category compared
EXPERIMENTS_MARKDOWN = "results/experiments.md"  # the same table to read
EXPERIMENTS_MEANS = "results/experiments_mean.csv"  # its mean rows alone
EXPERIMENTS_PLOT = "results/plots/experiments.png"


def extracted_dir(archive: str = "{archive}") -> str:
    """An archive's extraction folder (or an already-extracted folder's copy)."""
    return f"results/extracted/{archive}"


def tree_dir(category: str = CATEGORY) -> str:
    """A category's images, one folder per label (hard links), with ``labels.json``."""
    return f"results/trees/{category}"


def regrouped_dir(category: str = CATEGORY) -> str:
    """A category's tree after the configured merges and drops: what training reads."""
    return f"results/regrouped/{category}"


def split_file(category: str = CATEGORY) -> str:
    """A category's split (rule ``split``): every usable image of its regrouped tree with its
    subset, drawn once for every experiment; a model folder's ``split.csv`` copies it."""
    return f"results/splits/{category}/{SPLIT_FILE}"


def skipped_file(category: str = CATEGORY) -> str:
    """The entries of a category's regrouped tree that the split leaves out (``image,reason``)."""
    return f"results/splits/{category}/skipped.csv"


def fold_file(
    category: str = CATEGORY, folds: int | str = "{folds}", fold: int | str = "{fold}"
) -> str:
    """The split of fold member ``fold`` of ``folds`` (rule ``split_fold``), derived from the
    category's :func:`split_file` alone (its test part kept)."""
    return f"results/splits/{category}/folds{folds}/fold{fold}.csv"


def split_of(category: str, folds: int | None = None, fold: int | None = None) -> str:
    """The split a model of ``category`` trains on: the category's, or a fold member's."""
    return split_file(category) if folds is None else fold_file(category, folds, fold)


def features_dir(category: str = CATEGORY, feature_set: str = "{feature_set}") -> str:
    """A category's cache of frozen-backbone features for one feature set."""
    return f"results/features/{category}/{feature_set}"


def label_plot(category: str = CATEGORY) -> str:
    """A category's label distribution figure."""
    return f"results/plots/{category}/label_distribution.png"


def previews_dir(category: str = CATEGORY) -> str:
    """A category's preview grids, one per label."""
    return f"results/plots/{category}/previews"


def fold_name(experiment: str, fold: int) -> str:
    """The experiment of fold ``fold`` (1..folds) of an experiment with ``train.folds``
    (``wide-fold1``); the folded experiment's name keeps its out-of-fold evaluation."""
    return f"{experiment}-fold{fold}"


def experiment_root(experiment: str = EXPERIMENT) -> str:
    """The folder of everything an experiment makes."""
    return f"results/experiments/{experiment}"


def model_dir(category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """The folder of a category's trained model: its weights, history, split, card."""
    return f"{experiment_root(experiment)}/{MODELS_DIR}/{category}"


def model_file(name: str, category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """A file (``*_FILE``) of a category's trained model, or of a group's (``train.grouped``)."""
    return f"{model_dir(category, experiment)}/{name}"


def members_dir(group: str = GROUP, experiment: str = EXPERIMENT) -> str:
    """A group's folder of its categories' models, ``<category>/`` each; the workflow hard-links
    their files into the categories' folders (``model_dir``)."""
    return f"{model_dir(group, experiment)}/{MEMBERS_DIR}"


def member_dir(category: str = CATEGORY, group: str = GROUP, experiment: str = EXPERIMENT) -> str:
    """A category's model in its group's folder (:func:`members_dir`)."""
    return f"{members_dir(group, experiment)}/{category}"


def missing_model_files(folder: str | Path) -> list[Path]:
    """The files a prediction loads that ``folder`` lacks (no TensorFlow: said before it starts)."""
    return [
        Path(folder) / name
        for name in (MODEL_FILE, SUMMARY_FILE)
        if not (Path(folder) / name).is_file()
    ]


def curves_file(category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    return f"{experiment_root(experiment)}/plots/{category}/{CURVES_FILE}"


def eval_file(name: str, category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """A file (``METRICS_FILE`` or ``CONFUSION_FILE``) of an evaluation (rule ``evaluate``)."""
    return f"{experiment_root(experiment)}/{EVAL_DIR}/{category}/{name}"


def summary_file(suffix: str, experiment: str = EXPERIMENT) -> str:
    """An experiment's table over the categories, ``suffix`` ``csv`` or ``md``."""
    return f"{experiment_root(experiment)}/summary.{suffix}"


def train_log(category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """A training job's log: its settings, its split and one line per epoch with its seconds."""
    return f"logs/train/{experiment}/{category}.log"


def submission_file(member: str | None = None) -> str:
    """The submission (the ensemble's, else the single model's), or ``member``'s own."""
    return "results/submission.csv" if member is None else f"results/submissions/{member}.csv"
