"""Learning curves of one training run: accuracy and loss per epoch, best epoch marked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from fashionai.atomic import atomic_file

TRAIN_COLOUR = "tab:blue"
VALIDATION_COLOUR = "tab:orange"
BEST_COLOUR = "tab:green"
FINE_TUNE_COLOUR = "tab:purple"
MARKERS_UP_TO = 40  # epochs; beyond that, plain lines read better
TICK_EVERY_EPOCH_UP_TO = 15


def plot_history(history_csv: Path, training_json: Path, out_png: Path) -> Figure:
    """Two panels (accuracy, loss) of training and validation curves, written to ``out_png``.

    The best epoch (``training.json``) gets a vertical line and its validation accuracy an
    annotation; the fine-tuning phase, if any, is shaded. Returns the figure.
    """
    history = pd.read_csv(history_csv)
    summary = json.loads(Path(training_json).read_text())
    missing = {"epoch", "accuracy", "loss", "val_accuracy", "val_loss"} - set(history.columns)
    if missing:
        raise ValueError(f"{history_csv}: missing columns {', '.join(sorted(missing))}")
    if history.empty:
        raise ValueError(f"{history_csv}: no epochs to plot")

    settings = summary.get("settings", {})
    best_epoch = summary.get("best_epoch")
    best_accuracy = summary.get("best_val_accuracy")
    fine_tune_start = summary.get("fine_tune_start_epoch")
    epochs = history["epoch"]
    marker = "o" if len(history) <= MARKERS_UP_TO else None

    figure = Figure(figsize=(11, 4.8), dpi=110, layout="constrained")
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    for axes, metric in ((accuracy_axes, "accuracy"), (loss_axes, "loss")):
        if fine_tune_start is not None:
            _shade_fine_tuning(axes, int(epochs.min()), fine_tune_start, int(epochs.max()))
        line = {"marker": marker, "markersize": 3}
        axes.plot(epochs, history[metric], color=TRAIN_COLOUR, label="training", **line)
        axes.plot(
            epochs, history[f"val_{metric}"], color=VALIDATION_COLOUR, **line, label="validation"
        )
        if best_epoch is not None:
            axes.axvline(
                best_epoch,
                color=BEST_COLOUR,
                linestyle="--",
                linewidth=1.2,
                label="best epoch (val_accuracy)",
            )
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        if len(history) <= TICK_EVERY_EPOCH_UP_TO:
            axes.set_xticks(epochs)
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
        axes.grid(alpha=0.3)

    accuracy_axes.set_ylim(0, 1.05)
    if best_epoch is not None and best_accuracy is not None:
        star = {"marker": "*", "markersize": 13, "markeredgecolor": "white", "zorder": 5}
        accuracy_axes.plot([best_epoch], [best_accuracy], color=BEST_COLOUR, **star)
        # At the foot of the best-epoch line, where accuracy curves rarely go.
        right_half = best_epoch > (epochs.min() + epochs.max()) / 2
        foot = blended_transform_factory(accuracy_axes.transData, accuracy_axes.transAxes)
        accuracy_axes.annotate(
            f"best val_accuracy {best_accuracy:.3f}\nat epoch {best_epoch}",
            xy=(best_epoch, 0.04),
            xycoords=foot,
            xytext=(-6 if right_half else 6, 0),
            textcoords="offset points",
            ha="right" if right_half else "left",
            va="bottom",
            fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": BEST_COLOUR},
            zorder=6,
        )
    handles, labels = accuracy_axes.get_legend_handles_labels()
    if fine_tune_start is not None:  # the unshaded epochs before it
        handles.insert(0, Patch(facecolor="white", edgecolor="lightgray"))
        labels.insert(0, "head training (backbone frozen)")
    figure.legend(handles, labels, loc="outside lower center", ncol=len(handles), fontsize=9)

    mode = "fine-tuned" if fine_tune_start is not None else "frozen backbone"
    figure.suptitle(
        f"{summary.get('category', '?')}: {settings.get('backbone', '?')} "
        f"({settings.get('image_size', '?')} px, {mode}), "
        f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    )
    with atomic_file(out_png) as partial:
        figure.savefig(partial, format="png")
    return figure


def _shade_fine_tuning(axes: Axes, first: int, start: int, last: int) -> None:
    """Shade the fine-tuning epochs ``start``..``last`` and name the band above the panel."""
    label = "fine-tuning (backbone trainable)"
    axes.axvspan(start - 0.5, last + 0.5, color=FINE_TUNE_COLOUR, alpha=0.13, lw=0, label=label)
    above = blended_transform_factory(axes.transData, axes.transAxes)
    late = start - first > 0.6 * (last - first)  # left-aligned text would run off the panel
    text = f"fine-tuning from epoch {start}" + ("" if late else " \u2192")
    style = {"fontsize": 9, "color": FINE_TUNE_COLOUR, "va": "bottom"}
    x, ha = (last + 0.4, "right") if late else (start - 0.4, "left")
    axes.text(x, 1.01, text, transform=above, ha=ha, **style)
