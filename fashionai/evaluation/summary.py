"""The summary table over the categories (rule ``summarize``): ``results/summary.csv`` and
``.md``, one row per category and their mean, whose ``ap`` is the competition's mAP."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fashionai.atomic import write_text

FIGURES = ("accuracy", "basic_precision", "ap", "official_basic_precision", "official_ap")
COLUMNS = ("category", "evaluated_on", "n_images", *FIGURES)


def summary_table(metrics_by_category: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per category (the top-level figures of its ``metrics.json`` and the images they
    are on) plus a ``mean`` row: the unweighted mean of each figure over the categories that
    have it, the total ``n_images`` and the ``evaluated_on`` values it mixes."""
    frame = pd.DataFrame(
        [{"category": category, **metrics} for category, metrics in metrics_by_category.items()],
        columns=list(COLUMNS),
    ).astype({figure: "float64" for figure in FIGURES})
    mean = {
        "category": "mean",
        "evaluated_on": ", ".join(sorted(set(frame["evaluated_on"]))),
        "n_images": frame["n_images"].sum(),
        **frame[list(FIGURES)].mean(),
    }
    return pd.concat([frame, pd.DataFrame([mean])], ignore_index=True)


def cell(value: Any, digits: int = 4) -> str:
    """A table cell: a float with ``digits`` decimals, a missing value ``n/a``."""
    if pd.isna(value):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """``frame`` as a Markdown table: floats with ``digits`` decimals, missing values ``n/a``."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(value, digits) for value in row) + " |")
    return "\n".join(lines) + "\n"


def read_metrics(metrics_files: Mapping[str, Path | str]) -> dict[str, dict[str, Any]]:
    """The ``metrics.json`` of each category (category -> path)."""
    return {
        category: json.loads(Path(path).read_text(encoding="utf-8"))
        for category, path in metrics_files.items()
    }


def write_summary(
    metrics_files: Mapping[str, Path | str], out_csv: Path | str, out_markdown: Path | str
) -> str:
    """Write the table of each category's ``metrics.json`` as CSV and Markdown; returns the
    Markdown."""
    table = summary_table(read_metrics(metrics_files))
    markdown = to_markdown(table)
    write_text(out_csv, table.to_csv(index=False))
    write_text(out_markdown, markdown)
    return markdown
