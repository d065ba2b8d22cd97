"""Confusion-matrix figure: counts and row-normalised rates side by side."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fashionai.atomic import atomic_file

LABEL_WIDTH = 16  # characters per line of a wrapped class name


def plot_confusion_matrix(
    matrix: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    out_png: Path | str,
    title: str,
) -> Figure:
    """Write a PNG with two panels: the counts (true class per row, predicted per column) and
    the rows normalised to 1 (recall on the diagonal; an empty row stays 0). Returns the
    figure."""
    counts = np.asarray(matrix, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {k} class names")
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    labels = [textwrap.fill(str(name), LABEL_WIDTH) for name in class_names]

    side = max(4.0, 0.62 * k + 2.2)  # inches per panel
    fig = Figure(figsize=(2 * side + 1.2, side), dpi=110, layout="constrained")
    left, right = fig.subplots(1, 2)
    _panel(left, counts, labels, f"counts (n = {int(counts.sum())})", "{:d}", "Blues")
    _panel(right, rates, labels, "row-normalised (recall on diagonal)", "{:.2f}", "Greens", 1.0)
    fig.suptitle(title, fontsize="x-large")
    with atomic_file(out_png) as partial:
        fig.savefig(partial, format="png")
    return fig


def _panel(
    ax: Axes,
    values: np.ndarray,
    labels: list[str],
    title: str,
    fmt: str,
    cmap: str,
    vmax: float | None = None,
) -> None:
    """One heat map with numbers in the cells, class names on both axes and a colourbar."""
    k = len(labels)
    top = float(values.max()) if vmax is None and values.size else (vmax or 1.0)
    top = top or 1.0
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=top, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    ax.set_xticks(range(k), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    size = "medium" if k <= 6 else ("small" if k <= 10 else "x-small")
    rows, cols = np.indices(values.shape)
    for r, c, value in zip(rows.ravel(), cols.ravel(), values.ravel(), strict=True):
        colour = "white" if value > 0.6 * top else "black"
        text = fmt.format(int(value) if fmt == "{:d}" else float(value))
        ax.text(c, r, text, ha="center", va="center", color=colour, fontsize=size)
