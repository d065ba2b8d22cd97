"""A model's regrouped classes (``classes`` of its ``training.json``: column ``g`` of its
probabilities is class ``g``) and its category's official classes, which a dropped one lacks."""

from __future__ import annotations

from typing import Any

import numpy as np

from fashionai.attributes import classes as official_classes


def membership(groups: list[dict[str, Any]], category: str) -> np.ndarray:
    """Boolean matrix (K official x G groups): ``[k, g]`` is True when official class ``k``
    is a member of group ``g``; the row of a dropped class is all False. ValueError naming a
    member that is not an official class of ``category``, or a class without members."""
    official = official_classes(category)
    matrix = np.zeros((len(official), len(groups)), dtype=bool)
    for g, group in enumerate(groups):
        if not group["members"]:
            raise ValueError(f"{category}: class {group['name']!r} has no members")
        for member in group["members"]:
            if member not in official:
                raise ValueError(
                    f"{category}: member {member!r} of class {group['name']!r} is not an "
                    f"official class; known: {', '.join(official)}"
                )
            matrix[official.index(member), g] = True
    return matrix


def expand_to_official(
    probabilities: np.ndarray, groups: list[dict[str, Any]], category: str
) -> np.ndarray:
    """Probabilities over the regrouped classes (n, G) -> over the official classes (n, K), a
    group's shared equally by its members, 0 for a dropped class; a NaN row (no prediction)
    becomes uniform over the kept classes."""
    member = membership(groups, category)
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(groups):
        raise ValueError(
            f"{category}: probabilities of shape {probs.shape} for {len(groups)} classes"
        )
    expanded = probs @ (member / member.sum(axis=0)).T
    kept = member.any(axis=1)
    expanded[np.isnan(expanded).any(axis=1)] = kept / kept.sum()
    return expanded
