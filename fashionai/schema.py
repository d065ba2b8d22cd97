"""The configuration schema (``schemas/config.schema.yaml``): each key's type, range and
default, the one place a default is written, and the error a configuration value that cannot
work raises. Cheap to import: the workflow reads it at parse time."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the value."""


@functools.cache
def load_schema() -> dict[str, Any]:
    """The configuration schema (schemas/config.schema.yaml)."""
    with SCHEMA_FILE.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def schema_defaults(section: str) -> dict[str, Any]:
    """The schema's default of every key of a section such as ``train``."""
    properties = load_schema()["properties"][section]["properties"]
    return {
        key: copy.deepcopy(spec["default"]) for key, spec in properties.items() if "default" in spec
    }
