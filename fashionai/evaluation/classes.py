"""Regrouped classes of a category and how they map onto the official classes.

A regrouped class (a *group*) is a dict ``{"index", "slug", "name", "members"}`` as written to
``results/regrouped/{category}/labels.json``; ``members`` are official display names of the
category. A class dropped by the configuration belongs to no group. Column ``g`` of a model's
probability matrix is the group whose ``index`` is ``g``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fashionai.attributes import classes as official_classes


def sorted_groups(groups: list[dict[str, Any]], category: str) -> list[dict[str, Any]]:
    """``groups`` sorted by ``index``; ValueError unless indices are 0..G-1 and every member is
    an official class of ``category`` that belongs to one group only."""
    official = official_classes(category)
    ordered = sorted(groups, key=lambda group: int(group["index"]))
    indices = [int(group["index"]) for group in ordered]
    if indices != list(range(len(ordered))):
        raise ValueError(f"{category}: class indices must be 0..{len(ordered) - 1}, got {indices}")
    seen: dict[str, str] = {}
    for group in ordered:
        if not group["members"]:
            raise ValueError(f"{category}: class {group['name']!r} has no members")
        for member in group["members"]:
            if member not in official:
                raise ValueError(
                    f"{category}: member {member!r} of class {group['name']!r} is not an "
                    f"official class; known: {', '.join(official)}"
                )
            if member in seen:
                raise ValueError(
                    f"{category}: {member!r} belongs to both {seen[member]!r} and {group['name']!r}"
                )
            seen[member] = group["name"]
    return ordered


def class_names(groups: list[dict[str, Any]]) -> list[str]:
    """Display names of the groups in index order."""
    return [group["name"] for group in sorted(groups, key=lambda group: int(group["index"]))]


def membership(groups: list[dict[str, Any]], category: str) -> np.ndarray:
    """Boolean matrix (K_official x G): ``[k, g]`` is True when official class ``k`` is a member
    of group ``g``. The row of a dropped class is all False."""
    official = official_classes(category)
    ordered = sorted_groups(groups, category)
    position = {name: k for k, name in enumerate(official)}
    matrix = np.zeros((len(official), len(ordered)), dtype=bool)
    for g, group in enumerate(ordered):
        matrix[[position[m] for m in group["members"]], g] = True
    return matrix
