"""The comparison of every experiment and the ensemble: rows, means, files and the figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fashionai.evaluation.comparison import comparison_table, plot_comparison, write_comparison

COAT, COLLAR = "coat_length_labels", "collar_design_labels"


def metrics(ap: float, basic_precision: float, accuracy: float, on: str = "test") -> dict:
    return {
        "evaluated_on": on,
        "n_images": 10,
        "ap": ap,
        "basic_precision": basic_precision,
        "accuracy": accuracy,
        "official_ap": ap,
        "official_basic_precision": basic_precision,
        "validation": {"ap": 0.0},  # not part of the table
    }


GIVEN = {
    "default": {COAT: metrics(0.8, 0.7, 0.6), COLLAR: metrics(0.6, 0.5, 0.4)},
    "irv2_299": {COAT: metrics(0.9, 0.8, 0.7), COLLAR: metrics(0.7, 0.6, None)},
    "ensemble": {COAT: metrics(1.0, 0.9, 0.8), COLLAR: metrics(0.8, 0.7, 0.6, "validation")},
}


def test_one_row_per_experiment_and_category_and_a_mean_row_per_experiment():
    table = comparison_table(GIVEN)
    assert list(table.columns[:3]) == ["experiment", "category", "evaluated_on"]
    assert {"ap", "basic_precision", "accuracy", "n_images"} <= set(table.columns)
    keys = list(zip(table["experiment"], table["category"], strict=True))
    assert keys == [(e, c) for e in GIVEN for c in (COAT, COLLAR, "mean")]
    mean = table[table["category"] == "mean"].set_index("experiment")
    assert mean.loc["default", "ap"] == pytest.approx(0.7)
    assert mean.loc["irv2_299", "basic_precision"] == pytest.approx(0.7)
    # The mean of a figure is over the categories that have it.
    assert mean.loc["irv2_299", "accuracy"] == pytest.approx(0.7)
    assert mean.loc["ensemble", "ap"] == pytest.approx(0.9)
    assert mean.loc["ensemble", "evaluated_on"] == "test, validation"
    assert mean.loc["default", "n_images"] == 20


def test_files_and_figure(tmp_path):
    files = {}
    for experiment, by_category in GIVEN.items():
        for category, figures in by_category.items():
            path = tmp_path / experiment / f"{category}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(figures))
            files.setdefault(experiment, {})[category] = path
    out = tmp_path / "out"
    markdown = write_comparison(
        files, out / "e.csv", out / "e.md", out / "e.png", out / "means.csv"
    )
    assert (out / "e.md").read_text() == markdown
    assert "| ensemble | mean | test, validation | 20 | 0.7000 |" in markdown
    table = pd.read_csv(out / "e.csv")
    assert len(table) == 9 and table.loc[2, "ap"] == pytest.approx(0.7)
    assert (out / "e.png").read_bytes()[:4] == b"\x89PNG"
    means = pd.read_csv(out / "means.csv")  # the report's front page
    assert means["experiment"].tolist() == list(GIVEN)
    expected = table[table["category"] == "mean"].reset_index(drop=True)
    pd.testing.assert_frame_equal(means, expected[means.columns.tolist()])


def test_figure_bars_per_experiment_category_and_mean(tmp_path):
    figure = plot_comparison(comparison_table(GIVEN), tmp_path / "e.png")
    top, bottom = figure.axes
    ticks = [t.get_text() for t in bottom.get_xticklabels()]
    assert ticks == ["coat_length", "collar_design", "mean"]
    assert top.get_ylabel().startswith("AP") and bottom.get_ylabel() == "BasicPrecision"
    legend = figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(GIVEN)
    heights = [[bar.get_height() for bar in bars] for bars in top.containers]
    np.testing.assert_allclose(heights, [[0.8, 0.6, 0.7], [0.9, 0.7, 0.8], [1.0, 0.8, 0.9]])
    shown = [t.get_text() for t in top.texts if t.get_text()]
    assert shown == ["0.700", "0.800", "0.900"]  # the mean's values
    assert "test, validation images" in figure.get_suptitle()
