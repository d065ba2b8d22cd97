"""Label statistics of a category tree (rule ``label_statistics``): images per label before
and after regrouping (the files in the label folders) and preview grids of random images per
label, to decide which labels to merge."""

from __future__ import annotations

import math
import os
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from PIL import Image

from fashionai.atomic import atomic_file, atomic_folder
from fashionai.outputs import PREVIEW_SUFFIX
from fashionai.trees import read_labels

TILE_PX = 256  # longest side a preview image is reduced to: big photos decode cheaply
DPI = 100
DROPPED_COLOUR = "#bdbdbd"
RED = "#b22222"  # unreadable images
# The HTML report embeds every preview grid: about 500 kB each as PNG, 55 kB as this JPEG.
PREVIEW_JPEG = {"quality": 60, "optimize": True, "progressive": True}


def label_files(folder: Path) -> list[str]:
    """The image file names of a label folder, sorted, hidden ones (``._*``) skipped."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


def plot_label_distribution(tree_dir: Path, regrouped_dir: Path, out_png: Path) -> Figure:
    """Images per label before regrouping (left, each bar in its group's colour, dropped ones
    hatched grey) and after (right: the groups, then the dropped labels). Returns the figure."""
    tree_dir, regrouped_dir = Path(tree_dir), Path(regrouped_dir)
    before, after = read_labels(tree_dir), read_labels(regrouped_dir)
    category = before["category"]
    if after["category"] != category:
        raise ValueError(
            f"{regrouped_dir}: category {after['category']!r} is not the category {category!r} "
            f"of {tree_dir}"
        )
    names = [c["name"] for c in before["classes"]]
    counts = [len(label_files(tree_dir / c["slug"])) for c in before["classes"]]
    groups = after["classes"]
    palette = colormaps["tab10" if len(groups) <= 10 else "tab20"].colors
    colour_of = {g["name"]: palette[i % len(palette)] for i, g in enumerate(groups)}
    target = {m: g["name"] for g in groups for m in (*g["members"], g["name"])}
    dropped = [n for n in after["dropped"] if n not in target]

    after_names = [_group_label(g) for g in groups] + [f"{n}\n(dropped)" for n in dropped]
    after_counts = [len(label_files(regrouped_dir / g["slug"])) for g in groups]
    dropped_counts = [counts[names.index(n)] if n in names else 0 for n in dropped]

    rows = max(len(names), len(after_names) + sum("\n" in n for n in after_names) // 2)
    fig = Figure(figsize=(13, 1.8 + 0.45 * rows), dpi=DPI, layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    colours = [colour_of[target[n]] if n in target else DROPPED_COLOUR for n in names]
    _bars(left, names, counts, colours, [n in dropped for n in names])
    left.set_title(f"Before regrouping: {len(names)} labels, {sum(counts):,} images")
    colours = [colour_of[g["name"]] for g in groups] + [DROPPED_COLOUR] * len(dropped)
    hatched = [False] * len(groups) + [True] * len(dropped)
    _bars(right, after_names, after_counts + dropped_counts, colours, hatched)
    title = f"After regrouping: {len(groups)} labels, {sum(after_counts):,} images"
    right.set_title(title + (f" ({sum(dropped_counts):,} dropped)" if dropped else ""))
    left.set_xlim(0, max([*counts, *after_counts, 1]) * 1.15)

    legend = [Patch(facecolor=palette[0], label="kept (colour: its label after regrouping)")]
    if dropped:
        legend.append(Patch(facecolor=DROPPED_COLOUR, hatch="//", label="dropped"))
    fig.legend(handles=legend, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(f"{category}: images per label", fontsize="x-large", fontweight="bold")
    with atomic_file(out_png) as partial:
        fig.savefig(partial, format="png")
    return fig


def _group_label(group: dict[str, Any]) -> str:
    """A group's name, with the labels merged into it on a second line."""
    merged = [m for m in group["members"] if m != group["name"]]
    return group["name"] + (f"\n+ {', '.join(merged)}" if merged else "")


