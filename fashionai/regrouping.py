"""Plans that merge labels of a category into others and drop labels, from the configuration.

A spec is ``{"merge": {from_name: into_name}, "drop": [name]}`` in official display names (checked
here); merges chain (A->B, B->C puts A into C); groups and their members keep the official order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fashionai.attributes import ATTRIBUTES, classes, slugify


@dataclass(frozen=True)
class LabelGroup:
    """One class after regrouping: its folder slug, display name and official members."""

    slug: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class RegroupPlan:
    """The classes of ``category`` after regrouping, and the official labels left out."""

    category: str
    groups: tuple[LabelGroup, ...]
    dropped: tuple[str, ...]

    def target_of(self, member_name: str) -> LabelGroup | None:
        """The group an official label (or a group's own name) goes to; None if dropped."""
        for group in self.groups:
            if member_name in group.members or member_name == group.name:
                return group
        if member_name in self.dropped:
            return None
        raise ValueError(
            f"regroup of {self.category}: {member_name!r} is not a class of {self.category}; "
            f"valid names: {', '.join(ATTRIBUTES[self.category])}"
        )


def plan_regroup(category: str, spec: Mapping | None) -> RegroupPlan:
    """Build and check the plan for ``category``; ValueError names the category and the name."""
    names = classes(category)
    where = f"regroup of {category}"
    valid = f"valid names: {', '.join(names)}"
    merge = (spec or {}).get("merge") or {}
    drop = (spec or {}).get("drop") or []

    def check(name: str, role: str) -> str:
        if name not in names:
            raise ValueError(f"{where}: {role} {name!r} is not a class of {category}; {valid}")
        return name

    merge = {check(a, "merge from"): check(b, "merge into") for a, b in merge.items()}
    dropped = {check(name, "drop") for name in drop}
    for name in merge:
        if name in dropped:
            raise ValueError(f"{where}: {name!r} is both merged and dropped; {valid}")

    def resolve(name: str) -> str:
        seen = [name]
        while name in merge:
            name = merge[name]
            if name in seen:
                chain = " -> ".join([*seen, name])
                raise ValueError(f"{where}: merging {seen[0]!r} runs in a cycle: {chain}; {valid}")
            seen.append(name)
        return name

    target = {name: resolve(name) for name in names if name not in dropped}
    for name, into in target.items():
        if into in dropped:
            raise ValueError(
                f"{where}: {name!r} is merged into {into!r}, which is dropped; {valid}"
            )
    groups = tuple(
        LabelGroup(slugify(group), group, tuple(n for n in names if target.get(n) == group))
        for group in names
        if target.get(group) == group
    )
    if not groups:
        raise ValueError(f"{where}: every class is dropped; keep at least one; {valid}")
    return RegroupPlan(category, groups, tuple(n for n in names if n in dropped))
