"""The configuration schema (``schemas/config.schema.yaml``, the one place a default is
written), the error a bad configuration value raises and its hint for a misspelled name."""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Iterable
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


def did_you_mean(name: object, names: Iterable[object], n: int = 1, cutoff: float = 0.6) -> str:
    """``did you mean 'x'? `` (or ``'x' or 'y'``) for the ``n`` names closest to ``name``,
    or nothing when none is close enough."""
    close = difflib.get_close_matches(str(name), [str(m) for m in names], n=n, cutoff=cutoff)
    return f"did you mean {' or '.join(map(repr, close))}? " if close else ""
