"""The confusion-matrix figure is written."""

from __future__ import annotations

import numpy as np

from fashionai.plots.confusion import plot_confusion_matrix


def test_png_written(tmp_path):
    names = ["Invisible", "Turtle Neck", "Ruffle Semi-High Collar", "Draped Collar"]
    matrix = np.array([[5, 1, 0, 0], [0, 3, 1, 0], [1, 0, 7, 0], [0, 0, 0, 0]])  # empty last row
    out = plot_confusion_matrix(matrix, names, tmp_path / "sub" / "confusion_matrix.png", "neck")
    assert out == tmp_path / "sub" / "confusion_matrix.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
