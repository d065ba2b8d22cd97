# Configuration checks, constants and input functions shared by the rules. Parsing stays
# light: nothing here imports numpy, pandas, Pillow, matplotlib or TensorFlow.
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, workflow.basedir)

from fashionai.archives import archive_id
from fashionai.config import experiment_settings, validate_config
from fashionai.outputs import (
    DEFAULT_EXPERIMENT,
    ENSEMBLE,
    HISTORY_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    experiment_root,
    model_dir,
)
from fashionai.training.settings import FEATURE_KEYS

validate_config(config)  # the schema's defaults filled in; raises before any job runs

CATEGORIES = list(config["categories"])
ARCHIVES = {archive_id(path): path for path in config["archives"]}
EXTRACTABLE = dict(ARCHIVES)
if config["questions"]:
    EXTRACTABLE[archive_id(config["questions"])] = config["questions"]
TRAIN = config["train"]
SYNTHETIC = config["synthetic"]
# Every experiment's merged train: settings by name, the default (train:) first.
EXPERIMENTS = experiment_settings(config)
NAMED_EXPERIMENTS = [name for name in EXPERIMENTS if name != DEFAULT_EXPERIMENT]


def one_of(names):
    """A wildcard constraint matching exactly these names (regex characters escaped)."""
    return "|".join(re.escape(name) for name in names)


wildcard_constraints:
    category=one_of(CATEGORIES),
    archive=one_of(EXTRACTABLE),
    experiment=one_of(NAMED_EXPERIMENTS),


def archive_path(wildcards):
    """The configured archive behind an extraction job."""
    return EXTRACTABLE[wildcards.archive]


def extracted_folders():
    """Every training archive's extraction folder, in round order."""
    return [f"results/extracted/{name}" for name in ARCHIVES]


def experiment_of(wildcards):
    """The experiment of a job: its {experiment} wildcard, or the default."""
    return wildcards.get("experiment", DEFAULT_EXPERIMENT)


def weights_file(settings):
    """The weights file a job with these train settings reads: fetched ImageNet weights or a
    local file; None for Keras' own download or a random init."""
    if settings["weights"] == "imagenet" and settings["fetch_weights"]:
        return f"resources/weights/{settings['backbone']}_imagenet_notop.h5"
    if settings["weights"] not in (None, "imagenet"):
        return settings["weights"]
    return None


def weights_input(wildcards):
    """The experiment's weights file, fetched before training when the config asks for it."""
    return weights_file(EXPERIMENTS[experiment_of(wildcards)]) or []


def data_outputs():
    """Everything up to the regrouped trees and the label statistics."""
    outputs = ["results/labels/decoded.csv"]
    for category in CATEGORIES:
        outputs += [
            f"results/regrouped/{category}",
            f"results/plots/{category}/label_distribution.png",
            f"results/plots/{category}/previews",
        ]
    return outputs


def experiment_outputs(experiment):
    """An experiment's model weights, learning curves and evaluation, for every category."""
    root = experiment_root(experiment)
    outputs = []
    for category in CATEGORIES:
        outputs += [
            f"{model_dir(category, experiment)}/{WEIGHTS_FILE}",
            f"{root}/plots/{category}/learning_curves.png",
            f"{root}/eval/{category}/metrics.json",
            f"{root}/eval/{category}/confusion_matrix.png",
        ]
    return outputs


def all_outputs():
    """The default target: data, every experiment's models, curves and evaluation, the
    summary and, with questions, predictions."""
    outputs = data_outputs() + ["results/summary.csv", "results/summary.md"]
    for experiment in EXPERIMENTS:
        outputs += experiment_outputs(experiment)
    if config["questions"]:
        outputs.append("results/submission.csv")
    return outputs


# The train: keys that only the workflow reads (fetching weights, the jobs' threads): left out of
# the training settings, so that changing them does not rerun training.
WORKFLOW_TRAIN_KEYS = ("fetch_weights", "weights_url", "threads")


def run_settings(settings):
    """Train settings as the training script takes them, with a fetched weights file resolved."""
    run = {
        key: value for key, value in settings.items() if key not in WORKFLOW_TRAIN_KEYS
    }
    run["weights"] = weights_file(settings) or settings["weights"]
    return run


def train_settings(wildcards):
    """The settings of a training job's experiment."""
    return run_settings(EXPERIMENTS[experiment_of(wildcards)])


