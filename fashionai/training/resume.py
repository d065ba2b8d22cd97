"""The state of a training run, kept in ``<out_dir>/.backup/`` until the run succeeds.

Snakemake deletes the declared outputs of a failed job, so everything a killed run needs to
continue lives in this undeclared folder:

- ``state.json``: :class:`RunState` (finished epochs, phase, best epoch, the history rows).
  It doubles as the training metadata of Keras' ``BackupAndRestore``, which reads its
  ``epoch`` key (epochs finished) to continue the epoch count;
- ``latest.weights.h5``: model and optimizer at the end of the last finished epoch;
- ``best-NNNN.weights.h5``: the best epoch so far (Keras' ``ModelCheckpoint`` numbers epochs
  from 1 in file names); ``state.json`` names the current one.
- while the head trains alone on cached features, ``latest.head.weights.h5`` and
  ``best-NNNN.head.weights.h5`` hold the head only (the frozen backbone does not change: it
  comes from its weights file or the feature cache), so an epoch's backup costs kilobytes;
- ``features/`` (a feature cache of the run's own, when no shared one is given) and
  ``images/`` (the resized images cached while the backbone trains).

Each file is written under a temporary name and renamed, weights before state, so the state
never refers to an epoch whose weights are not on disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

HISTORY_COLUMNS = ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
STATE_VERSION = 1


@dataclass
class RunState:
    """Where a run is. ``epoch`` counts finished epochs, i.e. the index of the next one."""

    signature: dict[str, Any]
    epoch: int = 0
    phase: str = "head"
    phase_start: int = 0
    fine_tune_start_epoch: int | None = None
    stopped: bool = False
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    best_weights: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    attempts: int = 1
    version: int = STATE_VERSION

    def record_epoch(self, epoch: int, logs: Mapping[str, Any]) -> dict[str, float]:
        """Add the history row of ``epoch``, replacing any row from ``epoch`` on."""
        row: dict[str, float] = {"epoch": epoch}
        for column in HISTORY_COLUMNS[1:]:
            row[column] = float(logs.get(column, float("nan")))
        self.history = [old for old in self.history if old["epoch"] < epoch] + [row]
        return row

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> RunState:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


class Backup:
    """The ``.backup`` folder of one output folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.state_path = self.folder / "state.json"
        self.latest_weights = self.folder / "latest.weights.h5"
        self.latest_head_weights = self.folder / "latest.head.weights.h5"

    def latest(self, head: bool = False) -> Path:
        """The latest weights of the whole model, or of the head alone."""
        return self.latest_head_weights if head else self.latest_weights

    def best_pattern(self, head: bool = False) -> str:
        """``ModelCheckpoint``'s file path, with Keras' 1-based ``{epoch}``."""
        return str(self.folder / ("best-{epoch:04d}" + _suffix(head)))

    @staticmethod
    def best_name(epoch: int, head: bool = False) -> str:
        """The file ``ModelCheckpoint`` writes for the 0-based ``epoch``."""
        return f"best-{epoch + 1:04d}{_suffix(head)}"

    @staticmethod
    def holds_head_only(name: str) -> bool:
        """Whether the weights file ``name`` holds the head alone (not the whole model)."""
        return name.endswith(_suffix(True))

    def load(
        self, signature: dict[str, Any], log: Callable[[str], None], keep: tuple[str, ...] = ()
    ) -> RunState:
        """The saved state if it belongs to this run (same signature), else a fresh state.

        A backup of other settings or data is removed, with a log line, except its entries
        named in ``keep`` (caches that check their own validity).
        """
        if self.state_path.exists():
            try:
                state = RunState.from_json(self.state_path.read_text())
            except (ValueError, TypeError) as error:
                log(f"{self.state_path} is unreadable ({error}): starting afresh")
            else:
                if state.signature == signature and state.version == STATE_VERSION:
                    state.attempts += 1
                    self.prune(state)
                    log(
                        f"resuming from {self.folder}: {state.epoch} epoch(s) finished, "
                        f"phase {state.phase}, best epoch {state.best_epoch}"
                    )
                    return state
                log(f"{self.folder} holds a run with other settings or data: starting afresh")
        if self.folder.exists():
            for entry in self.folder.iterdir():
                if entry.name in keep:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        return RunState(signature=signature)

    def save(self, model: keras.Model, state: RunState, head: bool = False) -> None:
        """Latest weights, then the state (each written atomically), then prune old bests.

        ``head``: ``model`` is the head alone, trained on cached features.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"latest.partial{_suffix(head)}"
        model.save_weights(str(tmp))
        os.replace(tmp, self.latest(head))
        self.save_state(state)
        self.prune(state)

    def save_state(self, state: RunState) -> None:
        write_atomic(self.state_path, state.to_json())

    def prune(self, state: RunState) -> None:
        """Remove best-epoch files the state does not refer to (left by an interrupted epoch)."""
        for path in self.folder.glob("best-*.weights.h5"):
            if path.name != state.best_weights:
                path.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _suffix(head: bool) -> str:
    return ".head.weights.h5" if head else ".weights.h5"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``.<name>.partial`` in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
