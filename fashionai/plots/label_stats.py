"""Label statistics of a category tree: images per label before and after regrouping, and
preview grids of random images per label, to decide (and check) which labels to merge. Rule
``label_statistics`` draws both for one category in one job.

A tree is ``<tree>/<slug>/<image files>`` plus ``<tree>/labels.json`` (see ``fashionai.trees``).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
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
#
# One figure per label: the chosen images composed into one mosaic (numpy), drawn by a single
# imshow at one image pixel per figure pixel, captions as text at the tile positions, a fixed
# figure size and no layout engine. One Figure and its artists serve every label of a tree.

_MARGIN_PX = 14  # px left and right of the mosaic, and below it
_HEADER_PX = 74  # px above the mosaic: the title, and a subtitle of up to two lines
_MIN_WIDTH_PX = 480  # the title needs room even for a one-column grid
_CELL_GREY = 238  # background of a tile whose image does not fill it
_PLACEHOLDER_GREY = 225  # an unreadable image's tile
_UNREADABLE_COLOUR = "#b22222"


@dataclass(frozen=True)
class PreviewLayout:
    """Where the tiles of a ``cols`` x ``rows`` preview grid go, in pixels.

    The mosaic is ``height`` x ``width`` pixels: square cells of ``tile`` px separated by
    ``gap`` px, each followed by ``caption`` px for its two caption lines. In the saved PNG the
    mosaic's top-left pixel is at ``(mosaic_left, mosaic_top)``, one mosaic pixel per PNG pixel.
    """

    cols: int
    rows: int
    tile: int = THUMBNAIL_PX
    gap: int = 12
    caption: int = 34

    @classmethod
    def for_count(cls, per_label: int, tile: int = THUMBNAIL_PX) -> PreviewLayout:
        cols = math.ceil(math.sqrt(per_label))
        return cls(cols, math.ceil(per_label / cols), tile)

    @property
    def width(self) -> int:
        return self.cols * self.tile + (self.cols - 1) * self.gap

    @property
    def height(self) -> int:
        return self.rows * (self.tile + self.caption) + (self.rows - 1) * self.gap

    @property
    def figure_size(self) -> tuple[int, int]:
        """(width, height) of the PNG in pixels."""
        return (max(self.width + 2 * _MARGIN_PX, _MIN_WIDTH_PX),
                _HEADER_PX + self.height + _MARGIN_PX)  # fmt: skip

    @property
    def mosaic_left(self) -> int:
        return (self.figure_size[0] - self.width) // 2

    @property
    def mosaic_top(self) -> int:
        return _HEADER_PX

    def cell(self, i: int) -> tuple[int, int]:
        """(x, y) of the top-left pixel of cell ``i`` (row-major) in the mosaic."""
        row, col = divmod(i, self.cols)
        return col * (self.tile + self.gap), row * (self.tile + self.caption + self.gap)

    def placement(self, i: int, shape: tuple[int, ...]) -> tuple[int, int]:
        """(x, y) in the mosaic of an image of ``shape`` (height, width, ...) in cell ``i``:
        centred in the cell."""
        x, y = self.cell(i)
        return x + (self.tile - shape[1]) // 2, y + (self.tile - shape[0]) // 2

    def compose(
        self, tiles: Sequence[np.ndarray | None], out: np.ndarray | None = None
    ) -> np.ndarray:
        """The mosaic of ``tiles`` (RGB arrays or None) in row-major cells, as opaque uint8
        RGBA (what Agg draws without converting) on white: an array is centred in a light grey
        cell, None gets a darker placeholder cell. Writes into ``out`` when given (reused
        across labels)."""
        if len(tiles) > self.cols * self.rows:
            raise ValueError(f"{len(tiles)} tiles do not fit a {self.cols}x{self.rows} grid")
        mosaic = np.empty((self.height, self.width, 4), np.uint8) if out is None else out
        mosaic.fill(255)
        for i, pixels in enumerate(tiles):
            x, y = self.cell(i)
            cell = mosaic[y : y + self.tile, x : x + self.tile, :3]
            if pixels is None:
                cell.fill(_PLACEHOLDER_GREY)
                continue
            h, w = pixels.shape[:2]
            if h > self.tile or w > self.tile:
                raise ValueError(f"a {w}x{h} tile is larger than {self.tile} px")
            cell.fill(_CELL_GREY)
            px, py = self.placement(i, pixels.shape)
            mosaic[py : py + h, px : px + w, :3] = pixels
        return mosaic


def load_tile(path: Path, size: int = THUMBNAIL_PX) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The image fitted to a ``size`` px square, as RGB, and its original (width, height);
    None if it cannot be read.

    Any format Pillow knows is fine (PNG data in a .jpg, grayscale...). A larger image is
    reduced (JPEG ``draft``, a reduced-scale decode, then ``thumbnail``); a smaller one is
    enlarged by a whole factor, each pixel a block as in matplotlib's ``imshow``: the tiles show
    what the images hold, and such PNGs compress 3x better than smoothly enlarged ones.
    """
    try:
        with Image.open(path) as image:
            original = image.size
            image.draft("RGB", (size, size))
            rgb = image.convert("RGB")
        rgb.thumbnail((size, size))
        factor = size // max(rgb.size)
        if factor > 1:
            rgb = rgb.resize((rgb.width * factor, rgb.height * factor), Image.Resampling.NEAREST)
        return np.asarray(rgb), original
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


