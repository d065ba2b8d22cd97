"""A synthetic FashionAI Attributes dataset in the layout of the real archives.

The real data is never on our machines, so every demo and test runs on what this module writes:
the round-1 tar, the warm-up tar (skirt only), the round-2 zip and a test-question tar, with the
member names, annotation format and quirks described in ``fashionai-format.md``. Each class draws
a garment whose length or neck detail depends on the class, in a class-specific colour and
pattern, with random jitter, so a small CNN can learn the classes at 32-64 px.

``difficulty`` (0 to 1) makes the classes less separable, for comparing techniques on a set
where one small model stays well below perfect: colours and patterns stop following the class,
lengths vary within a class, neck details fade towards the garment colour, the garment shifts
and scales more, and clutter and noise grow. Some images show the class whose drawing is nearest
to their labelled one (an ambiguous photo), and ``m`` ('maybe') codes go preferably to that
nearest class, as annotators mark the ambiguous neighbour. Difficulty 0 is the easy set, byte
for byte the same for the same seed.

With ``faults=True`` a few annotation rows are broken in the ways the pipeline must reject, and
``manifest.csv`` says for every annotation row what the pipeline should do with it.
"""

from __future__ import annotations

import argparse
import colorsys
import hashlib
import io
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from demo.archive_names import ARCHIVE_NAMES
from fashionai.attributes import ATTRIBUTES, classes

# The folder each archive extracts to, and the annotation file inside it.
ARCHIVE_ROOTS: dict[str, str] = {
    "round1": "base",
    "warmup": "web",
    "round2": "train",
    "questions": "rank",
}
ANNOTATION_FILES: dict[str, str] = {
    "round1": "base/Annotations/label.csv",
    "warmup": "web/Annotations/skirt_length_labels.csv",
    "round2": "train/Annotations/label.csv",
    "questions": "rank/Tests/question.csv",
}
MANIFEST_COLUMNS: tuple[str, ...] = (
    "archive",  # archive file name
    "image_path",  # column 1 of the annotation row, as written
    "attribute",  # column 2, as written
    "code",  # column 3, as written
    "class_index",  # the class the code means (position of its single y), else -1
    "expected",  # "used", "duplicate" or the reason the row must be rejected
    "annotation",  # the annotation file's member name inside the archive
    "line",  # 1-based line of the row in that file
)
UNKNOWN_ATTRIBUTE = "shoe_style_labels"
SKIRT = "skirt_length_labels"

_TRAIN_ARCHIVES = ("round1", "warmup", "round2")
_MTIME = 1519257600  # 2018-02-22, fixed so that the same seed gives the same bytes
_ZIP_DATE = (2018, 4, 18, 0, 0, 0)
_JPEG_QUALITY = 90
_MAYBE_FRACTION = 0.2
_AMBIGUOUS_FRACTION = 0.15  # at difficulty 1: rows whose image shows the nearest class
# macOS AppleDouble header: what the real ._*.jpg sidecar files start with.
_SIDECAR_BYTES = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(50)


# ---------------------------------------------------------------------------------------------
# Drawing


@dataclass(frozen=True)
class _Style:
    hue: float
    value: float  # brightness of the garment colour, 0-255
    pattern: str
    pattern_dark: bool  # pattern drawn darker (True) or lighter (False) than the garment


_PATTERNS = ("solid", "hstripes", "dots", "vstripes", "checks", "diagonal", "grid")
_SKIN = np.array([226.0, 189.0, 160.0], dtype=np.float32)
_TOP = np.array([205.0, 205.0, 200.0], dtype=np.float32)  # neutral top worn with skirts/pants
_ACCENT = np.array([245.0, 243.0, 235.0], dtype=np.float32)  # collars, lapels

# Garment lengths per class (in figure heights); index 0 (Invisible) is drawn zoomed in instead.
_SKIRT_LENGTH = (0.0, 0.15, 0.27, 0.39, 0.50, 0.57)
_PANT_LENGTH = (0.0, 0.11, 0.21, 0.32, 0.42, 0.54)
_COAT_LENGTH = (0.0, 0.30, 0.40, 0.50, 0.22, 0.60, 0.70, 0.81)
_SLEEVE_LENGTH = (0.0, 0.0, 0.05, 0.11, 0.19, 0.27, 0.35, 0.41, 0.48)


