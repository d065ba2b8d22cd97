# Configuration checks, constants and input functions shared by the rules. Parsing stays
# light: nothing here imports numpy, pandas, Pillow, matplotlib or TensorFlow.
import os
import re
import sys

sys.path.insert(0, workflow.basedir)

from fashionai.archives import archive_id
from fashionai.config import validate_config
from fashionai.outputs import WEIGHTS_FILE, model_dir

validate_config(config)  # the schema's defaults filled in; raises before any job runs

CATEGORIES = list(config["categories"])
ARCHIVES = {archive_id(path): path for path in config["archives"]}
EXTRACTABLE = dict(ARCHIVES)
if config["questions"]:
    EXTRACTABLE[archive_id(config["questions"])] = config["questions"]
TRAIN = config["train"]
SYNTHETIC = config["synthetic"]


def one_of(names):
    """A wildcard constraint matching exactly these names (regex characters escaped)."""
    return "|".join(re.escape(name) for name in names)


wildcard_constraints:
    category=one_of(CATEGORIES),
    archive=one_of(EXTRACTABLE),


def archive_path(wildcards):
    """The configured archive behind an extraction job."""
    return EXTRACTABLE[wildcards.archive]


def extracted_folders():
    """Every training archive's extraction folder, in round order."""
    return [f"results/extracted/{name}" for name in ARCHIVES]


def weights_input(wildcards):
    """A local ImageNet weights file fetched before training, when the config asks for it."""
    if TRAIN["weights"] == "imagenet" and TRAIN["fetch_weights"]:
        return f"resources/weights/{TRAIN['backbone']}_imagenet_notop.h5"
    if TRAIN["weights"] not in (None, "imagenet"):
        return TRAIN["weights"]
    return []


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


def all_outputs():
    """The default target: data, models, curves, evaluation and, with questions, predictions."""
    outputs = data_outputs() + ["results/summary.csv", "results/summary.md"]
    for category in CATEGORIES:
        outputs += [
            f"{model_dir(category)}/{WEIGHTS_FILE}",
            f"results/plots/{category}/learning_curves.png",
            f"results/eval/{category}/metrics.json",
            f"results/eval/{category}/confusion_matrix.png",
        ]
    if config["questions"]:
        outputs.append("results/submission.csv")
    return outputs


# The train: keys that only the workflow reads (fetching weights, the jobs' threads): left out of
# the training settings, so that changing them does not rerun training.
WORKFLOW_TRAIN_KEYS = ("fetch_weights", "weights_url", "threads")


def train_settings():
    """The train: config as the training script takes it, with fetched weights resolved."""
    settings = {k: v for k, v in TRAIN.items() if k not in WORKFLOW_TRAIN_KEYS}
    fetched = weights_input(None)
    if fetched:
        settings["weights"] = fetched
    return settings


def features_input(wildcards):
    """The category's feature cache (rule features) when the frozen epochs train on it."""
    if TRAIN["cache_features"]:
        return f"results/features/{wildcards.category}"
    return []


# The train: keys the cached features depend on. They are the params of rule features, so a
# change reruns it (and then training); the batch size does not change the features.
FEATURE_KEYS = (
    "backbone",
    "weights",
    "image_size",
    "augmentations",
    "views",
    "seed",
    "validation_split",
    "test_split",
    "mixed_precision",
)


def feature_settings():
    """The settings rule features computes with, fetched weights resolved like training's."""
    settings = train_settings()
    return {key: settings[key] for key in FEATURE_KEYS}


def question_archive_id():
    """The extraction folder name of the test archive, when prediction is configured."""
    return archive_id(config["questions"])