def _label_files(folder: Path) -> list[str]:
    """The names of the image files of one label folder, sorted; hidden files (``._*``
    sidecars) skipped."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


def tile_caption(path: Path, size: tuple[int, int] | None) -> tuple[str, str]:
    """The two caption lines of a tile: the short file name, then the image's (width, height)
    ``size`` (None: unreadable) and its file size."""
    shape = f"{size[0]}×{size[1]} px" if size else "unreadable"
    return _short_name(Path(path).name), f"{shape}, {_file_size(Path(path))}"


class _PreviewFigure:
    """One Figure for all preview grids of a tree: a single axes showing the mosaic through one
    AxesImage, and text artists for the titles and each cell's captions, updated per label."""

    def __init__(self, layout: PreviewLayout) -> None:
        self.layout = layout
        width, height = layout.figure_size
        self.fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        FigureCanvasAgg(self.fig)
        ax = self.fig.add_axes((layout.mosaic_left / width, _MARGIN_PX / height,
                                layout.width / width, layout.height / height))  # fmt: skip
        ax.set_axis_off()
        self.mosaic = layout.compose([])
        # One mosaic pixel per figure pixel: "none" copies the pixels, no resampling.
        self.image = ax.imshow(self.mosaic, interpolation="none")
        ax.set_xlim(-0.5, layout.width - 0.5)
        ax.set_ylim(layout.height - 0.5, -0.5)
        self.title = self.fig.text(0.5, 1 - 8 / height, "", ha="center", va="top",
                                   fontsize=12, fontweight="bold")  # fmt: skip
        self.chars = (width - 2 * _MARGIN_PX) // 8  # subtitle characters per line
        self.subtitle = self.fig.text(0.5, 1 - 31 / height, "", ha="center", va="top",
                                      fontsize=9, color="#555555")  # fmt: skip
        self.empty = ax.text(layout.width / 2, layout.height / 2, "", ha="center", va="center",
                             fontsize="xx-large", color="#777777")  # fmt: skip
        self.names, self.details, self.marks = [], [], []
        for i in range(layout.cols * layout.rows):
            x, y = layout.cell(i)
            centre, below = x + layout.tile / 2, y + layout.tile + 3
            self.names.append(ax.text(centre, below, "", ha="center", va="top", fontsize=8,
                                      family="monospace", color="#222222"))  # fmt: skip
            self.details.append(ax.text(centre, below + 15, "", ha="center", va="top",
                                        fontsize=7.5, color="#666666"))  # fmt: skip
            self.marks.append(ax.text(centre, y + layout.tile / 2, "", ha="center",
                                      va="center", fontsize="large",
                                      color=_UNREADABLE_COLOUR))  # fmt: skip

    def draw(self, title: str, subtitle: str, chosen: list[Path], out_png: Path) -> None:
        tiles, sizes = [], []
        for path in chosen:
            pixels, size = load_tile(path, self.layout.tile) or (None, None)
            tiles.append(pixels)
            sizes.append(size)
        self.layout.compose(tiles, out=self.mosaic)
        self.image.set_data(self.mosaic)
        self.title.set_text(title)
        self.subtitle.set_text(subtitle)
        self.empty.set_text("" if chosen else "no images")
        for i, (name, detail, mark) in enumerate(zip(self.names, self.details, self.marks,
                                                     strict=True)):  # fmt: skip
            if i >= len(chosen):
                name.set_text("")
                detail.set_text("")
                mark.set_text("")
                continue
            first, second = tile_caption(chosen[i], sizes[i])
            name.set_text(first)
            detail.set_text(second)
            detail.set_color("#666666" if sizes[i] else _UNREADABLE_COLOUR)
            mark.set_text("" if sizes[i] else "unreadable")
        _save_png(self.fig, out_png)


