"""Where the workflow writes each model's files, one function per kind of output, so that a
path is spelled in one place: the rules call them with the wildcards as defaults, the package
and the tests with real names. Every experiment (``default`` included) has the same layout
under ``results/experiments/<experiment>/``, the ensemble's evaluation too (``ensemble``, a
name no experiment may take). Importing this module is cheap (the Snakefile does it at parse
time).
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
# In a group's model folder (train.grouped): one folder per category, laid out as a category's
# model folder (its single-output model, weights, history, split, held-out predictions).
MEMBERS_DIR = "members"

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
    subset (train, validation, test; columns as a model's ``split.csv``), checked and drawn
    once from the split keys, which every experiment shares; what features and training read,
    and what a model folder's ``split.csv`` copies."""
    return f"results/splits/{category}/{SPLIT_FILE}"


def skipped_file(category: str = CATEGORY) -> str:
    """The entries of a category's regrouped tree that the split leaves out (``image,reason``):
    not regular files, or rejected by the training decoder."""
    return f"results/splits/{category}/skipped.csv"


def fold_file(
    category: str = CATEGORY, folds: int | str = "{folds}", fold: int | str = "{fold}"
) -> str:
    """The split of fold member ``fold`` of ``folds`` (rule ``split_fold``): derived from the
    category's :func:`split_file` alone (its test part kept, its other rows dealt into the
    folds), no image looked at again."""
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
    """The name of fold ``fold`` (1..folds) of an experiment with ``train.folds``: an
    experiment of its own (``wide-fold1``); the folded experiment's name keeps its
    out-of-fold evaluation."""
    return f"{experiment}-fold{fold}"


def experiment_root(experiment: str = EXPERIMENT) -> str:
    """The folder of everything an experiment makes."""
    return f"results/experiments/{experiment}"


def model_dir(category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """The folder of a category's trained model: its weights, history, split, card."""
    return f"{experiment_root(experiment)}/{MODELS_DIR}/{category}"


def model_file(name: str, category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """A file of a category's trained model, ``name`` one of the ``*_FILE`` names above; with a
    group's name for ``category``, a file of the group's model (``train.grouped``)."""
    return f"{model_dir(category, experiment)}/{name}"


def members_dir(group: str = GROUP, experiment: str = EXPERIMENT) -> str:
    """A group's folder of its categories' models, ``<category>/`` each, as a category's model
    folder; the workflow hard-links their files into the categories' folders (``model_dir``)."""
    return f"{model_dir(group, experiment)}/{MEMBERS_DIR}"


def member_dir(category: str = CATEGORY, group: str = GROUP, experiment: str = EXPERIMENT) -> str:
    """A category's model in its group's folder (:func:`members_dir`)."""
    return f"{members_dir(group, experiment)}/{category}"


def missing_model_files(folder: str | Path) -> list[Path]:
    """The files a trained model's ``folder`` lacks of those a prediction loads (cheap: no
    TensorFlow, so that a command can say so before starting it)."""
    return [
        Path(folder) / name
        for name in (MODEL_FILE, SUMMARY_FILE)
        if not (Path(folder) / name).is_file()
    ]


def curves_file(category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    return f"{experiment_root(experiment)}/plots/{category}/{CURVES_FILE}"


def eval_file(name: str, category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """A file of the evaluation (``METRICS_FILE`` or ``CONFUSION_FILE``) of a model, of the
    ensemble (``experiment`` ``ensemble``) or of an experiment's fold members."""
    return f"{experiment_root(experiment)}/{EVAL_DIR}/{category}/{name}"


def summary_file(suffix: str, experiment: str = EXPERIMENT) -> str:
    """An experiment's table over the categories, ``suffix`` ``csv`` or ``md``."""
    return f"{experiment_root(experiment)}/summary.{suffix}"


def train_log(category: str = CATEGORY, experiment: str = EXPERIMENT) -> str:
    """A training job's log: its settings, its split and one line per epoch with its seconds."""
    return f"logs/train/{experiment}/{category}.log"


def submission_file(member: str | None = None) -> str:
    """The submission (the ensemble's; the single model's without an ensemble), or with
    ``member`` that member's own answers to the same questions."""
    return "results/submission.csv" if member is None else f"results/submissions/{member}.csv"
