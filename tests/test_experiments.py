"""Experiments: overrides of train: merged key by key, refused when they would change the split,
checked at start-up; each experiment's outputs as targets of their own, one feature cache for the
experiments whose features agree, and the same split for every experiment of a category."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from fashionai.config import (
    ConfigError,
    evaluations,
    experiment_settings,
    merge_train,
    validate_config,
)
from fashionai.outputs import (
    CONFUSION_FILE,
    HELD_OUT_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    curves_file,
    eval_file,
    model_file,
    skipped_file,
    split_file,
)
from fashionai.training.backbones import notop_file_name
from fashionai.training.settings import WEIGHTS_DIR, TrainSettings
from tests.test_clean_output import alarming_lines
from tests.workflow_helpers import REPO, run_snakemake, tiny_config, workflow_config

CATEGORY = "collar_design_labels"
TRAINED_FILES = (MODEL_FILE, WEIGHTS_FILE, HISTORY_FILE, SPLIT_FILE, SUMMARY_FILE, HELD_OUT_FILE)


def one_category(**overrides: object) -> dict:
    """A whole tiny configuration of one category with these overrides."""
    return tiny_config(categories=[CATEGORY], **overrides)


def test_an_override_changes_only_what_it_names() -> None:
    train = {"learning_rate": 0.001, "dropout": 0.2, "augmentations": ["flip"], "epochs": 5}
    merged = merge_train(train, {"dropout": 0.5, "augmentations": []})
    assert merged == {"learning_rate": 0.001, "dropout": 0.5, "augmentations": [], "epochs": 5}
    merge_train(train, {"dropout": 0.5})["augmentations"].append("rotation")
    assert train["augmentations"] == ["flip"]  # a copy, lists included
    assert merge_train(train, None) == train


def test_schema_defaults_do_not_fill_the_overrides() -> None:
    config = one_category(
        train={"dropout": 0.3, "epochs": 4},
        experiments={"lr_low": {"learning_rate": 0.0001}, "same": None},
    )
    validate_config(config)
    assert config["experiments"] == {"lr_low": {"learning_rate": 0.0001}, "same": None}
    settings = experiment_settings(config)
    assert list(settings) == ["default", "lr_low", "same"]
    assert settings["lr_low"] == {**config["train"], "learning_rate": 0.0001}
    assert settings["same"] == config["train"]
    assert config["train"]["init_seed"] is None
    assert config["ensemble"] is None


def test_the_ensemble_block_takes_its_default_tta() -> None:
    config = one_category(
        experiments={"b": {"dropout": 0.4}}, ensemble={"members": ["default", "b"]}
    )
    validate_config(config)
    assert config["ensemble"] == {"members": ["default", "b"], "tta": False}


def test_every_evaluated_name_is_members_how_they_combine_and_tta() -> None:
    config = one_category(
        train={"folds": None},
        experiments={"b": {"dropout": 0.4}, "wide": {"folds": 2}},
        ensemble={"members": ["b", "wide"], "tta": True},
        eval={"tta": False},
    )
    validate_config(config)
    folds = ["wide-fold1", "wide-fold2"]
    assert evaluations(config) == {
        "default": {"members": ["default"], "combine": "single", "tta": False},
        "b": {"members": ["b"], "combine": "single", "tta": False},
        **{f: {"members": [f], "combine": "single", "tta": False} for f in folds},
        "wide": {"members": folds, "combine": "out_of_fold", "tta": False},
        "ensemble": {"members": ["b", *folds], "combine": "mean", "tta": True},
    }
    config["ensemble"] = None
    assert "ensemble" not in evaluations(config)


def test_init_seed_defaults_to_the_seed() -> None:
    assert TrainSettings(seed=3).run_seed == 3
    assert TrainSettings(seed=3, init_seed=0).run_seed == 0


# case: (experiments, the start of the message: the experiment, the key and the value)
REFUSED_NAMES_AND_KEYS = {
    "reserved name default": ({"default": {"dropout": 0.1}}, "experiments.default: the name"),
    "reserved name ensemble": ({"ensemble": {"dropout": 0.1}}, "experiments.ensemble: the name"),
    "a path as name": ({"a/b": {"dropout": 0.1}}, "experiments.a/b: the name 'a/b' is not a plain"),
    "a hidden name": ({".x": {"dropout": 0.1}}, "experiments..x: the name '.x' is not a plain"),
    "names differing in case": (
        {"wide": {"dropout": 0.1}, "Wide": {"dropout": 0.2}},
        "experiments.Wide: differs from experiments.wide only in case",
    ),
    "unknown key": ({"wide": {"dropuot": 0.1}}, "experiments.wide.dropuot = 0.1: not a known key"),
    "bad value": ({"wide": {"dropout": 1.5}}, "experiments.wide.dropout = 1.5: "),
    "a job resource": ({"wide": {"threads": 8}}, "experiments.wide.threads = 8: a setting of the"),
    "not a mapping": ({"wide": 3}, "experiments.wide = 3: "),
}


@pytest.mark.parametrize(
    ("experiments", "expected"), REFUSED_NAMES_AND_KEYS.values(), ids=list(REFUSED_NAMES_AND_KEYS)
)
def test_bad_experiments_are_refused(experiments: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate_config(one_category(experiments=experiments))
    assert str(error.value).startswith(expected), error.value


# case: (config overrides, fragments the message must hold: the experiment or member, the key)
REFUSED_AT_START = {
    "seed": (
        {"experiments": {"other": {"seed": 5}}},
        ["experiments.other.seed = 5: an experiment cannot change the split"],
    ),
    "validation_split": (
        {"experiments": {"other": {"validation_split": 0.25}}},
        ["experiments.other.validation_split = 0.25: an experiment cannot change the split"],
    ),
    "test_split": (
        {"experiments": {"other": {"test_split": 0}}},
        ["experiments.other.test_split = 0: an experiment cannot change the split"],
    ),
    "unknown ensemble member": (
        {"experiments": {"other": {"dropout": 0.4}}, "ensemble": {"members": ["default", "othr"]}},
        ["ensemble.members: 'othr' is not an experiment", "default, other"],
    ),
    "merged image size below the backbone minimum": (
        {"experiments": {"wide": {"backbone": "ResNet50V2", "image_size": 8}}},
        ["experiments.wide.image_size = 8: experiments.wide.backbone 'ResNet50V2' needs at least"],
    ),
}


@pytest.mark.parametrize(
    ("overrides", "expected"), REFUSED_AT_START.values(), ids=list(REFUSED_AT_START)
)
def test_refused_when_the_workflow_starts(overrides: dict, expected: list) -> None:
    with pytest.raises(ConfigError) as error:
        validate_config(workflow_config(categories=[CATEGORY], **overrides))
    for fragment in expected:
        assert fragment in str(error.value)


def planned_jobs(output: str) -> list[dict[str, str]]:
    """The jobs of a dry run: rule name and their input, output, benchmark lines."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:\n)", output):
        rule = re.match(r"rule (\w+):\n", block)
        if rule:
            fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.MULTILINE))
            jobs.append({"rule": rule.group(1), **fields})
    return jobs


