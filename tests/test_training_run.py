"""train_category end to end with SmallCNN on tiny shape images: outputs, phases, resumption."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from training_helpers import (
    add_corrupt_files,
    limit_threads,
    make_tree,
    pretrained_weights,
    split_files,
    subprocess_env,
)

limit_threads()

import keras  # noqa: E402

import fashionai.training.run as run_module  # noqa: E402
from fashionai.pixels import load_images  # noqa: E402
from fashionai.training.backbones import build_backbone  # noqa: E402
from fashionai.training.callbacks import EpochBackup  # noqa: E402
from fashionai.training.model import (  # noqa: E402
    FEATURE_EXTRACTOR,
    backbone_of,
    build_classifier,
    classifier_parts,
)
from fashionai.training.run import train_category  # noqa: E402
from fashionai.training.settings import TrainSettings  # noqa: E402

pytestmark = pytest.mark.slow

OUTPUTS = [
    "model.keras",
    "best.weights.h5",
    "history.csv",
    "split.csv",
    "training.json",
    "held_out.csv",
]
HISTORY_COLUMNS = ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]


def small(**overrides: object) -> TrainSettings:
    base = dict(backbone="SmallCNN", weights=None, image_size=16, batch_size=8, epochs=2,
                patience=5, learning_rate=1e-2, seed=3)  # fmt: skip
    return TrainSettings(**{**base, **overrides})


def check_history(out: Path, summary: dict) -> pd.DataFrame:
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == list(range(len(history)))
    assert summary["epochs_run"] == len(history)
    best = int(history["val_accuracy"].idxmax())  # first epoch with the highest value
    assert summary["best_epoch"] == best
    assert summary["best_val_accuracy"] == pytest.approx(history["val_accuracy"][best])
    return history


def refuse_image_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every function that checks images or draws a split raise, wherever imported."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a training job checked images or drew a split")

    checks = {"find_undecodable", "check_image", "check_images", "list_images", "split_dataset"}
    for module in [m for name, m in sys.modules.items() if name.startswith("fashionai")]:
        for name in checks & set(vars(module)):
            monkeypatch.setattr(module, name, refuse)  # wherever it was imported


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A frozen-backbone run on a tree with three undecodable files in it. The split stage's
    files are made first; the run itself goes with every image check and split function
    refusing to run (test_a_training_job_checks_no_image_and_draws_no_split)."""
    root = tmp_path_factory.mktemp("frozen")
    tree = make_tree(root / "tree", per_class=6, size=24)
    corrupt = add_corrupt_files(tree)
    settings = small(augmentations=("flip",))
    files = split_files(tree, settings)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        refuse_image_checks(patch)
        summary = train_category(tree, root / "out", settings, **files, threads=1, log=lines.append)
    return SimpleNamespace(tree=tree, out=root / "out", settings=settings, summary=summary,
                           lines=lines, corrupt=corrupt, files=files)  # fmt: skip


def test_frozen_run_writes_every_output(frozen: SimpleNamespace) -> None:
    out, summary = frozen.out, frozen.summary
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # .backup/ removed
    assert json.loads((out / "training.json").read_text()) == summary
    history = check_history(out, summary)
    assert history["epoch"].tolist() == [0, 1]
    assert summary["fine_tune_start_epoch"] is None
    assert summary["category"] == "collar_design_labels"
    assert [c["slug"] for c in summary["classes"]] == ["circle", "square", "triangle"]
    assert summary["settings"] == frozen.settings.to_dict()
    assert summary["devices"]["replicas"] == 1 and summary["seconds"] > 0
    split = pd.read_csv(out / "split.csv")
    assert list(split.columns) == ["image", "image_name", "label", "label_index", "subset"]
    assert set(split["subset"]) == {"train", "validation", "test"}
    assert summary["images"] == split["subset"].value_counts().to_dict()
    assert len(split) == 18 and set(split["label_index"]) == {0, 1, 2}
    assert any(line.startswith("epoch 1/1 [head] loss") for line in frozen.lines)


