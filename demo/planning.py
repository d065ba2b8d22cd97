"""Planning: every annotation row and image of the synthetic dataset, decided before any pixel
is drawn (which archive, image name, code, class drawn, and the faulty or odd rows).

Every draw comes from one ``rng`` in a fixed order, so the same seed gives the same plan.
At difficulty > 0 some images show the class whose drawing is nearest to their labelled one
(an ambiguous photo), and ``m`` ('maybe') codes go preferably to that nearest class, as
annotators mark the ambiguous neighbour.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from demo.drawing import nearest_classes
from fashionai.attributes import ATTRIBUTES

TRAIN_ARCHIVES = ("round1", "warmup", "round2")
_SKIRT = "skirt_length_labels"
_UNKNOWN_ATTRIBUTE = "shoe_style_labels"
_MAYBE_FRACTION = 0.2
_AMBIGUOUS_FRACTION = 0.15  # at difficulty 1: rows whose image shows the nearest class


@dataclass
class Row:
    """One annotation row and the image it names."""

    archive: str  # key of ARCHIVE_NAMES
    attribute: str  # as written in the annotation
    name: str  # 32-hex image name
    code: str
    class_index: int
    expected: str  # "used", "duplicate", "question" or the reason the row must be rejected
    image: str = "jpeg"  # jpeg | png | gray | empty | truncated | missing
    render_class: int = -1  # the class the image shows; default: the row's class

    @property
    def image_path(self) -> str:
        return f"Images/{self.attribute}/{self.name}.jpg"

    @property
    def sidecar_path(self) -> str:
        """A macOS ``._`` sidecar file beside the image."""
        return f"Images/{self.attribute}/._{self.name}.jpg"

    def line(self, code: str | None = None) -> str:
        """The annotation line, with ``code`` instead of the row's own if given."""
        return f"{self.image_path},{self.attribute},{self.code if code is None else code}"

    def drawn(self) -> tuple[str, int]:
        """The attribute and class the image shows (a skirt for an unknown attribute)."""
        attribute = self.attribute if self.attribute in ATTRIBUTES else _SKIRT
        return attribute, self.render_class if self.render_class >= 0 else self.class_index


def _hex_name(seed: int, *parts: object) -> str:
    return hashlib.md5("/".join(map(str, (seed, *parts))).encode()).hexdigest()


def _nearest(attribute: str, difficulty: float) -> tuple[int, ...] | None:
    """The nearest class of each class, or None on the easy set (difficulty 0)."""
    return nearest_classes(attribute) if difficulty > 0 else None


def _code(
    n_classes: int,
    k: int,
    rng: np.random.Generator,
    nearest: int | None = None,
    ambiguous: bool = False,
) -> str:
    """``y`` at ``k``, ``n`` elsewhere, and on about 20 % of rows one or two ``m``.

    With ``nearest`` (the class drawn closest to ``k``) the first ``m`` goes to it, any second
    one to another class; an ``ambiguous`` row always gets them.
    """
    letters = ["n"] * n_classes
    letters[k] = "y"
    if ambiguous or rng.random() < _MAYBE_FRACTION:
        others = [i for i in range(n_classes) if i != k]
        count = int(rng.integers(1, 3))
        if nearest is None:
            maybe = rng.choice(others, size=count, replace=False)
        else:
            rest = [i for i in others if i != nearest]
            maybe = [nearest, *rng.choice(rest, size=count - 1, replace=False)]
        for i in maybe:
            letters[i] = "m"
    return "".join(letters)


def _archive_of(i: int, n: int, attribute: str) -> str:
    """The archive of a class's ``i``-th of ``n`` images: the first half (rounded up) in round 1;
    for skirts half of the rest (rounded up) in the warm-up archive; the rest in round 2."""
    round1 = (n + 1) // 2
    warmup = (n - round1 + 1) // 2 if attribute == _SKIRT else 0
    return "round1" if i < round1 else "warmup" if i < round1 + warmup else "round2"


def _regular_rows(
    seed: int, images_per_class: int, difficulty: float, rng: np.random.Generator
) -> list[Row]:
    """Every class's images; at difficulty > 0 some show the nearest class (ambiguous)."""
    rows = []
    for attribute, names in ATTRIBUTES.items():
        nearest = _nearest(attribute, difficulty)
        for k in range(len(names)):
            for i in range(images_per_class):
                ambiguous = nearest is not None and rng.random() < _AMBIGUOUS_FRACTION * difficulty
                neighbour = None if nearest is None else nearest[k]
                code = _code(len(names), k, rng, neighbour, ambiguous)
                archive = _archive_of(i, images_per_class, attribute)
                name = _hex_name(seed, attribute, k, i)
                render_class = neighbour if ambiguous else -1
                rows.append(Row(archive, attribute, name, code, k, "used", "jpeg", render_class))
    return rows


