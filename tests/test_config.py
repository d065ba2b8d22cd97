"""Bad configuration is refused before any job runs, with a message naming the key and the value.

Each refused case is checked in-process on the configuration the workflow would see
(config.yaml, then the test's file, merged key by key as Snakemake does); one case runs the
workflow for real (no dry run) to show the check comes before any job: a refusal that came late
would leave results/ or resources/ behind.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from fashionai.config import ConfigError, check_category, check_yaml_syntax, validate_config
from fashionai.schema import load_schema
from fashionai.training.settings import RUN_ONLY_KEYS, SPLIT_KEYS
from tests.workflow_helpers import REPO, run_snakemake, tiny_config, workflow_config

SYNTHETIC = "resources/synthetic"
HEAVY = ("numpy", "pandas", "PIL", "matplotlib", "tensorflow", "keras")


def test_tiny_config_plans(tmp_path: Path) -> None:
    result = run_snakemake(tmp_path, tiny_config(), "data", extra=("--dry-run",))
    assert result.returncode == 0, result.stderr
    assert "make_synthetic" in result.stdout + result.stderr


# case: (config overrides, fragments the message must hold: the key and the value)
REFUSED = {
    "unknown backbone": (
        {"train": {"backbone": "ResNet9000"}},
        ["train.backbone = 'ResNet9000': "],
    ),
    "zero epochs": ({"train": {"epochs": 0}}, ["train.epochs = 0: "]),
    "negative batch size": ({"train": {"batch_size": -4}}, ["train.batch_size = -4: "]),
    "validation split above 1": (
        {"train": {"validation_split": 1.5}},
        ["train.validation_split = 1.5: "],
    ),
    "unknown augmentation": (
        {"train": {"augmentations": ["flip", "zoom"]}},
        ["train.augmentations[1] = 'zoom': "],
    ),
    "unknown train key": ({"train": {"typo_key": 7}}, ["train.typo_key = 7: not a known key"]),
    "negative seed": ({"train": {"seed": -1}}, ["train.seed = -1: "]),
    "zero max ratio": ({"extract": {"max_ratio": 0}}, ["extract.max_ratio = 0: "]),
    "unknown category": (
        {"categories": ["hat_length_labels"]},
        ["categories[0] = 'hat_length_labels': "],
    ),
    "unknown regroup category": (
        {"regroup": {"hat_labels": {"drop": ["Invisible"]}}},
        ["regroup.hat_labels: not a known"],
    ),
    "unknown merge label": (
        {"regroup": {"neck_design_labels": {"merge": {"Polo Neck": "Turtle Neck"}}}},
        ["regroup.neck_design_labels = ", "merge from 'Polo Neck' is not a class"],
    ),
    "unknown drop label": (
        {"regroup": {"sleeve_length_labels": {"drop": ["Very Long"]}}},
        ["regroup.sleeve_length_labels = ", "drop 'Very Long' is not a class"],
    ),
    "missing archive": (
        {"archives": ["resources/raw/missing_round.tar"]},
        ["archives[0] = 'resources/raw/missing_round.tar': no such file"],
    ),
    "not an archive": (
        {"archives": ["resources/raw/labels.rar"]},
        ["archives[0] = 'resources/raw/labels.rar': "],
    ),
    "missing weights file": (
        {"train": {"weights": "resources/weights/nowhere.h5"}},
        ["train.weights = 'resources/weights/nowhere.h5': no such file"],
    ),
    "SmallCNN with imagenet": (
        {"train": {"weights": "imagenet"}},
        ["train.weights = 'imagenet': there are no ImageNet weights", "'SmallCNN'"],
    ),
    "head epochs not below epochs": (
        {
            "train": {
                "fine_tune": True,
                "epochs": 2,
                "head_epochs": 2,
                "backbone": "MobileNetV3Small",
                "weights": "imagenet",
            }
        },
        ["train.head_epochs = 2: must be below train.epochs (2)"],
    ),
    "views without augmentations": (
        {"train": {"views": 3}},
        ["train.views = 3: more than one view needs"],
    ),
    "image size below the backbone minimum": (
        {"train": {"backbone": "MobileNetV3Small", "image_size": 24}},
        ["train.image_size = 24: train.backbone 'MobileNetV3Small' needs at least 32 px"],
    ),
    "tar and zip of one name": (
        {"archives": ["resources/raw/round.tar", "resources/raw/round.zip"]},
        ["archives[1] = 'resources/raw/round.zip'", "archives[0] = 'resources/raw/round.tar'"],
    ),
    "names differing in case": (
        {"archives": ["resources/raw/Round.tar", "resources/raw/round.tar.gz"]},
        ["archives[1] = 'resources/raw/round.tar.gz'", "archives[0] = 'resources/raw/Round.tar'"],
    ),
    "questions named like a training archive": (
        {"questions": f"{SYNTHETIC}/warm_up_train_20180201.zip"},
        [
            f"questions = '{SYNTHETIC}/warm_up_train_20180201.zip'",
            f"archives[1] = '{SYNTHETIC}/warm_up_train_20180201.tar'",
        ],
    ),
    ".partial. archive name": (
        {"archives": [f"{SYNTHETIC}/round.tar", f"{SYNTHETIC}/.partial.round.tar"]},
        [f"archives[1] = '{SYNTHETIC}/.partial.round.tar': ", "'.partial.round' starts with"],
    ),
    ".old. archive name": (
        {"archives": [f"{SYNTHETIC}/.old.round.zip"]},
        [f"archives[0] = '{SYNTHETIC}/.old.round.zip': ", "'.old.round' starts with"],
    ),
    "misspelled category": (
        {"categories": ["colar_design_labels"]},
        ["categories[0] = 'colar_design_labels': did you mean 'collar_design_labels'? not one of"],
    ),
    "misspelled train key": (
        {"train": {"epoks": 3}},
        ["train.epoks = 3: not a known key; did you mean 'epochs'? known keys: "],
    ),
    "misspelled section": (
        {"tran": {"epochs": 3}},
        ["tran = {'epochs': 3}: not a known key; did you mean 'train'? known keys: "],
    ),
    "misspelled augmentation": (
        {"train": {"augmentations": ["flipp"]}},
        ["train.augmentations[0] = 'flipp': did you mean 'flip'? not one of: flip, rotation"],
    ),
    "braces in an archive name": (
        {"archives": ["resources/raw/round{1}.tar"]},
        ["archives[0] = 'resources/raw/round{1}.tar': braces"],
    ),
    "a group's unknown category": (
        {"groups": {"design": ["collar_design_labels", "lapel_desing_labels"]}},
        ["groups.design[1] = 'lapel_desing_labels': did you mean 'lapel_design_labels'? not one"],
    ),
    "a category in two groups": (
        {
            "groups": {
                "a": ["neck_design_labels"],
                "b": ["coat_length_labels", "neck_design_labels"],
            }
        },
        [
            "groups.b = ['coat_length_labels', 'neck_design_labels']: neck_design_labels is in "
            "groups.a too; a category is in one group at most"
        ],
    ),
    "a category twice in a group": (
        {"groups": {"a": ["neck_design_labels", "neck_design_labels"]}},
        ["groups.a = ['neck_design_labels', 'neck_design_labels']: neck_design_labels is twice"],
    ),
    "a group named as a category": (
        {"groups": {"collar_design_labels": ["collar_design_labels", "neck_design_labels"]}},
        [
            "groups.collar_design_labels: a category's name; a group's folder sits beside the "
            "categories' under models/"
        ],
    ),
    "a group name ending in _labels": (
        {"groups": {"top_Labels": ["collar_design_labels"]}},
        ["groups.top_Labels: ends in '_labels'; a group's folder sits beside"],
    ),
    "an empty group": ({"groups": {"design": []}}, ["groups.design = []: an empty group"]),
    "a null group": ({"groups": {"design": None}}, ["groups.design = None: an empty group"]),
    "a group as one name": (
        {"groups": {"design": "collar_design_labels"}},
        ["groups.design = 'collar_design_labels': 'collar_design_labels' is not of type 'array'"],
    ),
    "a group name YAML reads as a number": (
        {"groups": {2: ["collar_design_labels"]}},
        ["groups.2: YAML reads this name as the number 2, not as text"],
    ),
    "a group name with a slash": (
        {"groups": {"a/b": ["collar_design_labels"]}},
        ["groups.a/b: the name 'a/b' is not a plain folder name"],
    ),
    "group names differing in case": (
        {"groups": {"Design": ["collar_design_labels"], "design": ["neck_design_labels"]}},
        ["groups.design: differs from groups.Design only in case"],
    ),
    "grouped with mixup": (
        {"train": {"grouped": True, "fine_tune": True, "augmentations": ["flip", "mixup"]}},
        [
            "train.augmentations = ['flip', 'mixup']: mixup mixes pairs of images and their "
            "targets, but with train.grouped: true a batch of a group (groups.design: "
            "collar_design_labels, lapel_design_labels"
        ],
    ),
    "an experiment grouped with cutmix": (
        {
            "train": {"fine_tune": True, "augmentations": ["cutmix"]},
            "experiments": {"shared": {"grouped": True}},
        },
        [
            "experiments.shared.augmentations = ['cutmix']: cutmix mixes pairs of images and",
            "with experiments.shared.grouped: true",
        ],
    ),
    "grouped not a boolean": ({"train": {"grouped": "yes"}}, ["train.grouped = 'yes': "]),
    "a group padding at two edges": (
        {
            "groups": {"upper": ["collar_design_labels", "sleeve_length_labels"]},
            "experiments": {"shared": {"grouped": True, "resize": "pad"}},
        },
        [
            "experiments.shared.resize = 'pad': with experiments.shared.grouped: true, a "
            "group's images pad at one edge, but groups.upper mixes *_design_labels",
            "(collar_design_labels, sleeve_length_labels)",
        ],
    ),
}


@pytest.mark.parametrize(("overrides", "expected"), REFUSED.values(), ids=REFUSED)
def test_bad_config_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict, expected: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # paths in the config are relative to the workflow's folder
    with pytest.raises(ConfigError) as error:
        validate_config(workflow_config(**overrides))
    for fragment in expected:
        assert fragment in str(error.value)


BROKEN_YAML = "train:\n  epochs: 3\n   batch_size: 4\n"  # line 3 indented one space too far


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BROKEN_YAML)
    with pytest.raises(ConfigError, match=r"config.yaml, line 3, column 14: not valid YAML \("):
        check_yaml_syntax(path)
    path.write_text("train:\n  epochs: 3\n")
    assert check_yaml_syntax(path) == str(path)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The one ``Configuration error:`` line of a run, checked to come without stack frames."""
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Configuration error: ")]
    assert len(errors) == 1, lines
    assert not [line for line in lines if 'File "' in line or "Traceback" in line], lines
    return errors[0]


