"""Faults at training time, through snakemake: a job killed with SIGKILL mid-training resumes
from its last finished epoch, unless its inputs (weights file, features) changed meanwhile; two
runs with the same seed give the same split and history."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.workflow_helpers import REPO, SNAKEMAKE, run_snakemake, tiny_config

pytestmark = pytest.mark.slow

CATEGORY = "collar_design_labels"
MODELS = f"results/experiments/default/models/{CATEGORY}"
TARGET = f"{MODELS}/best.weights.h5"
LOG = f"logs/train/default/{CATEGORY}.log"


def training_config(**train: object) -> dict:
    return tiny_config(
        categories=[CATEGORY],
        train={"fine_tune": True, "head_epochs": 1, "learning_rate": 0.01, **train},
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder with the category's regrouped tree built (the data half, once)."""
    workdir = tmp_path_factory.mktemp("prepared")
    result = run_snakemake(workdir, training_config(), f"results/regrouped/{CATEGORY}")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.fixture
def workdir(prepared: Path, tmp_path: Path) -> Path:
    """A copy of ``prepared`` (files hard-linked: tests replace files, never edit them)."""
    shutil.copytree(prepared, tmp_path / "run", copy_function=os.link)
    return tmp_path / "run"


def kill_training(workdir: Path, config: dict, epochs_backed_up: int) -> None:
    """Start the training job and SIGKILL it (and Snakemake) once its backup holds
    ``epochs_backed_up`` finished epochs."""
    (workdir / "test-config.yaml").write_text(yaml.safe_dump(config))
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(REPO / "config.yaml"), str(workdir / "test-config.yaml"),
        "--cores", "2", "--resources", "gpu=1", "--nolock", TARGET,
    ]  # fmt: skip
    state = workdir / MODELS / ".backup" / "state.json"
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    try:
        while not (state.exists() and json.loads(state.read_text())["epoch"] >= epochs_backed_up):
            assert process.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, f"training never backed up {epochs_backed_up}"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (workdir / TARGET).exists()


def test_training_killed_mid_run_resumes_from_its_last_finished_epoch(workdir: Path) -> None:
    config = training_config(epochs=12, patience=12, batch_size=4)
    kill_training(workdir, config, 3)
    log = workdir / LOG
    finished = len(re.findall(r"epoch \d+/\d+ \[", log.read_text()))

    rerun = run_snakemake(workdir, config, TARGET, extra=("--rerun-incomplete",))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = re.search(r"resuming from .*: (\d+) epoch\(s\) finished", log.read_text())
    assert resumed, log.read_text()[-2000:]
    assert int(resumed.group(1)) >= finished - 1 >= 2  # at most the epoch being run is lost
    history = pd.read_csv(workdir / MODELS / "history.csv")
    assert history["epoch"].tolist() == list(range(len(history)))
    assert len(history) == 12


def rerun_from_scratch(workdir: Path, config: dict, changed: str) -> str:
    """Rerun after a kill; check the backup was discarded for ``changed`` alone and the run
    started over, each epoch once. Returns the log."""
    rerun = run_snakemake(workdir, config, TARGET, extra=("--rerun-incomplete",))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    text = (workdir / LOG).read_text()
    discarded = [line for line in text.splitlines() if "discarding the backup" in line]
    assert len(discarded) == 1 and "other inputs" in discarded[0], text[-3000:]
    differing = re.search(r"other inputs \((.*)\); starting", discarded[0]).group(1)
    assert [part.split(":")[0] for part in differing.split("; ")] == [changed], discarded[0]
    assert "resuming" not in text
    history = pd.read_csv(workdir / MODELS / "history.csv")
    assert history["epoch"].tolist() == list(range(config["train"]["epochs"]))
    assert json.loads((workdir / MODELS / "training.json").read_text())["attempts"] == 1
    return text


def test_a_backup_made_with_other_weights_is_discarded(workdir: Path) -> None:
    """The weights file at the configured path is replaced after a kill: no resume, and the
    final model's backbone holds the new weights."""
    import keras

    from fashionai.training.backbones import build_backbone
    from fashionai.training.model import classifier_parts

    weights = workdir / "resources" / "backbone.weights.h5"
    for seed, name in ((1, weights), (2, weights.with_name("other.weights.h5"))):
        keras.utils.set_random_seed(seed)
        build_backbone("SmallCNN", 32, None).save_weights(name)
    path = str(weights.relative_to(workdir))
    config = training_config(fine_tune=False, cache_features=False, weights=path, epochs=10)
    config["train"].update(patience=10, batch_size=4)
    kill_training(workdir, config, 2)
    os.replace(weights.with_name("other.weights.h5"), weights)

    rerun_from_scratch(workdir, config, "weights")
    backbone = classifier_parts(keras.models.load_model(workdir / MODELS / "model.keras"))
    expected = build_backbone("SmallCNN", 32, str(weights))
    for found, wanted in zip(backbone.backbone.weights, expected.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(found), np.asarray(wanted))


def test_a_backup_made_on_other_features_is_discarded(workdir: Path) -> None:
    """After a kill, an image of the tree changes (same name, so the same split) and the
    feature cache is recomputed: the head trained on the old features is not resumed (a
    frozen backbone: the head trains on rule features' cache)."""
    config = training_config(epochs=10, patience=10, batch_size=4, fine_tune=False)
    kill_training(workdir, config, 2)
    tree = workdir / "results" / "regrouped" / CATEGORY
    image = sorted(tree.glob("*/*.jpg"))[0]
    replacement = image.with_name("new.jpg.tmp")
    replacement.write_bytes(sorted(tree.glob("*/*.jpg"))[-1].read_bytes())
    os.replace(replacement, image)  # a new file: the extracted one it linked to stays
    (features,) = (workdir / "results" / "features" / CATEGORY).iterdir()  # its one feature set
    manifest = (features / "manifest.json").read_text()
    shutil.rmtree(features)

    rerun_from_scratch(workdir, config, "features")
    assert (features / "manifest.json").read_text() != manifest


def test_same_seed_gives_the_same_split_and_history_on_cpu(prepared: Path, tmp_path: Path) -> None:
    runs = []
    for name in ("first", "second"):
        workdir = tmp_path / name
        shutil.copytree(prepared, workdir, copy_function=os.link)
        result = run_snakemake(workdir, training_config(epochs=3), TARGET)
        assert result.returncode == 0, result.stderr[-3000:]
        models = workdir / MODELS
        split = pd.read_csv(models / "split.csv")
        split["image"] = split["image"].str.replace(str(workdir), "", regex=False)
        runs.append((split, pd.read_csv(models / "history.csv")))
    (split_a, history_a), (split_b, history_b) = runs
    pd.testing.assert_frame_equal(split_a, split_b)
    pd.testing.assert_frame_equal(history_a, history_b, check_exact=False, rtol=1e-5)
