"""Confusion-matrix figure: counts and row-normalised rates side by side."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fashionai.atomic import atomic_file

LABEL_WIDTH = 16  # characters per line of a wrapped class name


def plot_confusion_matrix(
    matrix: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    out_png: Path | str,
    title: str,
) -> Figure:
    """Write a PNG of two heat maps: the counts (true class per row) and the rows normalised to
    1 (an empty row stays 0). Returns the figure."""
    counts = np.asarray(matrix, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {k} class names")
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    labels = [textwrap.fill(str(name), LABEL_WIDTH) for name in class_names]

    side = max(4.0, 0.62 * k + 2.2)  # inches per panel
    fig = Figure(figsize=(2 * side + 1.2, side), dpi=110, layout="constrained")
    panels = (
        (counts, f"counts (n = {int(counts.sum())})", "{:.0f}", "Blues", counts.max(initial=0)),
        (rates, "row-normalised (recall on diagonal)", "{:.2f}", "Greens", 1.0),
    )
    for ax, (values, panel_title, fmt, cmap, top) in zip(fig.subplots(1, 2), panels, strict=True):
        top = float(top) or 1.0
        image = ax.imshow(values, cmap=cmap, vmin=0, vmax=top, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
        ax.set_xticks(range(k), labels, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(k), labels)
        ax.set(xlabel="predicted", ylabel="true", title=panel_title)
        size = "medium" if k <= 6 else ("small" if k <= 10 else "x-small")
        for (r, c), value in np.ndenumerate(values):
            colour = "white" if value > 0.6 * top else "black"
            ax.text(c, r, fmt.format(value), ha="center", va="center", color=colour, fontsize=size)
    fig.suptitle(title, fontsize="x-large")
    with atomic_file(out_png) as partial:
        fig.savefig(partial, format="png")
    return fig
