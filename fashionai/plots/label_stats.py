"""Label statistics of a category tree: images per label before and after regrouping, and
preview grids of random images per label, to decide (and check) which labels to merge.

A tree is ``<tree>/<slug>/<image files>`` plus ``<tree>/labels.json`` (see ``fashionai.trees``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from fashionai.attributes import ATTRIBUTES
from fashionai.trees import read_labels

THUMBNAIL_PX = 192  # longest side of a preview tile, whatever the dataset's image size
DPI = 110
_DROPPED_COLOUR = "#bdbdbd"


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained", dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _label_files(folder: Path) -> list[Path]:
    """The image files of one label folder, sorted; hidden files (``._*`` sidecars) skipped."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _count(labels: dict[str, Any], tree_dir: Path, slug: str) -> int:
    counts = labels.get("counts", {})
    return int(counts[slug]) if slug in counts else len(_label_files(tree_dir / slug))


# ---------------------------------------------------------------------------------------------
# Label distribution


def plot_label_distribution(tree_dir: Path, regrouped_dir: Path, out_png: Path) -> None:
    """Images per label before regrouping (every official class, in official order) and after
    (the groups with their merged members; dropped labels shown as dropped), side by side on a
    shared count axis. Bars before regrouping take the colour of the group they go to."""
    tree_dir, regrouped_dir, out_png = Path(tree_dir), Path(regrouped_dir), Path(out_png)
    before = read_labels(tree_dir)
    after = read_labels(regrouped_dir)
    category = before["category"]
    if after["category"] != category:
        raise ValueError(
            f"{regrouped_dir}: category {after['category']!r} is not the category {category!r} "
            f"of {tree_dir}"
        )

    # Before: the official classes when the category is known, else the tree's own classes.
    slug_of = {c["name"]: c["slug"] for c in before["classes"]}
    names = list(ATTRIBUTES.get(category, slug_of))
    before_counts = [_count(before, tree_dir, slug_of[n]) if n in slug_of else 0 for n in names]

    groups = sorted(after["classes"], key=lambda c: c["index"])
    group_of = {member: g["index"] for g in groups for member in (*g["members"], g["name"])}
    dropped = [name for name in after["dropped"] if name not in group_of]
    palette = _palette(len(groups))
    before_colours = [palette[group_of[n]] if n in group_of else _DROPPED_COLOUR for n in names]

    after_labels = [_group_label(g) for g in groups] + [f"{n}\n(dropped)" for n in dropped]
    after_counts = [_count(after, regrouped_dir, g["slug"]) for g in groups]
    dropped_counts = [before_counts[names.index(n)] if n in names else 0 for n in dropped]

    rows = max(len(names), len(after_labels) + 0.6 * sum("\n" in s for s in after_labels))
    fig = _new_figure(13.0, 1.6 + 0.42 * rows)
    left, right = fig.subplots(1, 2, sharex=True)

    total_before = sum(before_counts)
    bars = _hbars(left, names, before_counts, before_colours)
    for bar, name in zip(bars, names, strict=True):
        if name in dropped:
            bar.set_hatch("//")
    left.set_title(f"Before regrouping: {len(names)} labels, {total_before:,} images")
    for tick, name in zip(left.get_yticklabels(), names, strict=True):
        if name in dropped:
            tick.set_color("#777777")
    kept = "kept: colour = its label after regrouping"
    legend = [Patch(facecolor=palette[0], edgecolor="#444444", label=kept)]
    if dropped:
        legend.append(
            Patch(facecolor=_DROPPED_COLOUR, edgecolor="#444444", hatch="//", label="dropped")
        )
    fig.legend(handles=legend, loc="outside lower center", ncols=2, fontsize="small",
               frameon=False)  # fmt: skip

    colours = palette[: len(groups)] + [_DROPPED_COLOUR] * len(dropped)
    bars = _hbars(right, after_labels, after_counts + dropped_counts, colours)
    for bar in bars[len(groups) :]:
        bar.set_hatch("//")
        bar.set_alpha(0.7)
    n_dropped = sum(dropped_counts)
    title = f"After regrouping: {len(groups)} labels, {sum(after_counts):,} images"
    right.set_title(title + (f" ({n_dropped:,} dropped)" if dropped else ""))

    peak = max([*before_counts, *after_counts, *dropped_counts, 1])
    left.set_xlim(0, peak * 1.18)
    fig.suptitle(f"{category}: images per label", fontsize="x-large", fontweight="bold")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)