def test_undecodable_images_are_skipped_and_counted(frozen: SimpleNamespace) -> None:
    summary = frozen.summary
    assert summary["skipped_images"] == 3
    assert sorted(summary["skipped_files"]) == sorted(map(str, frozen.corrupt))
    split = pd.read_csv(frozen.out / "split.csv")
    assert not set(split["image"]) & set(summary["skipped_files"])
    log = "\n".join(frozen.lines)
    assert "skipping 3 image(s)" in log and all(str(p) in log for p in frozen.corrupt)


def test_model_keras_holds_the_best_weights(frozen: SimpleNamespace) -> None:
    paths = pd.read_csv(frozen.out / "split.csv")["image"].tolist()[:4]
    images = load_images(paths, 16)
    saved = keras.models.load_model(frozen.out / "model.keras")
    rebuilt = build_classifier(frozen.settings, 3).model
    rebuilt.load_weights(frozen.out / "best.weights.h5")
    np.testing.assert_allclose(
        saved.predict(images, verbose=0), rebuilt.predict(images, verbose=0), rtol=1e-5
    )


def test_model_keras_loads_and_predicts_in_a_fresh_process(frozen: SimpleNamespace) -> None:
    image = pd.read_csv(frozen.out / "split.csv")["image"][0]
    code = (
        "import json, sys, keras\n"
        "from fashionai.pixels import load_images\n"
        "model = keras.models.load_model(sys.argv[1])\n"
        "print(json.dumps(model.predict(load_images([sys.argv[2]], 16), verbose=0).tolist()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(frozen.out / "model.keras"), image],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    probabilities = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    assert probabilities.shape == (1, 3)
    assert probabilities.sum() == pytest.approx(1, abs=1e-5)
    local = keras.models.load_model(frozen.out / "model.keras").predict(
        load_images([image], 16), verbose=0
    )
    np.testing.assert_allclose(probabilities, local, rtol=1e-4, atol=1e-6)


def test_fine_tuning_learns_the_shapes_and_records_both_phases(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", per_class=10, size=24, seed=5)
    weights = pretrained_weights(tmp_path / "pretrained.weights.h5")
    settings = small(fine_tune=True, head_epochs=1, epochs=6, patience=6, weights=weights)
    lines: list[str] = []
    summary = train_category(
        tree, tmp_path / "out", settings, **split_files(tree, settings), log=lines.append
    )
    history = check_history(tmp_path / "out", summary)
    assert history["epoch"].tolist() == [0, 1, 2, 3, 4, 5]
    assert summary["fine_tune_start_epoch"] == 1
    assert any("[fine_tune]" in line for line in lines)
    assert any("backbone trainable (BatchNorm frozen)" in line for line in lines)
    # Three classes: chance is 1/3.
    assert summary["best_val_accuracy"] >= 0.75, history


def test_a_training_job_checks_no_image_and_draws_no_split(frozen: SimpleNamespace) -> None:
    """The split stage checked every image and drew the split: training reads its files (the
    frozen run trained with every image check and split function refusing, on a tree with
    undecodable files), and its model's split.csv is a copy of the split file."""
    assert (frozen.out / "split.csv").read_bytes() == frozen.files["split"].read_bytes()
    assert frozen.summary["epochs_run"] == frozen.settings.epochs


class Interrupted(Exception):
    pass


def test_killed_run_continues_from_its_last_finished_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed right after epoch 2 (in the fine-tuning phase) was backed up, then rerun."""

    class KilledAfterEpoch2(EpochBackup):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            if epoch == 2:
                raise Interrupted

    tree = make_tree(tmp_path / "tree", per_class=6, size=24)
    out = tmp_path / "out"
    weights = pretrained_weights(tmp_path / "pretrained.weights.h5")
    settings = small(fine_tune=True, head_epochs=2, epochs=5, weights=weights)
    monkeypatch.setattr(run_module, "EpochBackup", KilledAfterEpoch2)
    first: list[str] = []
    with pytest.raises(Interrupted):
        train_category(tree, out, settings, **split_files(tree, settings), log=first.append)
    assert [p.name for p in out.iterdir()] == [".backup"]  # no declared output yet
    assert json.loads((out / ".backup" / "state.json").read_text())["epoch"] == 3

    monkeypatch.setattr(run_module, "EpochBackup", EpochBackup)
    second: list[str] = []
    summary = train_category(tree, out, settings, **split_files(tree, settings), log=second.append)
    history = check_history(out, summary)
    assert history["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert any("resuming" in line and "3 epoch(s) finished" in line for line in second)
    rerun = [line.split()[1] for line in second if line.startswith("epoch ")]
    assert rerun == ["3/4", "4/4"]
    assert summary["fine_tune_start_epoch"] == 2 and summary["attempts"] == 2
    assert not (out / ".backup").exists()


def test_a_backup_of_other_settings_is_not_resumed(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", per_class=4, size=24)
    out = tmp_path / "out"
    (out / ".backup").mkdir(parents=True)
    (out / ".backup" / "state.json").write_text(json.dumps({"signature": {}, "epoch": 7}))
    lines: list[str] = []
    summary = train_category(
        tree, out, small(epochs=1), **split_files(tree, small(epochs=1)), log=lines.append
    )
    assert summary["epochs_run"] == 1 and summary["attempts"] == 1
    assert any("discarding the backup" in line and "other inputs" in line for line in lines)


def kill_after_epoch(monkeypatch: pytest.MonkeyPatch, last: int) -> None:
    """Make the next run end (like a kill) right after epoch ``last`` was backed up."""

    class Killed(EpochBackup):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            if epoch == last:
                monkeypatch.setattr(run_module, "EpochBackup", EpochBackup)
                raise Interrupted

    monkeypatch.setattr(run_module, "EpochBackup", Killed)


def rerun_after_a_change(tree: Path, out: Path, settings: TrainSettings, **inputs: Path) -> str:
    """Rerun a killed run whose backup is now stale; check it started over, each epoch once,
    and return the one key its discarding line names."""
    lines: list[str] = []
    summary = train_category(
        tree, out, settings, **split_files(tree, settings), log=lines.append, **inputs
    )
    assert summary["attempts"] == 1 and summary["epochs_run"] == settings.epochs
    assert not any(line.startswith("resuming") for line in lines), lines
    (discarded,) = [line for line in lines if line.startswith("discarding the backup")]
    changed = re.search(r"other inputs \((.*)\); starting", discarded)
    assert changed, discarded
    keys = [part.split(":")[0] for part in changed.group(1).split("; ")]
    assert len(keys) == 1, discarded
    return keys[0]


# The killed run the resumption tests below share (rerun as it is, or after one change to its
# inputs), each in a copy of its folder: relative paths make every copy the same run (the
# backup's signature holds the images' paths).
WEIGHTS, OTHER_WEIGHTS = "backbone.weights.h5", "other.weights.h5"  # two of the same size
KILLED = small(epochs=3, fine_tune=False, cache_features=False, weights=WEIGHTS)


def dying_at_epoch_2(line: str) -> None:
    """A job log that kills the run as epoch 2 ends, before epoch 2 is backed up."""
    if line.startswith("epoch 2/"):
        raise Interrupted


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``tree``, ``KILLED``'s weights file and ``OTHER_WEIGHTS``, and ``out``:
    a ``KILLED`` run killed at the end of epoch 2, before its backup (2 epochs finished)."""
    root = tmp_path_factory.mktemp("killed")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        tree = make_tree(Path("tree"), per_class=4, size=24)
        for seed, path in ((1, WEIGHTS), (2, OTHER_WEIGHTS)):
            keras.utils.set_random_seed(seed)
            pretrained_weights(Path(path))
        with pytest.raises(Interrupted):
            train_category(
                tree, Path("out"), KILLED, **split_files(tree, KILLED), log=dying_at_epoch_2
            )
    return root


@pytest.fixture
def killed_copy(killed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``killed`` (files copied, not linked: a rerun writes into the backup), made
    the working directory; its ``tree``."""
    shutil.copytree(killed, tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")
    return Path("tree")


@pytest.fixture(scope="module")
def resumed(killed: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A copy of ``killed`` rerun as it is (nothing changed: its backup resumes), with
    CUDA_VISIBLE_DEVICES set to 3,5: its ``out`` folder, summary and log lines, and the time
    just before the rerun started."""
    root = tmp_path_factory.mktemp("resumed") / "run"
    shutil.copytree(killed, root)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # read as the job writes its outputs
        before = datetime.now().astimezone()
        tree = Path("tree")
        summary = train_category(
            tree, Path("out"), KILLED, **split_files(tree, KILLED), log=lines.append
        )
    return SimpleNamespace(out=root / "out", summary=summary, lines=lines, before=before)


def test_epoch_interrupted_before_its_backup_is_run_again(resumed: SimpleNamespace) -> None:
    """Killed at the end of epoch 2 before it was backed up: epoch 2 runs again, once."""
    assert check_history(resumed.out, resumed.summary)["epoch"].tolist() == [0, 1, 2]
    assert [line.split()[1] for line in resumed.lines if line.startswith("epoch ")] == ["2/2"]
    assert resumed.summary["attempts"] == 2


def test_training_json_records_devices_and_times(resumed: SimpleNamespace) -> None:
    summary = resumed.summary
    started = datetime.fromisoformat(summary["started"])
    finished = datetime.fromisoformat(summary["finished"])
    assert started.tzinfo is not None and finished.tzinfo is not None
    # started is this attempt's start (the second), not the first attempt's
    assert resumed.before.replace(microsecond=0) <= started <= finished
    assert finished <= datetime.now().astimezone()
    assert summary["attempts"] == 2 and summary["gpu_devices"] == "3,5"


def test_a_backup_of_another_split_is_not_resumed(killed_copy: Path) -> None:
    """Killed with 2 epochs finished, then only the split changes (an image added to the tree, the
    settings the same): the rerun starts from epoch 0 again and says the split differs."""
    image = sorted(path for path in killed_copy.glob("*/*") if path.is_file())[0]
    shutil.copy(image, image.with_name(f"added{image.suffix}"))
    assert rerun_after_a_change(killed_copy, Path("out"), KILLED) == "split"


def test_a_backup_made_with_other_weights_is_not_resumed(killed_copy: Path) -> None:
    """Killed with 2 epochs finished, the weights file at the configured path is replaced: the rerun
    starts over for that reason alone, and the model's backbone holds the new weights."""
    Path(OTHER_WEIGHTS).replace(WEIGHTS)

    assert rerun_after_a_change(killed_copy, Path("out"), KILLED) == "weights.sha256"  # same size
    model = keras.models.load_model(Path("out") / "model.keras")
    expected = build_backbone("SmallCNN", 16, WEIGHTS)
    backbone = classifier_parts(model).backbone
    for found, wanted in zip(backbone.weights, expected.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(found), np.asarray(wanted))


def test_a_backup_made_on_other_features_is_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after epoch 0 of a head training on rule features' cache, an image of the tree
    changes (same name: the same split) and the cache is recomputed: the head trained on the
    old features is not resumed, for that reason alone."""
    from fashionai.training.features import extract_features

    tree = make_tree(tmp_path / "tree", per_class=4, size=24, odd_files=False)
    out, cache = tmp_path / "out", tmp_path / "features"
    settings = small(epochs=3, fine_tune=False)
    extract_features(
        tree, cache, settings, split=split_files(tree, settings)["split"], log=lambda line: None
    )
    kill_after_epoch(monkeypatch, 0)
    with pytest.raises(Interrupted):
        train_category(
            tree,
            out,
            settings,
            **split_files(tree, settings),
            log=lambda line: None,
            features=cache,
        )
    images = sorted(tree.glob("*/*.jpg"))
    replacement = images[0].with_name("new.jpg.tmp")
    replacement.write_bytes(images[-1].read_bytes())
    replacement.replace(images[0])
    manifest = (cache / "manifest.json").read_text()
    extract_features(
        tree, cache, settings, split=split_files(tree, settings)["split"], log=lambda line: None
    )
    assert (cache / "manifest.json").read_text() != manifest

    assert rerun_after_a_change(tree, out, settings, features=cache) == "features"


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_backup_without_readable_weights_is_discarded(killed_copy: Path, damage: str) -> None:
    """state.json says 2 epochs finished, its latest weights are gone or cut short."""
    out = Path("out")
    latest = out / ".backup" / "latest.weights.h5"
    assert json.loads((out / ".backup" / "state.json").read_text())["epoch"] == 2
    if damage == "missing":
        latest.unlink()
    else:
        latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    lines: list[str] = []
    summary = train_category(
        killed_copy, out, KILLED, **split_files(killed_copy, KILLED), log=lines.append
    )
    discarded = [line for line in lines if line.startswith("discarding the backup")]
    assert len(discarded) == 1 and str(latest) in discarded[0], lines
    assert ("missing" if damage == "missing" else "unreadable") in discarded[0]
    assert not any("resuming" in line for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["0/2", "1/2", "2/2"]
    assert check_history(out, summary)["epoch"].tolist() == [0, 1, 2]
    assert summary["attempts"] == 1


JOB = """
import sys
from pathlib import Path
from fashionai.joblog import job_log
from fashionai.training.resume import Backup
from fashionai.training.settings import TrainSettings
with job_log(sys.argv[3], resume=Backup(Path(sys.argv[2]) / ".backup").interrupted) as log:
    from fashionai.training.run import train_category
    settings = TrainSettings(backbone="SmallCNN", weights=None, image_size=16, batch_size=2,
                             epochs=500, patience=500, cache_features=False)
    train_category(Path(sys.argv[1]), Path(sys.argv[2]), settings, log=log,
                   split=Path(sys.argv[4]), skipped=Path(sys.argv[5]))
"""


def test_a_job_terminated_by_sigterm_says_so_and_keeps_its_backup(tmp_path: Path) -> None:
    """Like a Slurm time limit or scancel: SIGTERM to a running training job process."""
    tree = make_tree(tmp_path / "tree", per_class=4, size=24)
    out, log = tmp_path / "out", tmp_path / "train.log"
    state = out / ".backup" / "state.json"
    files = split_files(tree, TrainSettings(cache_features=False))  # the job's split keys
    command = [sys.executable, "-c", JOB, str(tree), str(out), str(log)]
    command += [str(files["split"]), str(files["skipped"])]
    job = subprocess.Popen(command, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (state.exists() and json.loads(state.read_text())["epoch"] >= 2):
            assert job.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "no epoch was backed up"
            time.sleep(0.1)
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        job.kill()
    assert "Traceback" not in job.stderr.read()
    text = log.read_text()
    epochs = json.loads(state.read_text())["epoch"]
    assert epochs >= 2
    assert text.splitlines()[-1].endswith(
        f"] interrupted by SIGTERM; epochs 0..{epochs - 1} finished; "
        f"rerun the same command to resume from epoch {epochs}"
    ), text[-2000:]
    assert [p.name for p in out.iterdir()] == [".backup"]


def test_a_random_network_fine_tuned_trains_whole_with_batchnorm_from_epoch_0(
    tmp_path: Path,
) -> None:
    """No head phase on random features: one phase at the full rate, BatchNorm learning its
    statistics (a frozen BatchNorm keeps its initial mean 0 and variance 1)."""
    tree = make_tree(tmp_path / "tree", per_class=6, size=24)
    lines: list[str] = []
    summary = train_category(
        tree,
        tmp_path / "out",
        small(fine_tune=True, epochs=2),
        **split_files(tree, small(fine_tune=True, epochs=2)),
        log=lines.append,
    )
    assert summary["fine_tune_start_epoch"] == 0
    assert any(
        line.startswith("phase fine_tune: epochs 0..1, backbone trainable, learning rate 0.01,")
        for line in lines
    ), lines
    assert not any(line.startswith("phase head") for line in lines)
    model = keras.models.load_model(tmp_path / "out" / "model.keras", compile=False)
    norms = [
        layer
        for layer in backbone_of(model.get_layer(FEATURE_EXTRACTOR)).layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and all(np.abs(norm.moving_mean.numpy()).max() > 0 for norm in norms)
