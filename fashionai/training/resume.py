"""The state of a training run, kept in ``<out_dir>/.backup/`` (undeclared: Snakemake deletes
a failed job's outputs) until the run succeeds: ``state.json`` (:class:`RunState`), the latest
and best weights (``.head``: of the head alone, trained on cached features) and ``images/``.
Weights are written before the state, each atomically, so the state names only weights on disk.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py

from fashionai.atomic import atomic_file, remove, write_text

if TYPE_CHECKING:
    import keras

BACKUP_DIR = ".backup"  # in the model's output folder
HISTORY_COLUMNS = ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
STATE_VERSION = 2


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
    latest_weights: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    attempts: int = 1
    version: int = STATE_VERSION

    def record_epoch(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Add the history row of ``epoch`` (:data:`HISTORY_COLUMNS`, then any other figure of
        ``logs``), replacing any row from ``epoch`` on."""
        row: dict[str, float] = {"epoch": epoch}
        for column in HISTORY_COLUMNS[1:]:
            row[column] = float(logs.get(column, float("nan")))
        row.update({key: float(value) for key, value in logs.items() if key not in row})
        self.history = [old for old in self.history if old["epoch"] < epoch] + [row]

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

    def best_pattern(self, head: bool = False) -> str:
        """``ModelCheckpoint``'s file path, with Keras' 1-based ``{epoch}`` (``best-NNNN``)."""
        return str(self.folder / ("best-{epoch:04d}" + _suffix(head)))

    @staticmethod
    def best_name(epoch: int, head: bool = False) -> str:
        """The file ``ModelCheckpoint`` writes for the 0-based ``epoch``."""
        return f"best-{epoch + 1:04d}{_suffix(head)}"

    @staticmethod
    def holds_head_only(name: str) -> bool:
        """Whether the weights file ``name`` holds the head alone (not the whole model)."""
        return name.endswith(_suffix(True))

    def load(self, signature: dict[str, Any], log: Callable[[str], None]) -> RunState:
        """The saved state if the backup was made from ``signature`` and every weights file it
        names reads back, else a fresh state (the backup discarded, with a log line saying why)."""
        state, problem = self._check(signature)
        if state is not None:
            state.attempts += 1
            self.prune(state)
            log(
                f"resuming from {self.folder}: {state.epoch} epoch(s) finished, "
                f"phase {state.phase}, best epoch {state.best_epoch}"
            )
            return state
        if problem:
            log(f"discarding the backup {self.folder}: {problem}; starting from epoch 0")
        remove(self.folder)
        self.folder.mkdir(parents=True)
        return RunState(signature=signature)

    def _check(self, signature: dict[str, Any]) -> tuple[RunState | None, str]:
        """The backup's state if it can be resumed, else None and why not ("": no backup)."""
        if not self.state_path.exists():
            return None, ""
        try:
            state = RunState.from_json(self.state_path.read_text())
        except (ValueError, TypeError) as error:
            return None, f"{self.state_path} is unreadable ({error})"
        if state.version != STATE_VERSION:
            return None, f"{self.state_path} is of format {state.version}, not {STATE_VERSION}"
        if state.signature != signature:
            changed = differences(state.signature, signature)
            return None, f"it was made from other inputs ({changed})"
        if state.latest_weights is None:
            return None, f"{self.state_path} names no latest weights"
        for name in (state.latest_weights, state.best_weights):
            problem = name and weights_problem(self.folder / name)
            if problem:
                return None, problem
        return state, ""

    def save(self, model: keras.Model, state: RunState, head: bool = False) -> None:
        """Latest weights (of the head alone with ``head``), the state naming them, old bests
        pruned."""
        latest = self.folder / ("latest" + _suffix(head))
        with atomic_file(latest) as partial:
            model.save_weights(str(partial))
        state.latest_weights = latest.name
        write_text(self.state_path, state.to_json())
        self.prune(state)

    def prune(self, state: RunState) -> None:
        """Remove best-epoch files the state does not refer to (left by an interrupted epoch)."""
        for path in self.folder.glob("best-*.weights.h5"):
            if path.name != state.best_weights:
                path.unlink()

    def interrupted(self) -> str:
        """What an interrupted run leaves for a rerun, for the job's last log line."""
        try:
            epochs = RunState.from_json(self.state_path.read_text()).epoch
        except (OSError, ValueError, TypeError):
            epochs = 0
        if not epochs:
            return "no epoch finished; rerun the same command to start again"
        rerun = f"rerun the same command to resume from epoch {epochs}"
        return f"epochs 0..{epochs - 1} finished; {rerun}"


def weights_problem(path: Path) -> str | None:
    """Why the weights file ``path`` cannot be loaded, or None; every array is read, so a file
    cut short or damaged anywhere is caught here, by name."""
    if not path.is_file():
        return f"its weights file {path} is missing"
    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        return f"its weights file {path} is unreadable ({error})"
    return None


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> str:
    """``key: old -> new; ...`` for each key whose value differs, nested mappings entered key by
    key (``settings.seed: 1 -> 2``); long values shortened."""

    def short(value: Any) -> str:
        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= 80 else text[:77] + "..."

    changed = []
    for key in sorted(key for key in {*old, *new} if old.get(key) != new.get(key)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changed.append(differences(before, after, f"{prefix}{key}."))
        else:
            changed.append(f"{prefix}{key}: {short(before)} -> {short(after)}")
    return "; ".join(changed)


def _suffix(head: bool) -> str:
    return ".head.weights.h5" if head else ".weights.h5"
