# Configuration checks, constants and input functions shared by the rules. Parsing stays
# light: nothing here imports numpy, pandas, Pillow, matplotlib or TensorFlow.
import re
import sys
from types import SimpleNamespace

sys.path.insert(0, workflow.basedir)

from fashionai.archives import archive_id
from fashionai.outputs import *  # every output's path and file name
from fashionai.schema import ConfigError
import fashionai.config as configuration
import fashionai.training.settings as training


def checked(check, *args):
    """``check(*args)``; a configuration error ends the run before any job, in one line."""
    try:
        return check(*args)
    except ConfigError as error:
        sys.exit(f"Configuration error: {error}")


# config.yaml, then the --configfile files on top (Snakemake reads those itself, earlier).
configfile: checked(configuration.check_yaml_syntax, "config.yaml")


checked(configuration.validate_config, config)  # the schema's defaults filled in

CATEGORIES = list(config["categories"])
ARCHIVES = {archive_id(path): path for path in config["archives"]}
EXTRACTABLE = {archive_id(path): path for path in [*ARCHIVES.values(), config["questions"]] if path}
TRAIN = config["train"]  # its run-only keys (threads, gpus) hold for every experiment
SYNTHETIC = config["synthetic"]
EXPERIMENTS = configuration.experiment_settings(config)  # name -> merged train: (fold members too)
EVALUATIONS = configuration.evaluations(config)  # evaluated name -> its members, combine and tta
MEMBERS = configuration.ensemble_members(config)  # the models that make the submission
COMPARED = {e: {c: eval_file(METRICS_FILE, c, e) for c in CATEGORIES} for e in EVALUATIONS}
GROUPS = configuration.trained_groups(config)  # train.grouped: group -> its categories, one model
GROUP_OF = {c: group for group, members in GROUPS.items() for c in members}
GROUPED = [name for name, train in EXPERIMENTS.items() if train["grouped"] and GROUPS]
# Experiments that agree on the feature keys share one cache, named by a hash of their values.
FEATURE_SETS = dict(training.feature_set(s) for s in EXPERIMENTS.values())


def one_of(names):
    """A wildcard constraint matching exactly these names, or nothing (an empty one: anything)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    # Any category: a target of one outside categories: stops in category_tree's input (no file).
    category=r"[^/]+_labels",
    archive=one_of(EXTRACTABLE),
    experiment=one_of(EXPERIMENTS),
    evaluated=one_of(EVALUATIONS),
    folds=r"\d+",
    fold=r"\d+",
    group=one_of(GROUPS),
    feature_set=one_of(FEATURE_SETS),


def features_input(wildcards):
    """The feature cache of the job's experiment, when it trains its head on one."""
    settings = EXPERIMENTS[wildcards.experiment]
    if training.uses_feature_cache(settings):
        return features_dir(wildcards.category, training.feature_set(settings)[0])
    return []


def training_threads(wildcards):
    """train.threads, or one for a job that trains a head alone on a feature cache."""
    return 1 if training.trains_head_only(EXPERIMENTS[wildcards.experiment]) else TRAIN["threads"]


def job_settings(wildcards):
    """The params of a feature cache's job (rule features) or a model's (weights file resolved)."""
    if hasattr(wildcards, "feature_set"):
        return FEATURE_SETS[wildcards.feature_set]
    return training.model_settings(EXPERIMENTS[wildcards.experiment])


def split_input(wildcards):
    """The split file a job reads: its category's, or its fold member's."""
    settings = job_settings(wildcards)
    return split_of(wildcards.category, settings.get("folds"), settings.get("fold"))


def weights_input(wildcards):
    """The weights file a job reads (fetched first, if the config asks), if any."""
    weights = job_settings(wildcards)["weights"]
    return [] if weights in (None, "imagenet") else weights


def decoded_input(wildcards):
    """The decoded labels: an input only of jobs training on soft targets (the m codes)."""
    return DECODED_CSV if EXPERIMENTS[wildcards.experiment]["maybe_labels"] == "soft" else []


def group_input(input_function):
    """Rule train's ``input_function`` for each category of a train_group job's group."""
    job = lambda w, c: SimpleNamespace(category=c, experiment=w.experiment)
    return lambda w: [p for c in GROUPS[w.group] if (p := input_function(job(w, c)))]


def member_files(name):
    """An input function: the file ``name`` of the job's evaluated models in its category."""
    return lambda wildcards: [
        model_file(name, wildcards.category, member)
        for member in EVALUATIONS[wildcards.evaluated]["members"]
    ]


def reproducing_config(wildcards):
    """The configuration a model card shows: one that trains the model again (with its group)."""
    group = GROUP_OF.get(wildcards.category) if wildcards.experiment in GROUPED else None
    categories = GROUPS[group] if group else [wildcards.category]
    left_out = (*training.RUN_ONLY_KEYS, *training.MEMBER_KEYS)  # the machine's; the experiment's
    return {
        "archives": list(config["archives"]),
        "synthetic": SYNTHETIC,
        "categories": categories,
        "regroup": {c: (config["regroup"] or {}).get(c, {}) for c in categories},
        "groups": {group: list(categories)} if group else {},
        "train": {k: v for k, v in EXPERIMENTS[wildcards.experiment].items() if k not in left_out},
    }


def data_outputs():
    """Everything up to the regrouped trees and the label statistics."""
    paths = [regrouped_dir(), label_plot(), previews_dir()]
    return [DECODED_CSV, *expand(paths, category=CATEGORIES)]


def all_outputs():
    """Every final output: data, models, cards, curves, summaries, evaluations, submissions."""
    models = [model_file(WEIGHTS_FILE), model_file(MODEL_CARD_FILE), curves_file()]
    evaluated = [eval_file(METRICS_FILE), eval_file(CONFUSION_FILE)]
    outputs = [
        *data_outputs(),
        *[summary_file(suffix, e) for e in EXPERIMENTS for suffix in ("csv", "md")],
        *expand(models, experiment=list(EXPERIMENTS), category=CATEGORIES),
        *expand(evaluated, experiment=list(EVALUATIONS), category=CATEGORIES),
        EXPERIMENTS_TABLE,
        EXPERIMENTS_PLOT,
    ]
    if config["questions"]:
        outputs += [submission_file(), *map(submission_file, MEMBERS)]
    return outputs
