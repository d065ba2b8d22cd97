"""plot_history: a PNG of the learning curves, with or without a fine-tuning phase; the
curves drawn are read back from the figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashionai.plots.history import plot_history


def write_run(folder: Path, epochs: int, fine_tune_start: int | None) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    steps = np.arange(epochs)
    accuracy = 1 - 0.6 * np.exp(-steps / 8)
    history = pd.DataFrame(
        {
            "epoch": steps,
            "accuracy": accuracy,
            "loss": 1.5 * np.exp(-steps / 10) + 0.1,
            "val_accuracy": accuracy - 0.05 + rng.normal(0, 0.02, epochs),
            "val_loss": 1.6 * np.exp(-steps / 12) + 0.2,
        }
    )
    best = int(history["val_accuracy"].idxmax())
    summary = {
        "category": "neckline_design_labels",
        "settings": {"backbone": "ResNet50V2", "image_size": 224},
        "best_epoch": best,
        "best_val_accuracy": float(history["val_accuracy"][best]),
        "fine_tune_start_epoch": fine_tune_start,
    }
    folder.mkdir(parents=True, exist_ok=True)
    history.to_csv(folder / "history.csv", index=False)
    (folder / "training.json").write_text(json.dumps(summary))
    return folder / "history.csv", folder / "training.json"


@pytest.mark.parametrize(("epochs", "fine_tune_start"), [(12, 4), (60, None), (1, None), (60, 55)])
def test_plot_history_writes_a_png(tmp_path: Path, epochs: int, fine_tune_start) -> None:
    history, summary = write_run(tmp_path / "run", epochs, fine_tune_start)
    out = tmp_path / "plots" / "learning_curves.png"
    figure = plot_history(history, summary, out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.width > 800 and image.height > 300
    # The curves are the history's columns; the dashed line is at the best epoch.
    frame, best = pd.read_csv(history), json.loads(summary.read_text())["best_epoch"]
    for axes, metric in zip(figure.axes, ("accuracy", "loss"), strict=True):
        curves = {line.get_label(): line for line in axes.get_lines()}
        assert np.array_equal(curves["training"].get_xdata(), frame["epoch"])
        assert np.allclose(curves["training"].get_ydata(), frame[metric])
        assert np.allclose(curves["validation"].get_ydata(), frame[f"val_{metric}"])
        assert list(curves["best epoch (val_accuracy)"].get_xdata()) == [best, best]


def test_plot_history_rejects_a_bad_history(tmp_path: Path) -> None:
    history, summary = write_run(tmp_path, 3, None)
    pd.read_csv(history).drop(columns="val_loss").to_csv(history, index=False)
    with pytest.raises(ValueError, match="val_loss"):
        plot_history(history, summary, tmp_path / "x.png")
