"""Learning curves of one training run: accuracy and loss per epoch, best epoch marked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fashionai.atomic import atomic_file
from fashionai.model_folder import read_summary

BEST_COLOUR = "tab:green"


def plot_history(history_csv: Path | str, training_json: Path | str, out_png: Path | str) -> Figure:
    """Training and validation accuracy and loss, the best epoch dashed, its validation accuracy
    starred and fine-tuning shaded, written to ``out_png``. Returns the figure."""
    history = pd.read_csv(history_csv)
    summary = read_summary(training_json)
    missing = {"epoch", "accuracy", "loss", "val_accuracy", "val_loss"} - set(history.columns)
    if missing:
        raise ValueError(f"{history_csv}: missing columns {', '.join(sorted(missing))}")
    if history.empty:
        raise ValueError(f"{history_csv}: no epochs to plot")
    best, best_accuracy = summary.get("best_epoch"), summary.get("best_val_accuracy")
    fine_tune_start = summary.get("fine_tune_start_epoch")
    epochs = history["epoch"]
    line = {"marker": "o" if len(history) <= 40 else None, "markersize": 3}  # beyond: plain lines

    figure = Figure(figsize=(11, 4.8), dpi=110, layout="constrained")
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    for axes, metric in ((accuracy_axes, "accuracy"), (loss_axes, "loss")):
        if fine_tune_start is not None:
            label = f"fine-tuning (backbone trainable) from epoch {fine_tune_start}"
            span = (fine_tune_start - 0.5, epochs.max() + 0.5)
            axes.axvspan(*span, color="tab:purple", alpha=0.13, lw=0, label=label)
        axes.plot(epochs, history[metric], **line, label="training")
        axes.plot(epochs, history[f"val_{metric}"], **line, label="validation")
        if best is not None:
            label = "best epoch (val_accuracy)"
            axes.axvline(best, color=BEST_COLOUR, linestyle="--", linewidth=1.2, label=label)
        axes.set(xlabel="epoch", ylabel=metric, xlim=(epochs.min() - 0.5, epochs.max() + 0.5))
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)

    accuracy_axes.set_ylim(0, 1.05)
    if best is not None and best_accuracy is not None:
        label = f"best val_accuracy {best_accuracy:.3f} at epoch {best}"
        accuracy_axes.plot(
            [best], [best_accuracy], "*", color=BEST_COLOUR, markersize=13, label=label
        )
    handles, labels = accuracy_axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=len(handles), fontsize=9)

    settings = summary.get("settings", {})
    mode = "fine-tuned" if fine_tune_start is not None else "frozen backbone"
    figure.suptitle(
        f"{summary.get('category', '?')}: {settings.get('backbone', '?')} "
        f"({settings.get('image_size', '?')} px, {mode}), "
        f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    )
    with atomic_file(out_png) as partial:
        figure.savefig(partial, format="png")
    return figure
