"""Run state and the recorder: history rows once each, best epoch, resumable early stopping."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from training_helpers import limit_threads

limit_threads()

from fashionai.training.callbacks import EpochLogger, ProgressRecorder, readable_duration  # noqa: E402
from fashionai.training.resume import Backup, RunState  # noqa: E402
from fashionai.training.run import chance_level  # noqa: E402
from fashionai.training.settings import TrainSettings  # noqa: E402


class FakeCheckpoint:
    """What ProgressRecorder reads of a ModelCheckpoint on val_accuracy (mode max)."""

    def __init__(self, best: float | None = None) -> None:
        self.best = best

    def see(self, value: float) -> None:
        if self.best is None or value > self.best:
            self.best = value


def run_epochs(state: RunState, values: list[float], first: int, patience: int) -> list[int]:
    """Feed val_accuracy values from epoch ``first`` on; return the epochs that ran."""
    checkpoint = FakeCheckpoint(state.best_val_accuracy)
    recorder = ProgressRecorder(state, checkpoint, patience)
    model = SimpleNamespace(stop_training=False)
    recorder.set_model(model)
    ran = []
    for epoch, value in enumerate(values, start=first):
        checkpoint.see(value)
        recorder.on_epoch_end(epoch, {"val_accuracy": value, "accuracy": 0.5, "loss": 1.0,
                                      "val_loss": 1.0})  # fmt: skip
        ran.append(epoch)
        if model.stop_training:
            break
    return ran


def test_best_epoch_and_early_stopping_like_keras() -> None:
    state = RunState(signature={})
    ran = run_epochs(state, [0.5, 0.6, 0.6, 0.55, 0.7, 0.1, 0.1, 0.1, 0.9], first=0, patience=3)
    assert ran == [0, 1, 2, 3, 4, 5, 6, 7]  # three epochs after the best (4) without a better one
    assert (state.best_epoch, state.best_val_accuracy) == (4, 0.7)
    assert state.best_weights == "best-0005.weights.h5"
    assert state.stopped
    assert [row["epoch"] for row in state.history] == ran


def test_patience_survives_a_restart_and_counts_from_the_phase_start() -> None:
    state = RunState(signature={})
    run_epochs(state, [0.5, 0.8, 0.7], first=0, patience=3)
    # Restarted (state reloaded) after epoch 2: epoch 4 is the third without improvement.
    restored = RunState.from_json(state.to_json())
    assert run_epochs(restored, [0.7, 0.7, 0.7], first=3, patience=3) == [3, 4]
    assert restored.stopped and restored.best_epoch == 1
    # A new phase from epoch 5 gets a fresh patience, the best epoch is kept.
    restored.phase, restored.phase_start, restored.stopped = "fine_tune", 5, False
    assert run_epochs(restored, [0.7, 0.75, 0.8, 0.8], first=5, patience=3) == [5, 6, 7]
    assert restored.best_epoch == 1


def test_rerun_epoch_replaces_its_row() -> None:
    state = RunState(signature={})
    for epoch in range(4):
        state.record_epoch(epoch, {"val_accuracy": epoch / 10})
    state.record_epoch(2, {"val_accuracy": 0.9})
    assert [row["epoch"] for row in state.history] == [0, 1, 2]
    assert state.history[-1]["val_accuracy"] == 0.9


def test_backup_resumes_only_the_same_run(tmp_path: Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    backup = Backup(tmp_path / ".backup")
    logged: list[str] = []
    state = backup.load({"settings": 1, "weights": "a"}, logged.append)
    state.epoch, state.best_weights = 3, "best-0002.weights.h5"
    model.save_weights(backup.folder / "best-0002.weights.h5")
    (backup.folder / "best-0004.weights.h5").write_text("left by an interrupted epoch")
    backup.save(model, state)
    again = backup.load({"settings": 1, "weights": "a"}, logged.append)
    assert again.epoch == 3 and again.attempts == 2 and "resuming" in logged[-1]
    assert sorted(p.name for p in backup.folder.iterdir()) == [
        "best-0002.weights.h5",
        "latest.weights.h5",
        "state.json",
    ]
    other = backup.load({"settings": 1, "weights": "b"}, logged.append)
    assert other.epoch == 0 and list(backup.folder.iterdir()) == []
    assert logged[-1] == (
        f"discarding the backup {backup.folder}: it was made from other inputs "
        '(weights: "a" -> "b"); starting from epoch 0'
    )


SETTINGS = TrainSettings().to_dict()


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_a_discarded_backup_names_each_changed_key(tmp_path: Path, key: str) -> None:
    """A changed setting is named with its old and new value, not the whole settings cut
    short, and so is each other key that changed."""
    backup = Backup(tmp_path / ".backup")
    backup.folder.mkdir()
    backup.state_path.write_text(RunState({"settings": SETTINGS, "split": "a"}).to_json())
    logged: list[str] = []
    backup.load({"settings": {**SETTINGS, key: "other"}, "split": "b"}, logged.append)
    assert logged == [
        f"discarding the backup {backup.folder}: it was made from other inputs (settings.{key}: "
        f'{json.dumps(SETTINGS[key])} -> "other"; split: "a" -> "b"); starting from epoch 0'
    ]


def test_epoch_logger_writes_one_line_with_pace_and_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Epochs of 2 s then 4 s over 600 images: 300 then 150 images/s; the phase ends before
    epoch 6, so 3 then 2 epochs remain at the phase's mean pace (2 s, then 3 s an epoch)."""
    clock = iter([0.0, 2.0, 10.0, 14.0, 20.0, 21.0])
    monkeypatch.setattr("fashionai.training.callbacks.time.monotonic", lambda: next(clock))
    lines: list[str] = []
    state = RunState(signature={}, best_epoch=2)
    logger = EpochLogger(lines.append, state, epochs=10, images=600, end_epoch=6)
    metrics = {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7}
    for epoch in (2, 3):
        logger.on_epoch_begin(epoch)
        logger.on_epoch_end(epoch, metrics)
    assert lines == [
        "epoch 2/9 [head] loss 0.5000 acc 0.7500 val_loss 0.6000 val_acc 0.7000 "
        "2.0 s, 300 images/s best, at most 6 s left in phase head",
        "epoch 3/9 [head] loss 0.5000 acc 0.7500 val_loss 0.6000 val_acc 0.7000 "
        "4.0 s, 150 images/s, at most 6 s left in phase head",
    ]
    state.stopped = True  # the last epoch of the phase: nothing left to estimate
    logger.on_epoch_begin(4)
    logger.on_epoch_end(4, metrics)
    assert lines[-1].endswith("1.0 s, 600 images/s (early stop)")