@pytest.mark.parametrize(
    ("category", "hint"),
    [("coat_length_labels", ""), ("colar_design_labels", "did you mean 'collar_design_labels'? ")],
)
def test_a_category_outside_categories_is_named(category: str, hint: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_category(category, ["collar_design_labels", "neck_design_labels"])
    assert str(error.value) == (
        f"a target names the category {category!r}: {hint}it is not in categories: "
        "(collar_design_labels, neck_design_labels); add it there to build its files"
    )
    check_category("neck_design_labels", ["collar_design_labels", "neck_design_labels"])


def test_a_target_of_a_category_outside_categories_stops_the_run_in_one_line(
    tmp_path: Path,
) -> None:
    """Snakemake would say only that no rule makes it (MissingRuleException)."""
    target = "results/experiments/default/models/coat_length_labels/best.weights.h5"
    config = tiny_config(categories=["collar_design_labels"])
    result = run_snakemake(tmp_path, config, target, extra=("--dry-run",))
    assert result.returncode == 1
    assert one_line_error(result) == (
        "Configuration error: a target names the category 'coat_length_labels': it is not in "
        "categories: (collar_design_labels); add it there to build its files"
    )


def test_a_yaml_syntax_error_in_config_yaml_stops_the_run_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(BROKEN_YAML)
    result = run_snakemake(tmp_path, tiny_config(), "data", extra=("--dry-run",))
    assert result.returncode == 1
    assert one_line_error(result).startswith("Configuration error: config.yaml, line 3, column")


def integer_keys(schema: Mapping, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Every key below ``schema`` that it types as an integer (or null), dotted, with its spec."""
    definitions = load_schema()["definitions"]
    for name, spec in schema.get("properties", {}).items():
        if "$ref" in spec:
            spec = {**definitions[spec["$ref"].rpartition("/")[2]], **spec}
        if "integer" in spec.get("type", ()):
            yield prefix + name, spec
        yield from integer_keys(spec, f"{prefix}{name}.")


def whole_float_cases() -> dict[str, tuple[str, float]]:
    """Per integer key of the schema (and of an experiment, for each train: key it may
    override): the key's dotted name and a whole float in its range (its default or minimum)."""
    cases = {}
    for key, spec in integer_keys(load_schema()):
        default = spec.get("default")
        value = float(default if isinstance(default, int) else spec["minimum"])
        cases[key] = (key, value)
        section, _, name = key.partition(".")
        if section == "train" and name not in (*SPLIT_KEYS, *RUN_ONLY_KEYS):
            cases[f"experiments.wide.{name}"] = (f"experiments.wide.{name}", value)
    return cases


WHOLE_FLOATS = whole_float_cases()


def test_whole_float_cases_cover_the_integer_keys() -> None:
    for key in ("train.folds", "train.epochs", "train.image_size", "eval.batch_size"):
        assert key in WHOLE_FLOATS
    assert "experiments.wide.folds" in WHOLE_FLOATS


@pytest.mark.parametrize(("key", "value"), WHOLE_FLOATS.values(), ids=WHOLE_FLOATS)
def test_a_whole_float_is_refused_for_an_integer_key(key: str, value: float) -> None:
    """JSON Schema's integer takes 2.0; range(), slicing and Keras do not, inside a job."""
    *sections, name = key.split(".")
    overrides: dict = {name: value}
    for section in reversed(sections):
        overrides = {section: overrides}
    with pytest.raises(ConfigError) as error:
        validate_config(workflow_config(**overrides))
    whole = int(value)
    assert str(error.value) == (
        f"{key} = {value!r}: must be a whole number; write {whole}, not {value!r}"
    )


def test_the_workflow_refuses_a_bad_config_before_any_job(tmp_path: Path) -> None:
    """In one line: the message alone, no stack frames of the rules or the package."""
    result = run_snakemake(tmp_path, tiny_config(train={"epochs": 0}), "data")
    assert result.returncode == 1
    assert one_line_error(result).startswith("Configuration error: train.epochs = 0: ")
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "resources").exists()


def _archive(path: Path) -> None:
    """A tiny archive holding one text file, zip or tar by its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("Annotations/readme.txt", "hi")
        return
    with tarfile.open(path, "w") as archive:
        member = tarfile.TarInfo("Annotations/readme.txt")
        member.size = 2
        archive.addfile(member, io.BytesIO(b"hi"))


def test_archive_names_with_regex_characters_extract(tmp_path: Path) -> None:
    names = {"warm_up (1)": "warm_up (1).tar", "round+2": "round+2.zip", "a[1]": "a[1].tar"}
    for file in names.values():
        _archive(tmp_path / "resources/raw" / file)
    config = tiny_config(archives=[f"resources/raw/{file}" for file in names.values()])
    planned = run_snakemake(tmp_path, config, "data", extra=("--dry-run",))
    assert planned.returncode == 0, planned.stderr[-3000:]
    folders = [f"results/extracted/{name}" for name in names]
    for folder in folders:
        assert f"output: {folder}\n" in planned.stdout, planned.stdout[-3000:]
    extracted = run_snakemake(tmp_path, config, *folders)
    assert extracted.returncode == 0, extracted.stderr[-3000:]
    for folder in folders:
        assert (tmp_path / folder / "Annotations/readme.txt").read_text() == "hi"


# Installed as sitecustomize in the snakemake process: records each import of a heavy module
# made while a frame of this repository (Snakefile, rules, the package) is on the stack.
IMPORT_WATCH = """
import builtins, os, sys

_import = builtins.__import__
_repo = os.environ["WATCH_REPO"] + os.sep
_heavy = set(os.environ["WATCH_HEAVY"].split())


def _watched(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.partition(".")[0] in _heavy:
        frame = sys._getframe(1)
        while frame is not None:
            file = frame.f_code.co_filename
            if file.startswith(_repo) and not file.startswith(sys.prefix + os.sep):
                with open(os.environ["WATCH_REPORT"], "a") as report:
                    report.write(f"{name} imported from {file}:{frame.f_lineno}\\n")
                break
            frame = frame.f_back
    return _import(name, globals, locals, fromlist, level)


builtins.__import__ = _watched
"""


def test_parsing_the_workflow_imports_nothing_heavy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(IMPORT_WATCH)
    report = tmp_path / "imports.txt"
    report.touch()
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{path}" if path else str(site))
    monkeypatch.setenv("WATCH_REPO", str(REPO))
    monkeypatch.setenv("WATCH_HEAVY", " ".join(HEAVY))
    monkeypatch.setenv("WATCH_REPORT", str(report))
    config = tiny_config(questions=f"{SYNTHETIC}/fashionAI_attributes_test_a_20180222.tar")
    result = run_snakemake(tmp_path / "work", config, extra=("--dry-run",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "predict" in result.stdout  # the whole DAG was built, input functions included
    assert report.read_text() == ""
