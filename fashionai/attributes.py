"""The eight FashionAI attributes, their classes in official order, and folder-safe slugs.

Code position ``i`` of an annotation belongs to class ``i`` of its attribute.
"""

from __future__ import annotations

import re

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "coat_length_labels": (
        "Invisible", "High Waist Length", "Regular Length", "Long Length",
        "Micro Length", "Knee Length", "Midi Length", "Ankle&Floor Length",
    ),
    "collar_design_labels": (
        "Invisible", "Shirt Collar", "Peter Pan", "Puritan Collar", "Rib Collar",
    ),
    "lapel_design_labels": (
        "Invisible", "Notched", "Collarless", "Shawl Collar", "Plus Size Shawl",
    ),
    "neck_design_labels": (
        "Invisible", "Turtle Neck", "Ruffle Semi-High Collar", "Low Turtle Neck", "Draped Collar",
    ),
    "neckline_design_labels": (
        "Invisible", "Strapless Neck", "Deep V Neckline", "Straight Neck", "V Neckline",
        "Square Neckline", "Off Shoulder", "Round Neckline", "Sweat Heart Neck",
        "One Shoulder Neckline",
    ),
    "pant_length_labels": (
        "Invisible", "Short Pant", "Mid Length", "3/4 Length", "Cropped Pant", "Full Length",
    ),
    "skirt_length_labels": (
        "Invisible", "Short Length", "Knee Length", "Midi Length", "Ankle Length", "Floor Length",
    ),
    "sleeve_length_labels": (
        "Invisible", "Sleeveless", "Cup Sleeves", "Short Sleeves", "Elbow Sleeves",
        "3/4 Sleeves", "Wrist Length", "Long Sleeves", "Extra Long Sleeves",
    ),
}  # fmt: skip

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


def class_slugs(category: str) -> dict[str, str]:
    """Display name -> slug for every class of ``category``, in official order."""
    return {name: slugify(name) for name in classes(category)}


# Slugs must be unique within a category, or two labels would share a folder.
for _category, _names in ATTRIBUTES.items():
    assert len({slugify(n) for n in _names}) == len(_names), _category
