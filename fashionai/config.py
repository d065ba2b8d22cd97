"""Checks of the workflow configuration that a JSON schema cannot express.

The schema (schemas/config.schema.yaml) checks types, ranges and names; this module checks what
depends on the files and on the class table. Both run when the workflow starts, before any job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fashionai.archives import archive_id
from fashionai.regrouping import validate_regroup_config


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the value."""


def _produced_by_workflow(path: str, config: Mapping) -> bool:
    """True for archives the workflow generates itself (the synthetic dataset)."""
    synthetic_dir = (config.get("synthetic") or {}).get("out_dir", "resources/synthetic")
    return Path(path).parent == Path(synthetic_dir)


def check_config(config: Mapping, workdir: Path) -> None:
    """Raise ConfigError naming the key and value of the first problem found."""
    archives = config["archives"]
    ids: dict[str, str] = {}
    for index, path in enumerate(archives):
        key = f"archives[{index}]"
        if not (workdir / path).is_file() and not _produced_by_workflow(path, config):
            raise ConfigError(f"{key}: archive {path!r} does not exist (relative to {workdir})")
        identifier = archive_id(path)
        if identifier in ids:
            raise ConfigError(
                f"{key}: archive {path!r} has the same name as {ids[identifier]!r}; "
                "each archive needs a distinct file name"
            )
        ids[identifier] = path
    questions = config.get("questions")
    if (
        questions
        and not (workdir / questions).is_file()
        and not _produced_by_workflow(questions, config)
    ):
        raise ConfigError(f"questions: archive {questions!r} does not exist")
    try:
        validate_regroup_config(config.get("regroup") or {}, config["categories"])
    except (KeyError, ValueError) as error:
        raise ConfigError(f"regroup: {error}") from None
    train = config["train"]
    weights = train.get("weights")
    if weights not in (None, "imagenet") and not (workdir / weights).is_file():
        raise ConfigError(f"train.weights: weights file {weights!r} does not exist")
    if train.get("backbone") == "SmallCNN" and weights == "imagenet":
        raise ConfigError(
            "train.weights: 'imagenet' weights do not exist for train.backbone 'SmallCNN'; "
            "use null or a local weights file"
        )
