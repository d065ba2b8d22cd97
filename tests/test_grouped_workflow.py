"""Grouped models in the workflow (train.grouped): which groups train as one model, the jobs a
grouped experiment plans (one train_group per group, one group_member per category, rule train
for the rest) and the links that give each category of a group its own model folder. The
refused group configurations are in tests/test_config.py."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fashionai.config import trained_groups, validate_config
from fashionai.outputs import (
    HELD_OUT_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    model_file,
)
from fashionai.training.settings import RUN_ONLY_KEYS, TrainSettings, model_settings
from fashionai.trees import link_files
from tests.test_clean_output import alarming_lines
from tests.test_experiments import planned_jobs
from tests.workflow_helpers import run_snakemake, tiny_config, workflow_config

DESIGN = ["collar_design_labels", "lapel_design_labels", "neck_design_labels"]
ALONE = "coat_length_labels"  # the one configured category of the default group length


def test_a_group_trains_its_configured_categories_in_their_order() -> None:
    config = validate_config(workflow_config(categories=[ALONE, *reversed(DESIGN)]))
    assert config["groups"]["length"][0] == ALONE  # the schema's default groups
    assert trained_groups(config) == {"design": list(reversed(DESIGN))}  # length: one category
    config["groups"] = None
    assert trained_groups(config) == {}


def test_mixing_images_and_padding_two_ways_are_refused_only_where_a_group_trains() -> None:
    train = {"grouped": True, "fine_tune": True, "augmentations": ["mixup"]}
    validate_config(workflow_config(categories=[ALONE, DESIGN[0]], train=train))
    validate_config(workflow_config(categories=DESIGN, train=train, groups={}))
    train = {"grouped": True, "resize": "pad"}
    validate_config(workflow_config(train=train))  # the default groups: each of one kind
    mixed = {"a": [ALONE, DESIGN[0]]}  # of which only ALONE is configured: it trains alone
    validate_config(workflow_config(train=train, categories=[ALONE, DESIGN[1]], groups=mixed))


def test_grouped_settings_change_the_model() -> None:
    """train.grouped is a model's setting: in rule train's params, not run-only."""
    config = validate_config(workflow_config(train={"grouped": True}))
    assert "grouped" not in RUN_ONLY_KEYS
    assert TrainSettings.from_config(model_settings(config["train"])).grouped is True


def test_link_files_links_each_output_to_its_namesake_and_dates_it_now(tmp_path: Path) -> None:
    source = tmp_path / "group" / "members" / "neck_design_labels"
    source.mkdir(parents=True)
    for name in (MODEL_FILE, HELD_OUT_FILE):
        (source / name).write_text(name)
        os.utime(source / name, (1_000_000, 1_000_000))
    marker = tmp_path / "group" / SUMMARY_FILE  # what made the folder, written after its files
    marker.write_text("{}")
    folder = tmp_path / "models" / "neck_design_labels"
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_text("an older model")
    outputs = [folder / MODEL_FILE, folder / HELD_OUT_FILE]
    link_files(source, outputs)
    for output in outputs:
        assert output.read_text() == output.name
        assert output.stat().st_ino == (source / output.name).stat().st_ino  # a hard link
        assert output.stat().st_mtime >= marker.stat().st_mtime  # up to date for Snakemake
    with pytest.raises(FileNotFoundError, match=rf"{source / WEIGHTS_FILE}: no such file"):
        link_files(source, [folder / WEIGHTS_FILE])


def test_a_grouped_experiment_plans_one_job_per_group_and_links_the_rest(tmp_path: Path) -> None:
    """Default trains each category (rule train); experiment shared trains the design group as
    one model (rule train_group, on every category's tree and feature cache) and links its
    categories' files (rule group_member), while coat, alone in its group, trains as before."""
    config = tiny_config(categories=[*DESIGN, ALONE], experiments={"shared": {"grouped": True}})
    result = run_snakemake(tmp_path, config, extra=("--dry-run",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert alarming_lines(result.stdout + result.stderr) == []
    jobs: dict[str, list[tuple[dict[str, str], dict[str, str]]]] = {}
    for job in planned_jobs(result.stdout):
        wildcards = dict(re.findall(r"(\w+)=([\w.-]+)", job.get("wildcards", "")))
        jobs.setdefault(job["rule"], []).append((wildcards, job))
    trained = sorted((w["experiment"], w["category"]) for w, _ in jobs["train"])
    assert trained == sorted([*(("default", c) for c in [*DESIGN, ALONE]), ("shared", ALONE)])
    [(wildcards, group_job)] = jobs["train_group"]
    assert wildcards == {"experiment": "shared", "group": "design"}
    inputs = group_job["input"].split(", ")
    for category in DESIGN:
        assert f"results/regrouped/{category}" in inputs
        assert any(path.startswith(f"results/features/{category}/") for path in inputs)
    assert model_file(WEIGHTS_FILE, "design", "shared") in group_job["output"].split(", ")
    assert group_job["benchmark"] == "results/benchmarks/train_group/shared/design.tsv"
    members = {w["category"]: job for w, job in jobs["group_member"]}
    assert sorted(members) == sorted(DESIGN)
    for category, job in members.items():
        assert job["input"] == model_file(SUMMARY_FILE, "design", "shared")
        assert model_file(HELD_OUT_FILE, category, "shared") in job["output"].split(", ")