@lru_cache(maxsize=64)
def _style(attribute: str, class_index: int) -> _Style:
    """The class's colour and pattern: hues evenly spread within an attribute."""
    names = classes(attribute)
    offset = list(ATTRIBUTES).index(attribute)
    hue = (offset * 0.071 + class_index / len(names)) % 1.0
    value = 0.85 if class_index % 2 == 0 else 0.7
    pattern = _PATTERNS[(class_index + offset) % len(_PATTERNS)]
    return _Style(hue, 255.0 * value, pattern, pattern_dark=(class_index + offset) % 3 != 0)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1] (x, y), shared read-only between images."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    gy, gx = np.meshgrid(axis, axis, indexing="ij")
    gx.flags.writeable = False
    gy.flags.writeable = False
    return gx, gy


def _pattern_mask(pattern: str, x: np.ndarray, y: np.ndarray, period: float) -> np.ndarray | None:
    if pattern == "solid":
        return None
    u, v = x / period, y / period
    if pattern == "hstripes":
        return (v % 1.0) < 0.5
    if pattern == "vstripes":
        return (u % 1.0) < 0.5
    if pattern == "diagonal":
        return ((u + v) % 1.0) < 0.5
    if pattern == "checks":
        return ((u % 1.0) < 0.5) ^ ((v % 1.0) < 0.5)
    if pattern == "grid":
        return ((u % 1.0) < 0.25) | ((v % 1.0) < 0.25)
    if pattern == "dots":
        return ((u % 1.0) - 0.5) ** 2 + ((v % 1.0) - 0.5) ** 2 < 0.09
    raise ValueError(f"unknown pattern {pattern!r}")


def _trapezoid(
    ax: np.ndarray, y: np.ndarray, top: float, bottom: float, half_top: float, half_bottom: float
) -> np.ndarray:
    """A shape symmetric about x = 0, from ``top`` to ``bottom``, widening linearly."""
    t = (y - top) * (1.0 / max(bottom - top, 1e-6))
    return (y >= top) & (y <= bottom) & (ax <= half_top + (half_bottom - half_top) * t)


def _arms(ax: np.ndarray, y: np.ndarray, length: float, half: float = 0.038) -> np.ndarray:
    """Both arms (or sleeves) from the shoulder down to ``length``, slanting outwards."""
    centre = 0.18 + 0.22 * (y - 0.15)
    return (np.abs(ax - centre) <= half) & (y >= 0.15) & (y <= 0.15 + length)


