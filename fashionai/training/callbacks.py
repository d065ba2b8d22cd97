"""Callbacks of a training run, in this order: (:class:`HeadMeans`, for a group's model) ->
``ModelCheckpoint`` -> :class:`ProgressRecorder` (reads the checkpoint's decision) ->
:class:`EpochLogger` -> :class:`EpochBackup` (persists what the recorder recorded)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from fashionai.training.resume import Backup, RunState


class _Callback(keras.callbacks.Callback):
    """A Keras callback whose fields a dataclass declares."""

    def __post_init__(self) -> None:
        super().__init__()


@dataclass(eq=False)
class HeadMeans(_Callback):
    """For a group's model (an output per category of ``heads``): ``<head>_loss`` becomes the
    head's ``own_loss`` metric (its cross-entropy on its own images), ``accuracy`` the mean of
    the heads' (``val_`` alike), so that the later callbacks go by the mean."""

    heads: tuple[str, ...]
    own_loss: str

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        for prefix in ("", "val_"):
            for head in self.heads:
                if (own := logs.pop(f"{prefix}{head}_{self.own_loss}", None)) is not None:
                    logs[f"{prefix}{head}_loss"] = own
            keys = [f"{prefix}{head}_accuracy" for head in self.heads]
            if found := [logs[key] for key in keys if key in logs]:
                logs[f"{prefix}accuracy"] = float(sum(found) / len(found))


@dataclass(eq=False)
class ProgressRecorder(_Callback):
    """Records each epoch in the run state: history row, best epoch (the one ``checkpoint``,
    whose ``initial_value_threshold`` is the best of earlier attempts, saved), early stopping
    after ``patience`` epochs without improvement since the best epoch or the phase's start
    (counted from the state, so that it survives a restart)."""

    state: RunState
    checkpoint: keras.callbacks.ModelCheckpoint
    patience: int
    head: bool = False  # the model trained is the head alone: Backup.best_name's

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        state = self.state
        state.record_epoch(epoch, logs or {})
        best = self.checkpoint.best
        improved = best is not None and not math.isinf(best) and best != state.best_val_accuracy
        if improved:
            state.best_epoch = epoch
            state.best_val_accuracy = float(best)
            state.best_weights = Backup.best_name(epoch, head=self.head)
        reference = max(-1 if state.best_epoch is None else state.best_epoch, state.phase_start - 1)
        if not improved and epoch - reference >= self.patience:
            state.stopped = True
            self.model.stop_training = True


@dataclass(eq=False)
class EpochBackup(_Callback):
    """Backs the run up at the end of each epoch, so a run killed at any moment continues from
    its last finished epoch; ``head``: the model trained is the head alone."""

    backup: Backup
    state: RunState
    elapsed: Callable[[], float]
    head: bool = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.state.epoch = epoch + 1
        self.state.seconds = self.elapsed()
        self.backup.save(self.model, self.state, head=self.head)


@dataclass(eq=False)
class EpochLogger(_Callback):
    """One log line per epoch: index (0-based, as in history.csv), metrics, seconds, training
    images per second, and the most time the phase (up to ``end_epoch``) takes at its pace."""

    log: Callable[[str], None]
    state: RunState
    epochs: int
    images: int  # training images per epoch
    end_epoch: int  # the phase's end (exclusive)
    _start: float = field(default_factory=time.monotonic)
    _seconds: list[float] = field(default_factory=list)  # this phase's epochs, this attempt

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        seconds = time.monotonic() - self._start
        self._seconds.append(seconds)
        marks = " best" if self.state.best_epoch == epoch else ""
        if self.state.stopped:
            marks += " (early stop)"
        left = (self.end_epoch - 1 - epoch) * sum(self._seconds) / len(self._seconds)
        if not self.state.stopped and left > 0:
            marks += f", at most {readable_duration(left)} left in phase {self.state.phase}"
        self.log(
            f"epoch {epoch}/{self.epochs - 1} [{self.state.phase}] "
            f"loss {logs.get('loss', math.nan):.4f} acc {logs.get('accuracy', math.nan):.4f} "
            f"val_loss {logs.get('val_loss', math.nan):.4f} "
            f"val_acc {logs.get('val_accuracy', math.nan):.4f} "
            f"{seconds:.1f} s, {self.images / max(seconds, 1e-9):,.0f} images/s{marks}"
        )


def readable_duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s`` or ``2 h 10 min``."""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
