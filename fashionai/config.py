"""The workflow configuration, checked once before any job against
``schemas/config.schema.yaml`` (defaults filled in), then for what a schema cannot check: files,
colliding folders, names, keys that depend on each other. The rest of the code reads every key
without a check of its own. Cheap to import. Messages read ``<key> = <value>: <problem>``.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from fashionai.archives import NOT_AN_ARCHIVE, archive_id
from fashionai.atomic import OLD_PREFIX, PARTIAL_PREFIX
from fashionai.attributes import CATEGORIES
from fashionai.outputs import (
    DEFAULT_EXPERIMENT,
    ENSEMBLE,
    MEAN,
    OUT_OF_FOLD,
    SINGLE,
    extracted_dir,
    fold_name,
)
from fashionai.regrouping import plan_regroup
from fashionai.schema import ConfigError, did_you_mean, load_schema
from fashionai.training.settings import RUN_ONLY_KEYS, SPLIT_KEYS, check_grouping, check_train

# An experiment's name is a folder under results/experiments/ and a Snakemake wildcard value.
EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_EXPERIMENT_NAME = 64
# Snakemake refuses a wildcard value ending in a substring repeated 20 times or more as a
# runaway recursion (PeriodicWildcardError, snakemake.io.PeriodicityDetector).
PERIODIC = re.compile(r"(.+?)\1{19,}$")


def check_yaml_syntax(path: str | Path) -> str:
    """``path``, once it parses as YAML; ConfigError naming its line and column if it does not
    (Snakemake's own message names neither). A missing file is left to Snakemake."""
    try:
        with open(path, encoding="utf-8") as handle:
            yaml.safe_load(handle)
    except FileNotFoundError:
        pass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({error.problem or error.context}); indent with "
            "spaces only and write each setting as key: value"
        ) from None
    return str(path)


def check_category(category: str, categories: Sequence[str]) -> None:
    """ConfigError when a target names a category not configured (Snakemake would only say
    that no rule makes the target)."""
    if category not in categories:
        hint = did_you_mean(category, CATEGORIES) if category not in CATEGORIES else ""
        raise ConfigError(
            f"a target names the category {category!r}: {hint}it is not in categories: "
            f"({', '.join(categories)}); add it there to build its files"
        )


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config``, checked (ConfigError at the first problem) and its defaults filled in place;
    relative paths are from the working directory."""
    schema = load_schema()
    validator = _validator_class(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))
    check_archives(config)
    for category, spec in (config["regroup"] or {}).items():
        try:
            plan_regroup(category, spec)
        except ValueError as problem:
            raise ConfigError(f"regroup.{category} = {spec!r}: {problem}") from None
    check_train(config["train"], where="train")
    check_experiments(config, validator)
    check_groups(config)
    return config


def check_archives(config: Mapping[str, Any]) -> None:
    """Each archive (or extracted folder) exists and extracts into a folder of its own: not one
    differing only in case, starting with ``.`` (partial outputs) or with braces (wildcards)."""
    archives = [(f"archives[{index}]", path) for index, path in enumerate(config["archives"])]
    if config["questions"]:
        archives.append(("questions", config["questions"]))
    folders: dict[str, tuple[str, str]] = {}
    for key, path in archives:
        try:
            folder = archive_id(path)
        except ValueError:
            raise ConfigError(f"{key} = {path!r}: {NOT_AN_ARCHIVE}") from None
        if folder.startswith((".", PARTIAL_PREFIX, OLD_PREFIX)):
            raise ConfigError(
                f"{key} = {path!r}: its extraction folder name {folder!r} starts with '.', which "
                f"is kept for partial outputs ({PARTIAL_PREFIX}<name>, {OLD_PREFIX}<name>); "
                "rename the file"
            )
        if "{" in folder or "}" in folder:
            raise ConfigError(
                f"{key} = {path!r}: braces in an archive's name are read by Snakemake as "
                "wildcards; rename the file"
            )
        if folder.casefold() in folders:
            other_key, other = folders[folder.casefold()]
            raise ConfigError(
                f"{key} = {path!r}: extracts into the same folder {extracted_dir(folder)} as "
                f"{other_key} = {other!r}; give each archive a distinct name"
            )
        folders[folder.casefold()] = (key, path)
    out_dir = Path(config["synthetic"]["out_dir"])
    for key, path in archives:
        if Path(path).parent != out_dir and not Path(path).exists():  # out_dir: generated
            raise ConfigError(f"{key} = {path!r}: no such file (relative to {Path.cwd()})")


def experiment_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every experiment's train settings by name, ``default`` first; an experiment with ``folds``
    stands for its fold members (:func:`fold_members`), each with its ``fold`` (1..K)."""
    folded, experiments = fold_members(config), {}
    for name, settings in _merged(config).items():
        for fold, member in enumerate(folded.get(name, [name]), 1):
            fold_settings = {**settings, "fold": fold} if name in folded else settings
            experiments[member] = copy.deepcopy(fold_settings)
    return experiments


