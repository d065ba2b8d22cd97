"""Drawing: one synthetic garment photograph per call (:func:`render_image`).

Each class draws a garment whose length or neck detail depends on the class, in a
class-specific colour and pattern, with random jitter, so a small CNN can learn the classes at
32-64 px.

``difficulty`` (0 to 1) makes the classes less separable: colours and patterns stop following
the class, lengths vary within a class, neck details fade towards the garment colour, the
garment shifts and scales more, and clutter and noise grow. :func:`nearest_classes` tells which
class's drawing is nearest to each class's (what an ambiguous photo shows). Difficulty 0 is the
easy set, byte for byte the same for the same seed.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fashionai.attributes import ATTRIBUTES, classes


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


def _draw_lower_body(c: _Canvas) -> None:
    """Body and the neutral short-sleeved top worn with skirts and pants."""
    _draw_body(c)
    c.fill(_trapezoid(c.ax, c.y, 0.14, 0.43, 0.15, 0.14) | _arms(c.ax, c.y, 0.08), _TOP)


def _draw_skirt(c: _Canvas, k: int) -> None:
    _draw_lower_body(c)
    length = _SKIRT_LENGTH[k] + c.length
    c.garment(_trapezoid(c.ax, c.y, 0.41, 0.41 + length, 0.135, 0.135 + 0.35 * length))


def _draw_pant(c: _Canvas, k: int) -> None:
    _draw_lower_body(c)
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


def _draw_top(c: _Canvas) -> np.ndarray:
    """Body and a long-sleeved top whose neck area the design attributes then change; returns
    the top's mask."""
    _draw_body(c)
    top = _top_mask(c)
    c.garment(top)
    return top


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
        flaps = (y >= 0.11) & (y <= 0.25 - 0.9 * ax) & (y >= 0.11 + 0.9 * ax)
        c.fill(flaps, c.accent)
        c.fill(flaps & (ax < 0.01), c.colour)
    elif k == 2:  # Peter Pan: two round flaps
        c.fill(_disk(x, y, -0.045, 0.17, 0.05) | _disk(x, y, 0.045, 0.17, 0.05), c.accent)
    elif k == 3:  # Puritan: one wide flat collar
        c.fill(_disk(x, y, 0.0, 0.13, 0.14) & (y >= 0.12), c.accent)
    elif k == 4:  # rib collar: ribbed band round the neck
        band = (ax < 0.075) & (y >= 0.1) & (y <= 0.17)
        c.fill(band, c.accent)
        c.fill(band & ((x / 0.025) % 1.0 < 0.5), c.pattern_colour)


def _draw_lapel(c: _Canvas, k: int) -> None:
    top = _draw_top(c)
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


def _draw(attribute: str, canvas: _Canvas, class_index: int) -> None:
    """Draw the class's garment; class 0 (Invisible) is class 1's, seen too close (see
    :func:`_coordinates`)."""
    _DRAW[attribute](canvas, class_index or 1)


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


def check_difficulty(difficulty: float) -> None:
    """Refuse a ``difficulty`` outside 0 to 1."""
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be between 0 and 1, not {difficulty}")


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
        _draw(attribute, _Canvas(pixels, x, y, None, garment, garment * 0.5, _ACCENT), k)
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
    check_difficulty(difficulty)
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
    _draw(attribute, canvas, class_index)

    pixels *= brightness
    pixels += rng.standard_normal((size, size, 1), dtype=np.float32) * noise
    np.clip(pixels, 0.0, 255.0, out=pixels)
    return pixels.astype(np.uint8)