def _save_png(fig: Figure, out_png: Path) -> None:
    """Like ``savefig`` but without the (opaque) alpha channel and with zlib level 1: photos
    barely compress anyway; a grid of 192 px photos is written 4x faster than by savefig
    (RGBA, level 6) into a file 5-15% larger."""
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    Image.fromarray(np.ascontiguousarray(rgb)).save(out_png, "PNG", compress_level=1,
                                                    dpi=(DPI, DPI))  # fmt: skip


def plot_preview_grids(
    tree_dir: Path, out_dir: Path, *, per_label: int = 9, seed: int = 117
) -> list[Path]:
    """One PNG per label, ``out_dir/<slug>.png``: up to ``per_label`` random images of it
    (seeded per label), in a grid of ``ceil(sqrt(per_label))`` columns; every label's PNG has
    the same size and layout (see ``PreviewLayout``). Each tile is captioned with its short
    file name, original size and file size; unreadable images get a placeholder tile, a label
    without images a figure saying so. Returns the PNG paths in label order."""
    tree_dir, out_dir = Path(tree_dir), Path(out_dir)
    if per_label < 1:
        raise ValueError(f"per_label must be at least 1, not {per_label}")
    labels = read_labels(tree_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure = _PreviewFigure(PreviewLayout.for_count(per_label))
    written = []
    for entry in sorted(labels["classes"], key=lambda c: c["index"]):
        folder = tree_dir / entry["slug"]
        files = _label_files(folder)
        rng = np.random.default_rng([seed, entry["index"]])
        picks = rng.choice(len(files), min(per_label, len(files)), replace=False)
        chosen = [folder / files[i] for i in sorted(picks)]
        path = out_dir / f"{entry['slug']}.png"
        titles = _preview_titles(labels["category"], entry, len(files), chosen, figure.chars)
        figure.draw(*titles, chosen, path)
        written.append(path)
    return written


def _preview_titles(
    category: str, entry: dict[str, Any], total: int, chosen: list[Path], chars: int
) -> tuple[str, str]:
    """The title (category and label) and the subtitle (image count, merged labels) of a
    preview grid, the subtitle wrapped at ``chars`` characters."""
    title = f"{category}: {entry['name']}"
    parts = [f"{total:,} image{'s' if total != 1 else ''}"]
    if total > len(chosen) and chosen:
        parts[0] += f", {len(chosen)} chosen at random"
    merged = [m for m in entry.get("members", []) if m != entry["name"]]
    if merged:
        parts.append(f"merged: {', '.join(merged)}")
    return title, textwrap.fill("; ".join(parts), width=chars)
