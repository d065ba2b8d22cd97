"""The eight FashionAI attributes, their classes in official order, and folder-safe slugs.

Code position ``i`` of an annotation belongs to class ``i`` of its attribute.
"""

from __future__ import annotations

import re

_CLASSES = {  # comma-separated: no class name holds ", "
    "coat_length_labels": "Invisible, High Waist Length, Regular Length, Long Length, "
    "Micro Length, Knee Length, Midi Length, Ankle&Floor Length",
    "collar_design_labels": "Invisible, Shirt Collar, Peter Pan, Puritan Collar, Rib Collar",
    "lapel_design_labels": "Invisible, Notched, Collarless, Shawl Collar, Plus Size Shawl",
    "neck_design_labels": "Invisible, Turtle Neck, Ruffle Semi-High Collar, Low Turtle Neck, "
    "Draped Collar",
    "neckline_design_labels": "Invisible, Strapless Neck, Deep V Neckline, Straight Neck, "
    "V Neckline, Square Neckline, Off Shoulder, Round Neckline, Sweat Heart Neck, "
    "One Shoulder Neckline",
    "pant_length_labels": "Invisible, Short Pant, Mid Length, 3/4 Length, Cropped Pant, "
    "Full Length",
    "skirt_length_labels": "Invisible, Short Length, Knee Length, Midi Length, Ankle Length, "
    "Floor Length",
    "sleeve_length_labels": "Invisible, Sleeveless, Cup Sleeves, Short Sleeves, Elbow Sleeves, "
    "3/4 Sleeves, Wrist Length, Long Sleeves, Extra Long Sleeves",
}
ATTRIBUTES: dict[str, tuple[str, ...]] = {k: tuple(v.split(", ")) for k, v in _CLASSES.items()}

CATEGORIES: tuple[str, ...] = tuple(ATTRIBUTES)


def slugify(name: str) -> str:
    """A filesystem-safe folder name for a class: ``"3/4 Length"`` -> ``"3_4_length"``."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"label name {name!r} has no characters usable in a folder name")
    return slug


def classes(category: str) -> tuple[str, ...]:
    """The official class names of ``category``; a clear error for an unknown key."""
    try:
        return ATTRIBUTES[category]
    except KeyError:
        known = ", ".join(CATEGORIES)
        raise KeyError(f"unknown attribute {category!r}; known attributes: {known}") from None


# Slugs must be unique within a category, or two labels would share a folder.
for _category, _names in ATTRIBUTES.items():
    assert len({slugify(n) for n in _names}) == len(_names), _category


def pad_anchor(resize: str, category: str) -> str | None:
    """How images of ``category`` become square under ``train.resize``: None for ``stretch``;
    for ``pad``, the edge where a wide image keeps its content: ``bottom`` for the
    ``*_length_labels`` (hems sit at the bottom), ``top`` for the ``*_design_labels``."""
    if resize == "stretch":
        return None
    return "bottom" if category.endswith("_length_labels") else "top"
