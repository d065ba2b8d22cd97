"""The names of a trained model's output files, and where each experiment keeps them.

One place for these names: the rules, the training run, evaluation, prediction and the CLI all
take them from here. Importing this module is cheap (the Snakefile does it at parse time).
"""

from __future__ import annotations

MODEL_FILE = "model.keras"  # the full model, best epoch's weights
WEIGHTS_FILE = "best.weights.h5"  # the best epoch's weights alone
HISTORY_FILE = "history.csv"  # one row per epoch
SPLIT_FILE = "split.csv"  # every image of the category with its subset
SUMMARY_FILE = "training.json"  # settings, counts, best epoch, devices, times
MODEL_CARD_FILE = "model_card.md"  # the model's card (rule model_card)

DEFAULT_EXPERIMENT = "default"  # the plain train: block
ENSEMBLE = "ensemble"  # the ensemble's name among the experiments (results/ensemble/)


def experiment_root(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """``results`` for the default experiment, ``results/experiments/<name>`` for the others."""
    return "results" if experiment == DEFAULT_EXPERIMENT else f"results/experiments/{experiment}"


def model_dir(category: str, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """The folder of a category's trained model."""
    return f"{experiment_root(experiment)}/models/{category}"