def _disk(x: np.ndarray, y: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


@dataclass
class _Canvas:
    """Float RGB canvas, the garment coordinates of the current image and its colours.

    ``length`` is added to the class's garment or sleeve length (a length within a class
    varies at difficulty > 0); ``accent`` colours collars, lapels and the shirt underneath.
    """

    pixels: np.ndarray
    x: np.ndarray
    y: np.ndarray
    pattern: np.ndarray | None
    colour: np.ndarray
    pattern_colour: np.ndarray
    accent: np.ndarray
    length: float = 0.0

    @property
    def ax(self) -> np.ndarray:
        return np.abs(self.x)

    def fill(self, mask: np.ndarray, colour: np.ndarray) -> None:
        self.pixels[mask] = colour

    def garment(self, mask: np.ndarray) -> None:
        self.pixels[mask] = self.colour
        if self.pattern is not None:
            self.pixels[mask & self.pattern] = self.pattern_colour


def _draw_body(c: _Canvas, arms: float = 0.42) -> None:
    """Head, arms and legs in skin colour; garments are drawn over them."""
    x, y, ax = c.x, c.y, c.ax
    c.fill(_disk(x, y, 0.0, 0.065, 0.055) | ((ax <= 0.03) & (y >= 0.1) & (y <= 0.16)), _SKIN)
    c.fill(_arms(ax, y, arms, half=0.03), _SKIN)
    c.fill((ax >= 0.025) & (ax <= 0.085) & (y >= 0.42) & (y <= 0.98), _SKIN)


def _draw_skirt(c: _Canvas, k: int) -> None:
    _draw_body(c)
    c.fill(_trapezoid(c.ax, c.y, 0.14, 0.43, 0.15, 0.14) | _arms(c.ax, c.y, 0.08), _TOP)
    length = _SKIRT_LENGTH[k] + c.length
    c.garment(_trapezoid(c.ax, c.y, 0.41, 0.41 + length, 0.135, 0.135 + 0.35 * length))


def _draw_pant(c: _Canvas, k: int) -> None:
    _draw_body(c)
    c.fill(_trapezoid(c.ax, c.y, 0.14, 0.43, 0.15, 0.14) | _arms(c.ax, c.y, 0.08), _TOP)
    length = _PANT_LENGTH[k] + c.length
    hips = _trapezoid(c.ax, c.y, 0.41, 0.49, 0.14, 0.15)
    legs = (c.ax >= 0.012) & (c.ax <= 0.135 + 0.04 * (c.y - 0.41))
    c.garment(hips | (legs & (c.y >= 0.41) & (c.y <= 0.41 + length)))


def _draw_coat(c: _Canvas, k: int) -> None:
    _draw_body(c)
    length = _COAT_LENGTH[k] + c.length
    c.garment(_trapezoid(c.ax, c.y, 0.14, 0.14 + length, 0.16, 0.16 + 0.12 * length))
    c.garment(_arms(c.ax, c.y, 0.4))
    c.fill((c.ax <= 0.008) & (c.y >= 0.16) & (c.y <= 0.14 + length), c.pattern_colour)  # opening


def _draw_sleeve(c: _Canvas, k: int) -> None:
    _draw_body(c)
    c.garment(_trapezoid(c.ax, c.y, 0.14, 0.62, 0.15, 0.17))
    if _SLEEVE_LENGTH[k] > 0:
        c.garment(_arms(c.ax, c.y, _SLEEVE_LENGTH[k] + c.length, half=0.045))


def _top_mask(c: _Canvas, top: float = 0.13, sleeves: bool = True) -> np.ndarray:
    """A long-sleeved (or sleeveless) top from ``top`` down to the hips."""
    mask = _trapezoid(c.ax, c.y, top, 0.72, 0.16, 0.18)
    return mask | (_arms(c.ax, c.y, 0.37) & (c.y >= top)) if sleeves else mask


def _draw_top(c: _Canvas) -> None:
    """Body and a long-sleeved top whose neck area the design attributes then change."""
    _draw_body(c)
    c.garment(_top_mask(c))


def _neckline_cut(c: _Canvas, k: int) -> np.ndarray:
    x, y, ax = c.x, c.y, c.ax
    if k == 2:  # deep V
        return (y - 0.13) < 0.32 * (1.0 - ax / 0.1)
    if k == 3:  # straight
        return (ax < 0.11) & (y < 0.17)
    if k == 4:  # V
        return (y - 0.13) < 0.15 * (1.0 - ax / 0.08)
    if k == 5:  # square
        return (ax < 0.075) & (y < 0.24)
    if k == 7:  # round
        return _disk(x, y, 0.0, 0.13, 0.085)
    if k == 8:  # sweetheart
        hearts = _disk(x, y, -0.04, 0.2, 0.045) | _disk(x, y, 0.04, 0.2, 0.045)
        return hearts | ((ax < 0.085) & (y < 0.2))
    if k == 9:  # one shoulder
        return (x > -0.03) & (y < 0.17 + 0.55 * (x + 0.03))
    raise ValueError(k)


def _draw_neckline(c: _Canvas, k: int) -> None:
    _draw_body(c)
    if k == 1:  # strapless: bare shoulders and arms
        c.garment(_top_mask(c, top=0.27, sleeves=False))
    elif k == 6:  # off shoulder: sleeves start below the shoulder
        c.garment(_top_mask(c, top=0.21))
    else:
        top = _top_mask(c)
        c.garment(top)
        c.fill(top & _neckline_cut(c, k), _SKIN)


def _draw_collar(c: _Canvas, k: int) -> None:
    _draw_top(c)
    x, y, ax = c.x, c.y, c.ax
    if k == 1:  # shirt collar: two pointed flaps
        c.fill((y >= 0.11) & (y <= 0.25 - 0.9 * ax) & (y >= 0.11 + 0.9 * ax), c.accent)
        c.fill(
            (y >= 0.11) & (y <= 0.25 - 0.9 * ax) & (y >= 0.11 + 0.9 * ax) & (ax < 0.01), c.colour
        )
    elif k == 2:  # Peter Pan: two round flaps
        c.fill(_disk(x, y, -0.045, 0.17, 0.05) | _disk(x, y, 0.045, 0.17, 0.05), c.accent)
    elif k == 3:  # Puritan: one wide flat collar
        c.fill(_disk(x, y, 0.0, 0.13, 0.14) & (y >= 0.12), c.accent)
    elif k == 4:  # rib collar: ribbed band round the neck
        band = (ax < 0.075) & (y >= 0.1) & (y <= 0.17)
        c.fill(band, c.accent)
        c.fill(band & ((x / 0.025) % 1.0 < 0.5), c.pattern_colour)


def _draw_lapel(c: _Canvas, k: int) -> None:
    _draw_body(c)
    top = _top_mask(c)
    c.garment(top)
    y, ax = c.y, c.ax
    depth = 0.3
    v_edge = 0.13 + depth * (1.0 - ax / 0.11)  # the V opening's edge
    c.fill(top & (y < v_edge), c.accent)  # the shirt seen through the opening
    width = {1: 0.05, 2: 0.0, 3: 0.06, 4: 0.1}[k]
    if width:
        lapel = top & (y >= v_edge) & (y < v_edge + width * 2.5) & (y < 0.13 + depth + 0.02)
        c.fill(lapel, c.pattern_colour)
        if k == 1:  # the notch
            c.fill(lapel & (np.abs(y - 0.2) < 0.02) & (ax > 0.07), c.accent)


def _draw_neck(c: _Canvas, k: int) -> None:
    _draw_top(c)
    x, y, ax = c.x, c.y, c.ax
    if k == 1:  # turtle neck: tall band up to the chin
        c.garment((ax < 0.055) & (y >= 0.06) & (y <= 0.15))
        c.fill((ax < 0.055) & (np.abs(y - 0.1) < 0.008), c.pattern_colour)
    elif k == 2:  # ruffled semi-high collar
        c.fill((ax < 0.06 + 0.02 * np.sin(y * 90.0)) & (y >= 0.08) & (y <= 0.16), c.accent)
    elif k == 3:  # low turtle neck
        c.garment((ax < 0.06) & (y >= 0.1) & (y <= 0.15))
        c.fill((ax < 0.06) & (np.abs(y - 0.1) < 0.01), c.pattern_colour)
    elif k == 4:  # draped: loose folds below the neck
        r = np.sqrt(x * x + (y - 0.1) ** 2)
        c.fill((r < 0.15) & (y > 0.12) & ((r / 0.035) % 1.0 < 0.45), c.pattern_colour)


_DRAW: dict[str, Callable[[_Canvas, int], None]] = {
    "coat_length_labels": _draw_coat,
    "collar_design_labels": _draw_collar,
    "lapel_design_labels": _draw_lapel,
    "neck_design_labels": _draw_neck,
    "neckline_design_labels": _draw_neckline,
    "pant_length_labels": _draw_pant,
    "skirt_length_labels": _draw_skirt,
    "sleeve_length_labels": _draw_sleeve,
}


def _coordinates(
    size: int, class_index: int, dx: float, dy: float, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Garment coordinates (x, y) of every pixel: the figure stands at x = 0, y from 0 to 1.

    Class 0 ("Invisible") is seen from so close that the attribute cannot be seen.
    """
    gx, gy = _grid(size)
    zoom = 2.6 if class_index == 0 else 1.0
    centre_y = 0.42 if class_index == 0 else 0.5
    x = (gx - 0.5 - dx) * (1.0 / (scale * zoom))
    y = (gy - 0.5 - dy) * (1.0 / (scale * zoom)) + centre_y
    return x, y


def _clutter(pixels: np.ndarray, rng: np.random.Generator, difficulty: float) -> None:
    """Discs and bars of random colours in the background, more of them at higher difficulty."""
    gx, gy = _grid(pixels.shape[0])
    for _ in range(int(rng.poisson(4.0 * difficulty))):
        cx, cy, r = rng.uniform((0.0, 0.0, 0.03), (1.0, 1.0, 0.15))
        if rng.random() < 0.5:
            mask = _disk(gx, gy, cx, cy, r)
        else:
            mask = (np.abs(gx - cx) < r) & (np.abs(gy - cy) < 0.3 * r)
        pixels[mask] = rng.uniform(0.0, 255.0, 3)


@lru_cache(maxsize=8)
def nearest_classes(attribute: str) -> tuple[int, ...]:
    """For each class of ``attribute``, the other class whose drawing is closest.

    The drawings are compared in one colour, without pattern or jitter, so only the shape
    counts: a neighbouring length, a similar neck detail.
    """
    size = 32
    garment = np.full(3, 255.0, dtype=np.float32)
    drawings = []
    for k in range(len(classes(attribute))):
        x, y = _coordinates(size, k, 0.0, 0.0, 0.9)
        pixels = np.zeros((size, size, 3), dtype=np.float32)
        _DRAW[attribute](_Canvas(pixels, x, y, None, garment, garment * 0.5, _ACCENT), k or 1)
        drawings.append(pixels.ravel())
    stacked = np.stack(drawings)
    distances = np.abs(stacked[:, None, :] - stacked[None, :, :]).sum(axis=2)
    np.fill_diagonal(distances, np.inf)
    return tuple(int(k) for k in distances.argmin(axis=1))


def render_image(
    attribute: str,
    class_index: int,
    rng: np.random.Generator,
    size: int,
    difficulty: float = 0.0,
) -> np.ndarray:
    """A ``size`` x ``size`` RGB uint8 image of class ``class_index`` of ``attribute``.

    The class sets the garment's shape (length, sleeves or neck detail), colour and pattern;
    ``rng`` jitters position, scale, hue, brightness, background and noise. ``difficulty``
    (0 to 1) blurs the classes: see the module docstring.
    """
    names = classes(attribute)
    if not 0 <= class_index < len(names):
        raise ValueError(f"{attribute} has classes 0..{len(names) - 1}, not {class_index}")
    if size < 8:
        raise ValueError(f"image size {size} is too small (at least 8)")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be between 0 and 1, not {difficulty}")
    d = difficulty
    dx, dy, scale, hue_jitter, value_jitter, brightness, noise, tilt = rng.uniform(
        (-0.07 - 0.04 * d, -0.05 - 0.04 * d, 0.8 - 0.1 * d, -0.025 - 0.05 * d, 0.85, 0.82, 2, -40),
        (0.07 + 0.04 * d, 0.05 + 0.04 * d, 0.98, 0.025 + 0.05 * d, 1.1, 1.15, 9 + 8 * d, 40),
    )
    x, y = _coordinates(size, class_index, dx, dy, scale)

    _, gy = _grid(size)
    background = rng.uniform(150.0, 235.0) + rng.uniform(-18.0, 18.0, 3).astype(np.float32)
    pixels = np.empty((size, size, 3), dtype=np.float32)
    pixels[:] = background
    pixels += (tilt * (gy - 0.5))[..., None]

    style_class, length = class_index, 0.0
    if d > 0:
        if rng.random() < 0.4 * d:  # colour and pattern of any class
            style_class = int(rng.integers(len(names)))
        length = d * float(rng.uniform(-0.05, 0.05))
        _clutter(pixels, rng, d)
    style = _style(attribute, style_class)
    r, g, b = colorsys.hsv_to_rgb((style.hue + hue_jitter) % 1.0, 0.75, 1.0)
    colour = np.array([r, g, b], dtype=np.float32) * (style.value * value_jitter)
    pattern_colour = colour * 0.45 if style.pattern_dark else colour * 0.35 + 160.0
    canvas = _Canvas(
        pixels,
        x,
        y,
        _pattern_mask(style.pattern, x, y, max(0.075, 4.0 / size)),
        colour,
        pattern_colour,
        accent=_ACCENT + (colour - _ACCENT) * (0.4 * d),  # details fade into the garment
        length=length,
    )
    _DRAW[attribute](canvas, class_index if class_index else 1)

    pixels *= brightness
    pixels += rng.standard_normal((size, size, 1), dtype=np.float32) * noise
    np.clip(pixels, 0.0, 255.0, out=pixels)
    return pixels.astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Planning: every annotation row and image, decided before any pixel is drawn


@dataclass
class _Row:
    archive: str  # key of ARCHIVE_NAMES
    attribute: str  # as written in the annotation
    name: str  # 32-hex image name
    code: str
    class_index: int
    expected: str
    image: str = "jpeg"  # jpeg | png | gray | empty | truncated | missing
    render_class: int = -1  # the class the image shows; default: the row's class

    @property
    def image_path(self) -> str:
        return f"Images/{self.attribute}/{self.name}.jpg"

    def drawn(self) -> tuple[str, int]:
        """The attribute and class the image shows (a skirt for an unknown attribute)."""
        attribute = self.attribute if self.attribute in ATTRIBUTES else SKIRT
        return attribute, self.render_class if self.render_class >= 0 else self.class_index


def _hex_name(seed: int, *parts: object) -> str:
    return hashlib.md5("/".join(map(str, (seed, *parts))).encode()).hexdigest()


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


def _split(n: int, attribute: str) -> tuple[int, int, int]:
    """How many of a class's ``n`` images go to round 1, the warm-up and round 2."""
    round1 = (n + 1) // 2
    rest = n - round1
    warmup = (rest + 1) // 2 if attribute == SKIRT else 0
    return round1, warmup, rest - warmup


def _regular_rows(
    seed: int, images_per_class: int, difficulty: float, rng: np.random.Generator
) -> list[_Row]:
    """Every class's images; at difficulty > 0 some show the nearest class (ambiguous)."""
    rows = []
    for attribute, names in ATTRIBUTES.items():
        nearest = nearest_classes(attribute) if difficulty > 0 else None
        for k in range(len(names)):
            round1, warmup, _ = _split(images_per_class, attribute)
            for i in range(images_per_class):
                archive = "round1" if i < round1 else "warmup" if i < round1 + warmup else "round2"
                row = _Row(archive, attribute, _hex_name(seed, attribute, k, i), "", k, "used")
                if nearest is None:
                    row.code = _code(len(names), k, rng)
                else:
                    ambiguous = rng.random() < _AMBIGUOUS_FRACTION * difficulty
                    row.code = _code(len(names), k, rng, nearest[k], ambiguous)
                    row.render_class = nearest[k] if ambiguous else -1
                rows.append(row)
    return rows


# One or two rows of each kind of bad input, plus valid oddities (PNG, grayscale, duplicates), in
# file order per archive: archive, attribute, image tag, code, class index (-1: none), expected
# outcome, image kind, class drawn (-1: the class index). The image name comes from the tag, so
# a tag used twice is one image listed twice.
_FAULTS = (
    ("round1", "collar_design_labels", "short", "nyn", -1, "wrong_length", "jpeg", 1),
    ("round1", "neckline_design_labels", "no_y1", "nnnnmnnnnn", -1, "no_y", "jpeg", 4),
    ("round1", UNKNOWN_ATTRIBUTE, "unknown", "nynnn", -1, "unknown_attribute", "jpeg", 1),
    ("round1", "coat_length_labels", "missing1", "nnynnnnn", 2, "image_missing", "missing", -1),
    ("round1", "lapel_design_labels", "empty", "nynnn", 1, "image_unreadable", "empty", -1),
    ("round1", "pant_length_labels", "png", "nnnynn", 3, "used", "png", -1),
    ("round1", "sleeve_length_labels", "duplicate", "nnnnymnnn", 4, "used", "jpeg", -1),
    ("round1", "neck_design_labels", "conflict", "nynnn", 1, "conflicting_codes", "jpeg", 1),
    ("warmup", SKIRT, "two_y_warmup", "nyynnn", -1, "multiple_y", "jpeg", 1),
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


def _fault_rows(seed: int) -> list[_Row]:
    return [
        _Row(archive, attribute, _hex_name(seed, "fault", tag), code, k, expected, image, drawn)
        for archive, attribute, tag, code, k, expected, image, drawn in _FAULTS
    ]


def _plan(
    seed: int, images_per_class: int, faults: bool, difficulty: float, rng: np.random.Generator
) -> dict[str, list[_Row]]:
    """The annotation rows of each training archive, in file order."""
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in _regular_rows(seed, images_per_class, difficulty, rng):
        groups.setdefault((row.archive, row.attribute), []).append(row)
    plan: dict[str, list[_Row]] = {}
    for archive in _TRAIN_ARCHIVES:
        rows = []
        for attribute in ATTRIBUTES:  # grouped by attribute, shuffled within
            group = groups.get((archive, attribute), [])
            rows.extend(group[i] for i in rng.permutation(len(group)))
        if faults:
            for row in (r for r in _fault_rows(seed) if r.archive == archive):
                rows.insert(int(rng.integers(0, len(rows) + 1)), row)
        plan[archive] = rows
    names = [r.name for rows in plan.values() for r in rows if r.expected not in ("duplicate",)]
    assert len(names) - len(set(names)) == (1 if faults else 0), "image name collision"
    return plan


# ---------------------------------------------------------------------------------------------
# Writing


def _encode(row: _Row, *, seed: int, size: int, difficulty: float) -> bytes | None:
    """The file bytes of ``row``'s image (None: not in the archive).

    The pixels depend only on the seed, the image name and what it shows, so an image listed in
    two archives has the same bytes in both.
    """
    if row.image == "missing":
        return None
    if row.image == "empty":
        return b""
    attribute, k = row.drawn()
    rng = np.random.default_rng([seed, int(row.name, 16)])
    pixels = render_image(attribute, k, rng, size, difficulty)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if row.image == "png":
        image.save(buffer, "PNG")
    elif row.image == "gray":
        image.convert("L").save(buffer, "JPEG", quality=_JPEG_QUALITY)
    else:
        image.save(buffer, "JPEG", quality=_JPEG_QUALITY)
    data = buffer.getvalue()
    if row.image == "truncated":
        data = data[: len(data) // 2]  # header intact, scan data cut off
    return data


_Encoder = Callable[[_Row], "bytes | None"]


class _ArchiveWriter:
    """Streams members into a tar or zip with fixed metadata (same seed, same bytes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_zip = path.suffix == ".zip"
        if self.is_zip:
            self._zip = zipfile.ZipFile(path, "w")
        else:
            self._tar = tarfile.open(path, "w", format=tarfile.GNU_FORMAT)  # noqa: SIM115
        self._dirs: set[str] = set()

    def _directory(self, name: str) -> None:
        if name in self._dirs:
            return
        parent = name.rstrip("/").rpartition("/")[0]
        if parent:
            self._directory(parent + "/")
        self._dirs.add(name)
        if self.is_zip:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = (0o40755 << 16) | 0x10
            self._zip.writestr(info, b"")
        else:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _MTIME
            self._tar.addfile(info)

    def add(self, name: str, data: bytes) -> None:
        self._directory(name.rpartition("/")[0] + "/")
        if self.is_zip:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            jpeg = name.endswith(".jpg")
            info.compress_type = zipfile.ZIP_STORED if jpeg else zipfile.ZIP_DEFLATED
            self._zip.writestr(info, data)
        else:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
            self._tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        (self._zip if self.is_zip else self._tar).close()

    def __enter__(self) -> _ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_text(lines: Iterable[str], *, crlf: bool = False, bom: bool = False) -> bytes:
    newline = "\r\n" if crlf else "\n"
    text = "".join(line + newline for line in lines)
    return (("\ufeff" if bom else "") + text).encode("utf-8")


class _Progress:
    def __init__(self, log: Callable[[str], None], label: str, total: int) -> None:
        self.log, self.label, self.total = log, label, total
        self.done, self.start = 0, time.monotonic()
        self.step = max(500, total // 10)

    def tick(self) -> None:
        self.done += 1
        if self.done % self.step == 0 or self.done == self.total:
            rate = self.done / max(time.monotonic() - self.start, 1e-9)
            self.log(f"  {self.label}: {self.done}/{self.total} images ({rate:.0f}/s)")


def _write_training_archive(
    path: Path, archive: str, rows: list[_Row], encode: _Encoder, log: Callable[[str], None]
) -> None:
    root = ARCHIVE_ROOTS[archive]
    lines = [f"{r.image_path},{r.attribute},{r.code}" for r in rows]
    progress = _Progress(log, path.name, sum(r.image != "missing" for r in rows))
    with _ArchiveWriter(path) as writer:
        # Round 2 gets a BOM and CRLF line ends: real annotation files vary.
        round2 = archive == "round2"
        writer.add(ANNOTATION_FILES[archive], _csv_text(lines, crlf=round2, bom=round2))
        sidecars = 2 if archive == "round1" else 0
        for row in sorted(rows, key=lambda r: r.image_path):
            data = encode(row)
            if data is None:
                continue
            writer.add(f"{root}/{row.image_path}", data)
            progress.tick()
            if sidecars and row.image == "jpeg":  # macOS ._ sidecar beside a real image
                writer.add(f"{root}/Images/{row.attribute}/._{row.name}.jpg", _SIDECAR_BYTES)
                sidecars -= 1


def _question_rows(
    seed: int, per_attribute: int, difficulty: float, rng: np.random.Generator
) -> list[_Row]:
    rows = []
    for attribute, names in ATTRIBUTES.items():
        nearest = nearest_classes(attribute) if difficulty > 0 else None
        for i in range(per_attribute):
            k = int(rng.integers(len(names))) if i >= len(names) else i
            name = _hex_name(seed, "question", attribute, i)
            code = _code(len(names), k, rng, None if nearest is None else nearest[k])
            rows.append(_Row("questions", attribute, name, code, k, "question"))
    return rows


def _write_questions(
    path: Path, rows: list[_Row], encode: _Encoder, log: Callable[[str], None]
) -> None:
    progress = _Progress(log, path.name, len(rows))
    with _ArchiveWriter(path) as writer:
        writer.add(
            ANNOTATION_FILES["questions"],
            _csv_text(f"{r.image_path},{r.attribute},?" for r in rows),
        )
        for row in rows:
            writer.add(f"rank/{row.image_path}", encode(row) or b"")
            progress.tick()
        if rows:
            first = rows[0]
            writer.add(f"rank/Images/{first.attribute}/._{first.name}.jpg", _SIDECAR_BYTES)


def _manifest(plan: dict[str, list[_Row]]) -> pd.DataFrame:
    records = [
        (ARCHIVE_NAMES[archive], r.image_path, r.attribute, r.code, r.class_index, r.expected)
        + (ANNOTATION_FILES[archive], line)
        for archive, rows in plan.items()
        for line, r in enumerate(rows, start=1)
    ]
    manifest = pd.DataFrame.from_records(records, columns=list(MANIFEST_COLUMNS))
    return manifest.astype({"class_index": "int64", "line": "int64"})


def generate_dataset(
    out_dir: Path,
    *,
    images_per_class: int = 8,
    image_size: int = 64,
    seed: int = 117,
    faults: bool = True,
    questions_per_attribute: int = 10,
    difficulty: float = 0.0,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Write the four archives, ``manifest.csv`` and ``question_answers.csv`` into ``out_dir``.

    Every class of every attribute gets ``images_per_class`` regular images: the first half
    (rounded up) in round 1; for skirts half of the rest in the warm-up archive; the rest in
    round 2. With ``faults`` a few extra rows are added (see ``_fault_rows``). ``difficulty``
    (0 to 1) makes the classes harder to tell apart (see the module docstring).

    Returns the manifest: one row per annotation row of the three training archives, with the
    columns of ``MANIFEST_COLUMNS``. The used images per attribute and class are
    ``manifest[manifest.expected == "used"].groupby(["attribute", "class_index"]).size()``.
    The test questions are not in it; their true codes are in ``question_answers.csv``
    (label.csv format, paths relative to ``rank/``).
    """
    if images_per_class < 1:
        raise ValueError(f"images_per_class must be at least 1, not {images_per_class}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be between 0 and 1, not {difficulty}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    rng = np.random.default_rng(seed)
    plan = _plan(seed, images_per_class, faults, difficulty, rng)
    encode = partial(_encode, seed=seed, size=image_size, difficulty=difficulty)
    n_rows = sum(map(len, plan.values()))
    log(
        f"synthetic FashionAI data: {n_rows} annotation rows, {image_size} px, seed {seed}, "
        f"difficulty {difficulty}, faults {'on' if faults else 'off'} -> {out_dir}"
    )
    for archive in _TRAIN_ARCHIVES:
        path = out_dir / ARCHIVE_NAMES[archive]
        log(f"writing {path.name}: {len(plan[archive])} annotation rows")
        _write_training_archive(path, archive, plan[archive], encode, log)

    questions = _question_rows(seed, questions_per_attribute, difficulty, rng)
    path = out_dir / ARCHIVE_NAMES["questions"]
    log(f"writing {path.name}: {len(questions)} questions")
    _write_questions(path, questions, encode, log)
    (out_dir / "question_answers.csv").write_bytes(
        _csv_text(f"{r.image_path},{r.attribute},{r.code}" for r in questions)
    )

    manifest = _manifest(plan)
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    counts = manifest["expected"].value_counts()
    summary = ", ".join(f"{reason} {count}" for reason, count in counts.items())
    log(f"manifest: {summary}")
    log(f"done in {time.monotonic() - start:.1f} s")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m demo.synthetic OUT_DIR [options]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--images-per-class", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=117)
    parser.add_argument("--questions-per-attribute", type=int, default=10)
    parser.add_argument("--difficulty", type=float, default=0.0)
    parser.add_argument("--no-faults", dest="faults", action="store_false")
    args = parser.parse_args(argv)
    generate_dataset(
        args.out_dir,
        images_per_class=args.images_per_class,
        image_size=args.image_size,
        seed=args.seed,
        faults=args.faults,
        questions_per_attribute=args.questions_per_attribute,
        difficulty=args.difficulty,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