# One or two rows of each kind of bad input, plus valid oddities (PNG, grayscale, duplicates), in
# file order per archive: archive, attribute, image tag, code, class index (-1: none), expected
# outcome, image kind, class drawn (-1: the class index). The image name comes from the tag, so
# a tag used twice is one image listed twice.
_FAULTS = (
    ("round1", "collar_design_labels", "short", "nyn", -1, "wrong_length", "jpeg", 1),
    ("round1", "neckline_design_labels", "no_y1", "nnnnmnnnnn", -1, "no_y", "jpeg", 4),
    ("round1", _UNKNOWN_ATTRIBUTE, "unknown", "nynnn", -1, "unknown_attribute", "jpeg", 1),
    ("round1", "coat_length_labels", "missing1", "nnynnnnn", 2, "image_missing", "missing", -1),
    ("round1", "lapel_design_labels", "empty", "nynnn", 1, "image_unreadable", "empty", -1),
    ("round1", "pant_length_labels", "png", "nnnynn", 3, "used", "png", -1),
    ("round1", "sleeve_length_labels", "duplicate", "nnnnymnnn", 4, "used", "jpeg", -1),
    ("round1", "neck_design_labels", "conflict", "nynnn", 1, "conflicting_codes", "jpeg", 1),
    ("warmup", _SKIRT, "two_y_warmup", "nyynnn", -1, "multiple_y", "jpeg", 1),
    ("round2", "pant_length_labels", "long", "nnnnnyn", -1, "wrong_length", "jpeg", 5),
    ("round2", "coat_length_labels", "two_y", "nynnynnn", -1, "multiple_y", "jpeg", 1),
    ("round2", "sleeve_length_labels", "no_y2", "nnmnnnnmn", -1, "no_y", "jpeg", 2),
    ("round2", "collar_design_labels", "missing2", "nnnyn", 3, "image_missing", "missing", -1),
    ("round2", "neckline_design_labels", "truncated", "nnnnnnnynn", 7, "image_unreadable")
    + ("truncated", -1),
    ("round2", "collar_design_labels", "gray", "nnynm", 2, "used", "gray", -1),
    ("round2", "sleeve_length_labels", "duplicate", "nnnnymnnn", 4, "duplicate", "jpeg", -1),
    ("round2", "neck_design_labels", "conflict", "nnnyn", 3, "conflicting_codes", "jpeg", 1),
)


def _fault_rows(seed: int) -> list[Row]:
    return [
        Row(archive, attribute, _hex_name(seed, "fault", tag), code, k, expected, image, drawn)
        for archive, attribute, tag, code, k, expected, image, drawn in _FAULTS
    ]


def plan_rows(
    seed: int, images_per_class: int, faults: bool, difficulty: float, rng: np.random.Generator
) -> dict[str, list[Row]]:
    """The annotation rows of each training archive, in file order.

    Every class of every attribute gets ``images_per_class`` regular images (see
    :func:`_archive_of`); with ``faults`` the rows of ``_FAULTS`` are inserted at random places.
    """
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in _regular_rows(seed, images_per_class, difficulty, rng):
        groups.setdefault((row.archive, row.attribute), []).append(row)
    fault_rows = _fault_rows(seed) if faults else []
    plan: dict[str, list[Row]] = {}
    for archive in TRAIN_ARCHIVES:
        rows = []
        for attribute in ATTRIBUTES:  # grouped by attribute, shuffled within
            group = groups.get((archive, attribute), [])
            rows.extend(group[i] for i in rng.permutation(len(group)))
        for row in (r for r in fault_rows if r.archive == archive):
            rows.insert(int(rng.integers(0, len(rows) + 1)), row)
        plan[archive] = rows
    names = [r.name for rows in plan.values() for r in rows if r.expected != "duplicate"]
    assert len(names) - len(set(names)) == (1 if faults else 0), "image name collision"
    return plan


def question_rows(
    seed: int, per_attribute: int, difficulty: float, rng: np.random.Generator
) -> list[Row]:
    """The test questions: each class once, then random classes, ``per_attribute`` per
    attribute; their codes are the true answers."""
    rows = []
    for attribute, names in ATTRIBUTES.items():
        nearest = _nearest(attribute, difficulty)
        for i in range(per_attribute):
            k = int(rng.integers(len(names))) if i >= len(names) else i
            name = _hex_name(seed, "question", attribute, i)
            code = _code(len(names), k, rng, None if nearest is None else nearest[k])
            rows.append(Row("questions", attribute, name, code, k, "question"))
    return rows