def feature_settings_of(settings):
    """The feature keys of an experiment's settings, fetched weights resolved like training's:
    experiments that agree on them share one cache, results/features/{category}/{feature_set}
    (a hash of their values), and a change reruns rule features (they are its params).
    """
    run = run_settings(settings)
    return {key: run[key] for key in FEATURE_KEYS}


def feature_set_id(features):
    """A short, stable name for a set of feature settings."""
    text = json.dumps(features, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


EXPERIMENT_FEATURES = {}  # experiment name -> its feature set
FEATURE_SETS = {}  # feature set -> its settings
for name, settings in EXPERIMENTS.items():
    features = feature_settings_of(settings)
    EXPERIMENT_FEATURES[name] = feature_set_id(features)
    FEATURE_SETS[EXPERIMENT_FEATURES[name]] = features


wildcard_constraints:
    feature_set=one_of(FEATURE_SETS),


def features_input(wildcards):
    """The feature cache (rule features) of the job's experiment, when it trains on one."""
    experiment = experiment_of(wildcards)
    if EXPERIMENTS[experiment]["cache_features"]:
        return (
            f"results/features/{wildcards.category}/{EXPERIMENT_FEATURES[experiment]}"
        )
    return []


def decoded_input(wildcards):
    """The decoded labels, for a job whose experiment trains on soft targets (their m codes);
    none otherwise, so that the other training jobs do not depend on decoded.csv."""
    if EXPERIMENTS[experiment_of(wildcards)]["maybe_labels"] == "soft":
        return "results/labels/decoded.csv"
    return []


def feature_settings(wildcards):
    """The settings rule features computes a feature set with."""
    return FEATURE_SETS[wildcards.feature_set]


def feature_weights(wildcards):
    """The weights file a feature set is computed with, if any."""
    weights = FEATURE_SETS[wildcards.feature_set]["weights"]
    return [] if weights in (None, "imagenet") else weights


def question_archive_id():
    """The extraction folder name of the test archive, when prediction is configured."""
    return archive_id(config["questions"])


# Ensembles, the comparison of everything trained and model cards (rules/ensemble.smk).
ENSEMBLE_CONFIG = config["ensemble"]  # members and tta, or None
MEMBERS = list(ENSEMBLE_CONFIG["members"]) if ENSEMBLE_CONFIG else []
EVAL_FILES = ("metrics.json", "confusion_matrix.png")


def metrics_path(category, experiment):
    """An experiment's metrics.json of a category."""
    return f"{experiment_root(experiment)}/eval/{category}/metrics.json"


def ensemble_eval_dir(category):
    """The folder of the ensemble's evaluation of a category."""
    return f"results/ensemble/eval/{category}"


def member_files(name):
    """An input function: the file ``name`` of every member's model of the job's category."""
    return lambda wildcards: [
        f"{model_dir(wildcards.category, m)}/{name}" for m in MEMBERS
    ]


def compared_metrics():
    """experiment -> category -> metrics.json, for every experiment and the ensemble."""
    compared = {
        experiment: {
            category: metrics_path(category, experiment) for category in CATEGORIES
        }
        for experiment in EXPERIMENTS
    }
    if ENSEMBLE_CONFIG:
        compared[ENSEMBLE] = {
            category: f"{ensemble_eval_dir(category)}/metrics.json"
            for category in CATEGORIES
        }
    return compared


def reproducing_config(category, experiment):
    """The configuration a model card shows: what trains the category as this experiment."""
    return {
        "archives": list(config["archives"]),
        "categories": [category],
        "regroup": {category: (config["regroup"] or {}).get(category, {})},
        "train": EXPERIMENTS[experiment],
    }


def ensemble_outputs():
    """The ensemble's evaluation per category and, with questions, each member's submission."""
    outputs = []
    for category in CATEGORIES if ENSEMBLE_CONFIG else []:
        outputs += [f"{ensemble_eval_dir(category)}/{name}" for name in EVAL_FILES]
    if ENSEMBLE_CONFIG and config["questions"]:
        outputs += [f"results/submissions/{member}.csv" for member in MEMBERS]
    return outputs


def comparison_outputs():
    """The comparison table and figure, and every model's card."""
    outputs = [
        "results/experiments.csv",
        "results/experiments.md",
        "results/plots/experiments.png",
    ]
    for experiment in EXPERIMENTS:
        outputs += [f"{model_dir(c, experiment)}/{MODEL_CARD_FILE}" for c in CATEGORIES]
    return outputs