def _palette(n: int) -> list[tuple[float, ...]]:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]


def _group_label(group: dict[str, Any]) -> str:
    """A group's name, with the labels merged into it on a second line."""
    merged = [m for m in group["members"] if m != group["name"]]
    return group["name"] + (f"\n+ {', '.join(merged)}" if merged else "")


def _hbars(ax: Axes, labels: list[str], counts: list[int], colours: list[Any]) -> Any:
    """Horizontal bars, first label on top, each annotated with its count."""
    y = np.arange(len(labels))
    bars = ax.barh(y, counts, color=colours, edgecolor="#444444", linewidth=0.6)
    ax.set_yticks(y, labels, fontsize="small")
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=3, fontsize="small")
    ax.set_xlabel("images")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelbottom=True)
    return bars


# ---------------------------------------------------------------------------------------------
# Preview grids


def load_thumbnail(path: Path, size: int = THUMBNAIL_PX) -> np.ndarray | None:
    """The image as an RGB array no larger than ``size``; None if it cannot be read.

    Any format Pillow knows is fine (PNG data in a .jpg, grayscale...). JPEGs are decoded at a
    reduced scale (``draft``), so large images stay fast.
    """
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))
            rgb = image.convert("RGB")
            rgb.thumbnail((size, size))
            return np.asarray(rgb)
    except Exception:  # corrupt, truncated, empty or unknown: the caller shows a placeholder
        return None


def _file_size(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return "cannot stat"
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.1f} kB"


def _short_name(name: str, keep: int = 8) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if len(stem) <= keep + 2:
        return name
    return f"{stem[:keep]}…{dot}{ext}"


def plot_preview_grids(
    tree_dir: Path, out_dir: Path, *, per_label: int = 9, seed: int = 117
) -> list[Path]:
    """One PNG per label, ``out_dir/<slug>.png``: up to ``per_label`` random images of it
    (seeded per label), in a grid of ``ceil(sqrt(per_label))`` columns. Unreadable images get
    a placeholder tile, a label without images a figure saying so. Returns the PNG paths in
    label order."""
    tree_dir, out_dir = Path(tree_dir), Path(out_dir)
    if per_label < 1:
        raise ValueError(f"per_label must be at least 1, not {per_label}")
    labels = read_labels(tree_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in sorted(labels["classes"], key=lambda c: c["index"]):
        files = _label_files(tree_dir / entry["slug"])
        rng = np.random.default_rng([seed, entry["index"]])
        chosen = [files[i] for i in sorted(rng.choice(len(files), min(per_label, len(files)),
                                                      replace=False))]  # fmt: skip
        fig = _preview_figure(labels["category"], entry, len(files), chosen, per_label)
        path = out_dir / f"{entry['slug']}.png"
        fig.savefig(path)
        written.append(path)
    return written


def _preview_figure(
    category: str, entry: dict[str, Any], total: int, chosen: list[Path], per_label: int
) -> Figure:
    title = f"{category}: {entry['name']} ({total:,} image{'s' if total != 1 else ''})"
    merged = [m for m in entry.get("members", []) if m != entry["name"]]
    subtitle = f"merged: {', '.join(merged)}" if merged else ""
    if total > len(chosen) and chosen:
        subtitle = "; ".join(filter(None, [subtitle, f"{len(chosen)} chosen at random"]))

    if not chosen:
        fig = _new_figure(6.0, 3.0)
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no images", ha="center", va="center", fontsize="xx-large",
                color="#777777", transform=ax.transAxes)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize="large")
        return fig

    ncols = min(len(chosen), math.ceil(math.sqrt(per_label)))
    nrows = math.ceil(len(chosen) / ncols)
    fig = _new_figure(max(2.4 * ncols, 5.5), 2.55 * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, path in zip(axes, chosen, strict=False):
        pixels = load_thumbnail(path)
        if pixels is None:  # a square placeholder tile, the size of an image tile
            ax.imshow(np.full((2, 2, 3), 0.93))
            ax.text(0.5, 0.5, f"unreadable\n({_file_size(path)})", ha="center", va="center",
                    color="#b22222", fontsize="large", transform=ax.transAxes)  # fmt: skip
        else:
            ax.imshow(pixels, interpolation="antialiased")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(_short_name(path.name), fontsize="small", family="monospace")
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize="large")
    return fig
