"""The confusion-matrix figure shows exactly the matrix it is given, read back from its artists."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fashionai.plots.confusion import plot_confusion_matrix

NAMES = ["Invisible", "Turtle Neck", "Ruffle Semi-High Collar", "Draped Collar"]
MATRIX = [[5, 1, 0, 0], [0, 3, 1, 0], [1, 0, 7, 2], [0, 0, 0, 0]]  # the last row empty


def cell_texts(ax) -> list[list[str]]:
    """The numbers written in the cells, as rows of the matrix (each text sits at (col, row))."""
    k = len(NAMES)
    grid = [[""] * k for _ in range(k)]
    for text in ax.texts:
        col, row = text.get_position()
        grid[round(row)][round(col)] = text.get_text()
    return grid


def test_the_figure_shows_the_matrix(tmp_path) -> None:
    out = tmp_path / "sub" / "confusion_matrix.png"
    fig = plot_confusion_matrix(MATRIX, NAMES, out, "neck: 20 images")
    counts, rates = fig.axes[:2]  # then the two colourbars
    assert fig.get_suptitle() == "neck: 20 images"
    assert counts.get_title() == "counts (n = 20)"
    assert np.array_equal(counts.images[0].get_array(), MATRIX)
    assert cell_texts(counts) == [[str(v) for v in row] for row in MATRIX]
    expected = [[5 / 6, 1 / 6, 0, 0], [0, 3 / 4, 1 / 4, 0], [0.1, 0, 0.7, 0.2], [0, 0, 0, 0]]
    assert np.allclose(rates.images[0].get_array(), expected)
    assert cell_texts(rates) == [[f"{v:.2f}" for v in row] for row in expected]
    for ax in (counts, rates):  # true class per row, predicted per column, names wrapped
        wrapped = ["Invisible", "Turtle Neck", "Ruffle Semi-High\nCollar", "Draped Collar"]
        assert [t.get_text() for t in ax.get_yticklabels()] == wrapped
        assert [t.get_text() for t in ax.get_xticklabels()] == wrapped
        assert (ax.get_ylabel(), ax.get_xlabel()) == ("true", "predicted")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 800
    assert [p.name for p in out.parent.iterdir()] == ["confusion_matrix.png"]


def test_a_matrix_that_does_not_fit_the_names(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"confusion matrix of shape \(4, 4\) for 3 class names"):
        plot_confusion_matrix(MATRIX, NAMES[:3], tmp_path / "x.png", "x")
    assert not (tmp_path / "x.png").exists()