@pytest.mark.parametrize(
    ("seconds", "text"), [(42.4, "42 s"), (185, "3 min 5 s"), (7_800, "2 h 10 min")]
)
def test_time_left_reads_as_a_person_would_say_it(seconds: float, text: str) -> None:
    assert readable_duration(seconds) == text


@pytest.mark.parametrize(
    ("best", "warned"),
    [(0.5, True), (0.51, True), (0.53, False), (0.9, False)],
)
def test_training_at_chance_level_is_warned_about(best: float, warned: bool) -> None:
    """Half the 20 validation images are of class 0: 0.5 is what always answering it scores;
    better by less than half an image (0.025) is no better."""
    labels = pd.Series([0] * 10 + [1] * 6 + [2] * 4)
    warning = chance_level(best, labels)
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith(f"WARNING: best val_accuracy {best:.4f} is at chance level")
        assert "most frequent class scores 0.5000" in warning


def test_keras_checkpoint_keeps_the_best_of_an_earlier_attempt(tmp_path: Path) -> None:
    """A resumed run's ModelCheckpoint starts from the saved best: worse epochs are not best."""
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state = RunState(signature={}, epoch=3, best_epoch=1, best_val_accuracy=0.8,
                     best_weights="best-0002.weights.h5")  # fmt: skip
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best-{epoch:04d}.weights.h5"), monitor="val_accuracy", mode="max",
        save_best_only=True, save_weights_only=True, initial_value_threshold=0.8,
    )  # fmt: skip
    recorder = ProgressRecorder(state, checkpoint, patience=10)
    for callback in (checkpoint, recorder):
        callback.set_model(model)
    for epoch, value in ((3, 0.7), (4, 0.8), (5, 0.9)):
        logs = {"val_accuracy": value}
        checkpoint.on_epoch_end(epoch, logs)
        recorder.on_epoch_end(epoch, logs)
        if epoch < 5:
            assert state.best_epoch == 1 and not list(tmp_path.iterdir())
    assert (state.best_epoch, state.best_val_accuracy) == (5, 0.9)
    assert [p.name for p in tmp_path.iterdir()] == [state.best_weights] == ["best-0006.weights.h5"]