def fold_members(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The experiments with ``folds`` and their members' names, in order."""
    return {
        name: [fold_name(name, fold) for fold in range(1, settings["folds"] + 1)]
        for name, settings in _merged(config).items()
        if settings["folds"]
    }


def ensemble_members(config: Mapping[str, Any]) -> list[str]:
    """The models the ensemble (``[default]`` without ``ensemble:``) averages, fold members
    in place of their experiment."""
    folded = fold_members(config)
    members = (config["ensemble"] or {}).get("members", [DEFAULT_EXPERIMENT])
    return [model for member in members for model in folded.get(member, [member])]


def evaluations(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every name rule ``evaluate`` scores, with its members, how their predictions combine
    (``single``, ``out_of_fold`` for an experiment with ``folds``, ``mean`` for the ensemble)
    and whether with flip TTA."""
    tta = config["eval"]["tta"]
    table = {
        name: {"members": [name], "combine": SINGLE, "tta": tta}
        for name in experiment_settings(config)
    }
    for name, members in fold_members(config).items():
        table[name] = {"members": members, "combine": OUT_OF_FOLD, "tta": tta}
    if config["ensemble"]:
        members, tta = ensemble_members(config), config["ensemble"]["tta"]
        table[ENSEMBLE] = {"members": members, "combine": MEAN, "tta": tta}
    return table


def _merged(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every experiment's merged train settings by name, ``default`` first, folds unexpanded."""
    overrides = {DEFAULT_EXPERIMENT: None, **(config["experiments"] or {})}
    return {name: merge_train(config["train"], changes) for name, changes in overrides.items()}


def merge_train(train: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``train`` with the keys of ``overrides`` replaced, each value whole (lists too)."""
    return copy.deepcopy({**train, **(overrides or {})})


def check_experiments(config: Mapping[str, Any], validator: Any) -> None:
    """Experiment names, their overrides, their merged settings (against the schema's ``train``
    part, then :func:`check_train`) and the ensemble's members."""
    train_schema = load_schema()["properties"]["train"]
    experiments = config["experiments"] or {}
    folders: dict[str, str] = {}
    members = (config["ensemble"] or {}).get("members", [])
    for member in members:
        if member != DEFAULT_EXPERIMENT:
            check_experiment_name(member, f"ensemble.members: {member!r}")
    for name, overrides in experiments.items():
        where = f"experiments.{name}"
        if name in (DEFAULT_EXPERIMENT, ENSEMBLE):
            raise ConfigError(
                f"{where}: the name {name!r} is reserved ({DEFAULT_EXPERIMENT}: the train: "
                f"block, {ENSEMBLE}: the ensemble); choose another"
            )
        check_experiment_name(name, where)
        if name.casefold() in folders:
            raise ConfigError(
                f"{where}: differs from experiments.{folders[name.casefold()]} only in case "
                "(one folder on case-insensitive file systems)"
            )
        folders[name.casefold()] = name
        for key, value in (overrides or {}).items():
            if key in SPLIT_KEYS:
                raise ConfigError(
                    f"{where}.{key} = {value!r}: an experiment cannot change the split "
                    f"({', '.join(SPLIT_KEYS)}); every experiment uses train:'s"
                )
            if key in RUN_ONLY_KEYS:
                raise ConfigError(
                    f"{where}.{key} = {value!r}: a setting of the whole workflow "
                    f"({', '.join(RUN_ONLY_KEYS)}); set it in train:"
                )
        merged = merge_train(config["train"], overrides)
        error = jsonschema.exceptions.best_match(validator.descend(merged, train_schema))
        if error is not None:
            raise ConfigError(_describe(error, where))
        check_train(merged, where=where)
    for member in members:
        if member != DEFAULT_EXPERIMENT and member not in experiments:
            raise ConfigError(
                f"ensemble.members: {member!r} is not an experiment; the experiments: "
                f"{', '.join([DEFAULT_EXPERIMENT, *experiments])}"
            )
    for name, names in fold_members(config).items():
        key = "train" if name == DEFAULT_EXPERIMENT else f"experiments.{name}"
        for member in names:
            check_experiment_name(member, f"{key}.folds = {len(names)}: fold member")
            if member.casefold() in folders:
                raise ConfigError(
                    f"experiments.{folders[member.casefold()]}: the name of fold member "
                    f"{member!r} of {key}.folds = {len(names)}; choose another name"
                )


def trained_groups(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every group of at least two configured categories (in ``categories:`` order): what a
    grouped experiment trains as one model each."""
    groups = {
        name: [category for category in config["categories"] if category in (members or ())]
        for name, members in (config["groups"] or {}).items()
    }
    return {name: categories for name, categories in groups.items() if len(categories) > 1}


def check_groups(config: Mapping[str, Any]) -> None:
    """Each group has a plain folder name apart from the categories', lists categories no other
    group does, and every grouped experiment's settings can train it as one model."""
    owners: dict[str, str] = {}
    folders: dict[str, str] = {}
    for name, members in (config["groups"] or {}).items():
        where = f"groups.{name}"
        check_experiment_name(name, where)
        if name.casefold().endswith("_labels"):
            what = "a category's name" if name in CATEGORIES else "ends in '_labels'"
            raise ConfigError(
                f"{where}: {what}; a group's folder sits beside the categories' under models/, "
                "so its name must not end in '_labels'; choose another (design, length, ...)"
            )
        if name.casefold() in folders:
            raise ConfigError(
                f"{where}: differs from groups.{folders[name.casefold()]} only in case (one "
                "folder on case-insensitive file systems)"
            )
        folders[name.casefold()] = name
        if not members:
            raise ConfigError(
                f"{where} = {members!r}: an empty group; list its categories or remove it"
            )
        for category in members:
            if category in owners:
                other = owners[category]
                where_else = "twice in it" if other == name else f"in groups.{other} too"
                raise ConfigError(
                    f"{where} = {members!r}: {category} is {where_else}; a category is in one "
                    "group at most"
                )
            owners[category] = name
    trained = trained_groups(config)
    for name, settings in _merged(config).items():
        if settings["grouped"]:
            key = "train" if name == DEFAULT_EXPERIMENT else f"experiments.{name}"
            for group, categories in trained.items():
                check_grouping(settings, key, f"groups.{group}", categories)


def check_experiment_name(name: object, where: str) -> None:
    """ConfigError, starting with ``where``, unless ``name`` is text that can be a folder under
    results/experiments/ and a Snakemake wildcard value."""
    if not isinstance(name, str):
        raise ConfigError(
            f"{where}: YAML reads this name as {_yaml_reading(name)}, not as text; quote it "
            "as written (e.g. '2': or 'yes':)"
        )
    if not EXPERIMENT_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: the name {name!r} is not a plain folder name (a letter or digit, "
            "then letters, digits, '_', '-' or '.')"
        )
    if len(name) > MAX_EXPERIMENT_NAME:
        raise ConfigError(
            f"{where}: the name has {len(name)} characters; at most {MAX_EXPERIMENT_NAME}"
        )
    if periodic := PERIODIC.search(name):
        repeats = len(periodic[0]) // len(periodic[1])
        raise ConfigError(
            f"{where}: the name ends in {periodic[1]!r} repeated {repeats} times, which "
            "Snakemake refuses as a runaway wildcard (PeriodicWildcardError, 20 repeats or "
            "more); choose another"
        )


def _yaml_reading(value: object) -> str:
    """What YAML made of a name that is not text, in words: ``the number 2``."""
    if value is None:
        return "null (an empty name, ~ or null)"
    kinds = ((bool, "the boolean"), ((int, float), "the number"), (datetime.date, "the date"))
    kind = next((word for types, word in kinds if isinstance(value, types)), "a YAML value")
    return f"{kind} {value}"


def _validator_class(schema: Mapping[str, Any]) -> type:
    """The schema's validator class, filling each missing property's default in, and whose
    ``integer`` is an int (JSON Schema's takes 2.0, which ``range`` and Keras refuse)."""
    validator_class = jsonschema.validators.validator_for(schema)
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, properties, instance, schema) -> Iterable:
        if validator.is_type(instance, "object"):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    def is_integer(checker: Any, instance: object) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    return jsonschema.validators.extend(
        validator_class,
        {"properties": properties},
        type_checker=validator_class.TYPE_CHECKER.redefine("integer", is_integer),
    )


def _describe(error: jsonschema.ValidationError, where: str = "") -> str:
    """``key = value: problem`` for a schema error; ``where`` names the checked mapping."""
    parts = (f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    key = (where + "".join(parts)).lstrip(".")
    if "propertyNames" in error.absolute_schema_path:
        return f"{key}.{error.instance}: not a known key; {error.message}"
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        name = next(name for name in error.instance if name not in known)
        return (
            f"{key + '.' if key else ''}{name} = {error.instance[name]!r}: not a known key; "
            f"{did_you_mean(name, known)}known keys: {', '.join(known)}"
        )
    if error.validator == "enum":
        choices = ", ".join(map(str, error.validator_value))
        hint = did_you_mean(error.instance, error.validator_value)
        return f"{key} = {error.instance!r}: {hint}not one of: {choices}"
    if error.validator == "required":
        name = next(name for name in error.validator_value if name not in error.instance)
        return f"{key + '.' if key else ''}{name}: missing; it has no default"
    value = error.instance
    whole = isinstance(value, float) and value.is_integer()
    if whole and error.validator == "type" and "integer" in error.validator_value:  # str or list
        return f"{key} = {value!r}: must be a whole number; write {int(value)}, not {value!r}"
    return f"{key or 'config'} = {error.instance!r}: {error.message}"