def _bars(ax: Axes, labels: list[str], counts: list[int], colours: list, hatched: list) -> None:
    """Horizontal bars, first label on top, each annotated with its count."""
    y = np.arange(len(labels))
    bars = ax.barh(y, counts, color=colours, edgecolor="#444444", linewidth=0.6)
    for bar, hatch in zip(bars, hatched, strict=True):
        bar.set_hatch("//" if hatch else None)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=3)
    ax.set(xlabel="images", axisbelow=True)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="x", labelbottom=True)


def load_tile(path: Path, size: int = TILE_PX) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The image reduced to fit a ``size`` px square, as RGB, and its original (width, height);
    None if it cannot be read."""
    try:
        with Image.open(path) as image:
            original = image.size
            image.thumbnail((size, size))
            return np.asarray(image.convert("RGB")), original
    except Exception:  # corrupt, truncated, empty, a pixel bomb...: the tile says unreadable
        return None


def preview_figure(title: str, paths: list[Path], per_label: int) -> Figure:
    """A grid of ``per_label`` cells showing ``paths``, each captioned with its file name and
    original size (an unreadable one a placeholder saying so); its size depends on
    ``per_label`` alone."""
    cols = math.ceil(math.sqrt(per_label))
    rows = math.ceil(per_label / cols)
    fig = Figure(figsize=(2.4 * cols, 2.5 * rows + 0.6), dpi=DPI, layout="constrained")
    fig.suptitle(title, fontsize="large", fontweight="bold")
    for ax, path in zip_longest(fig.subplots(rows, cols, squeeze=False).flat, paths):
        ax.set_axis_off()
        if path is not None:
            _draw_tile(ax, Path(path))
    if not paths:
        fig.text(0.5, 0.5, "no images", ha="center", va="center", size="xx-large", color="#777")
    return fig


def _draw_tile(ax: Axes, path: Path) -> None:
    tile = load_tile(path)
    size = path.stat().st_size if path.exists() else 0
    file_size = f"{size:,} bytes" if size < 1024 else f"{size / 1024:,.1f} kB"
    caption = dict(ha="center", va="top", fontsize="small", color="#444444")
    if tile is None:
        ax.add_patch(Rectangle((0, 0), 1, 1, fc="#eeeeee", ec=RED, hatch="//", lw=1.5))
        mark = {"color": RED, "weight": "bold", "backgroundcolor": "white"}
        ax.text(0.5, 0.5, "unreadable", ha="center", va="center", **mark)
        details, caption["color"] = f"unreadable, {file_size}", RED
    else:
        pixels, (width, height) = tile
        ax.imshow(pixels)
        details = f"{width}×{height} px, {file_size}"
    ax.set_aspect("equal", adjustable="datalim")  # centred in the cell, the caption below it
    stem, dot, ext = path.name.rpartition(".")
    name = f"{stem[:12]}…{dot}{ext}" if len(stem) > 14 else path.name
    ax.text(0.5, -0.02, f"{name}\n{details}", transform=ax.transAxes, **caption)


def plot_preview_grids(
    tree_dir: Path, out_dir: Path, *, per_label: int = 9, seed: int = 117
) -> list[Path]:
    """One JPEG per label, ``out_dir/<slug>.jpg``, of up to ``per_label`` random images of it
    (seeded per label), the folder written atomically. Returns the JPEG paths in label order."""
    tree_dir, out_dir = Path(tree_dir), Path(out_dir)
    if per_label < 1:
        raise ValueError(f"per_label must be at least 1, not {per_label}")
    labels = read_labels(tree_dir)
    with atomic_folder(out_dir) as partial:
        for entry in labels["classes"]:
            folder = tree_dir / entry["slug"]
            files = label_files(folder)
            n = len(files)
            rng = np.random.default_rng([seed, entry["index"]])
            picks = sorted(rng.choice(n, min(per_label, n), replace=False))
            title = f"{labels['category']}: {entry['name']}\n{n:,} image{'s' * (n != 1)}"
            if n > per_label:
                title += f", {per_label} chosen at random"
            merged = [m for m in entry["members"] if m != entry["name"]]
            title += f"; merged: {', '.join(merged)}" if merged else ""
            fig = preview_figure(title, [folder / files[i] for i in picks], per_label)
            fig.savefig(partial / f"{entry['slug']}{PREVIEW_SUFFIX}", pil_kwargs=PREVIEW_JPEG)
    return [out_dir / f"{entry['slug']}{PREVIEW_SUFFIX}" for entry in labels["classes"]]