def test_a_dry_run_plans_every_experiment_and_shares_feature_caches(tmp_path: Path) -> None:
    config = one_category(
        train={"cache_features": True, "threads": 2},
        experiments={
            "lr_low": {"learning_rate": 0.0001},
            "lr_high": {"learning_rate": 0.01, "dropout": 0.5, "init_seed": 4, "epochs": 3},
            "small": {"image_size": 16},
            "scratch": {"fine_tune": True},  # a random network trained whole: no cache
            "pretrained": {"backbone": "MobileNetV3Small", "weights": "imagenet"},
        },
    )
    result = run_snakemake(tmp_path, config, extra=("--dry-run",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert alarming_lines(result.stdout + result.stderr) == []
    jobs = planned_jobs(result.stdout)
    by_rule: dict[str, list[dict[str, str]]] = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    experiments = ("default", "lr_low", "lr_high", "small", "scratch", "pretrained")
    for rule in ("train", "evaluate", "plot_history", "model_card", "summarize"):
        assert len(by_rule[rule]) == len(experiments), rule  # one rule for every experiment
    # One split for every experiment, drawn once, read by every feature and training job.
    [split] = by_rule["split"]
    assert split["output"] == f"{split_file(CATEGORY)}, {skipped_file(CATEGORY)}"
    for job in by_rule["features"] + by_rule["train"]:
        assert split_file(CATEGORY) in job["input"].split(", "), job
    features = sorted(job["output"] for job in by_rule["features"])
    # default and lr_low: one cache; small: its own; lr_high too: its init_seed draws its
    # random backbone (weights: null), whose features the cache holds; pretrained: its own.
    assert len(features) == 4, features
    feature_of = {}
    for job in by_rule["train"]:
        name = re.search(r"experiment=([\w.-]+)", job["wildcards"]).group(1)
        cache = re.search(r"results/features/\S+?(?=,|$)", job["input"])
        feature_of[name] = cache.group(0) if cache else None
    assert feature_of["default"] == feature_of["lr_low"]
    assert len({feature_of[name] for name in ("default", "lr_high", "small", "pretrained")}) == 4
    assert feature_of["scratch"] is None
    # A head alone on a cache takes one core (the dry run prints no threads line), so that a
    # sweep's heads train side by side; a network trained whole takes train.threads.
    threads = {
        re.search(r"experiment=([\w.-]+)", job["wildcards"]).group(1): job.get("threads", "1")
        for job in by_rule["train"]
    }
    assert threads == {name: "2" if name == "scratch" else "1" for name in experiments}
    # The TensorFlow jobs start before the figures and scores that can wait.
    assert {job.get("priority") for job in by_rule["train"] + by_rule["features"]} == {"1"}
    assert set(feature_of.values()) - {None} == set(features)
    # The fetched weights file (fetch_weights) is what the features are computed with and depend
    # on, as training checks them: an input of rule features.
    fetched = f"{WEIGHTS_DIR}/{notop_file_name('MobileNetV3Small')}"
    [pretrained] = [job for job in by_rule["features"] if job["output"] == feature_of["pretrained"]]
    assert fetched in pretrained["input"].split(", ")

    everything = [job.get("output", "") for job in jobs]
    for experiment in experiments:
        for path in (
            *(model_file(name, CATEGORY, experiment) for name in TRAINED_FILES),
            curves_file(CATEGORY, experiment),
            eval_file(METRICS_FILE, CATEGORY, experiment),
            eval_file(CONFUSION_FILE, CATEGORY, experiment),
        ):
            assert any(path in output for output in everything), path
    benchmarks = {job["benchmark"] for job in jobs if "benchmark" in job}
    for experiment in experiments:
        assert f"results/benchmarks/train/{experiment}/{CATEGORY}.tsv" in benchmarks
    assert {f"results/benchmarks/{path.removeprefix('results/')}.tsv" for path in features} <= (
        benchmarks
    )


def test_the_demo_sweep_is_a_valid_configuration() -> None:
    config: dict = {}
    for file in ("config.yaml", "demo/config.yaml", "demo/experiments.yaml"):
        for key, value in yaml.safe_load((REPO / file).read_text()).items():
            config[key] = (
                {**config[key], **value}
                if isinstance(value, dict) and isinstance(config.get(key), dict)
                else value
            )
    validate_config(copy.deepcopy(config))
    assert len(config["experiments"]) >= 2
    assert config["ensemble"]["tta"] is True
    assert "default" in config["ensemble"]["members"]
