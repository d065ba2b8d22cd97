"""The comparison of everything trained (rule ``compare_experiments``): every experiment's and
the ensemble's figures per category and their mean, as ``results/experiments.csv`` / ``.md``
and one figure of test mAP and BasicPrecision."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fashionai.atomic import atomic_file, write_text
from fashionai.evaluation.summary import COLUMNS, read_metrics, summary_table, to_markdown

MEAN = "mean"
# The short table of the report's front page: each experiment's mean over the categories.
MEAN_COLUMNS = ["experiment", "evaluated_on", "n_images", "ap", "basic_precision", "accuracy"]
PANELS = (("ap", "AP (mean: mAP)"), ("basic_precision", "BasicPrecision"))
DIGITS = 4  # the figures' decimals in the CSV and Markdown tables


def comparison_table(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """Each experiment's :func:`~fashionai.evaluation.summary.summary_table` in the order of
    ``metrics`` (experiment -> category -> metrics), one under the other."""
    tables = [
        summary_table(by_category).assign(experiment=name) for name, by_category in metrics.items()
    ]
    return pd.concat(tables, ignore_index=True)[["experiment", *COLUMNS]]


def plot_comparison(table: pd.DataFrame, out_png: Path | str) -> Figure:
    """A panel of bars per figure (AP, BasicPrecision), grouped by category and the mean (whose
    bars carry their value), one bar per experiment, written atomically. Returns the figure."""
    experiments = list(dict.fromkeys(table["experiment"]))
    categories = list(dict.fromkeys(table["category"]))
    evaluated_on = ", ".join(sorted(set(table.loc[table["category"] != MEAN, "evaluated_on"])))
    width = 0.8 / len(experiments)
    x = np.arange(len(categories))
    fig = Figure(figsize=(max(8.0, 1.1 * len(categories)), 8.0), dpi=110, layout="constrained")
    axes = fig.subplots(len(PANELS), 1, sharex=True)
    values = table.set_index(["experiment", "category"])
    low = np.nanmin(table[[key for key, _ in PANELS]].to_numpy(dtype=float))
    bottom = max(0.0, np.floor(low * 10 - 0.5) / 10) if np.isfinite(low) else 0.0
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        for i, experiment in enumerate(experiments):
            heights = [values[key].get((experiment, c), np.nan) for c in categories]
            offset = (i - (len(experiments) - 1) / 2) * width
            bars = ax.bar(x + offset, heights, width, label=experiment)
            shown = [
                f"{h:.3f}" if c == MEAN else "" for h, c in zip(heights, categories, strict=True)
            ]
            ax.bar_label(bars, shown, fontsize="x-small", rotation=90, padding=2)
        ax.set_ylabel(label)
        ax.set_ylim(bottom, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(x, [c.removesuffix("_labels") for c in categories], rotation=30, ha="right")
    axes[-1].set_xlabel("category (mean: over the categories)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, title="experiment", loc="outside lower center", ncols=min(len(labels), 6)
    )
    fig.suptitle(f"AP and BasicPrecision per experiment and category, {evaluated_on} images")
    with atomic_file(out_png) as partial:
        fig.savefig(partial, format="png")
    return fig


def write_comparison(
    metrics_files: Mapping[str, Mapping[str, Path | str]],
    out_csv: Path | str,
    out_markdown: Path | str,
    out_png: Path | str,
    out_mean_csv: Path | str,
) -> str:
    """Write the table of every ``metrics.json`` (experiment -> category -> path) as CSV and
    Markdown, its figure and its means (``MEAN_COLUMNS``), and return the Markdown."""
    table = comparison_table({name: read_metrics(files) for name, files in metrics_files.items()})
    markdown = to_markdown(table, DIGITS)
    write_text(out_csv, table.to_csv(index=False, float_format=f"%.{DIGITS}f"))
    write_text(out_markdown, markdown)
    plot_comparison(table, out_png)
    means = table.loc[table["category"] == MEAN, MEAN_COLUMNS]
    write_text(out_mean_csv, means.to_csv(index=False, float_format=f"%.{DIGITS}f"))
    return markdown
