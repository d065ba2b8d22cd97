"""Training through snakemake: a job killed with SIGKILL mid-training resumes from its last
finished epoch; two jobs with the same seed give the same split and history. (A backup made from
other inputs is discarded: tests/test_training_run.py, in-process.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fashionai.outputs import split_file
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
    """A working folder with the category's regrouped tree built and its split drawn (the data
    half, once: the tests' settings share the split keys, so their runs start at training)."""
    workdir = tmp_path_factory.mktemp("prepared")
    result = run_snakemake(workdir, training_config(), split_file(CATEGORY))
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


def test_same_seed_gives_the_same_split_and_history_on_cpu(workdir: Path) -> None:
    """Two training jobs (two processes) of the same settings: ``default`` and an experiment
    that overrides nothing."""
    config = {**training_config(epochs=3), "experiments": {"again": {}}}
    targets = [TARGET, TARGET.replace("/default/", "/again/")]
    result = run_snakemake(workdir, config, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = []
    for target in targets:
        models = workdir / Path(target).parent
        runs.append((pd.read_csv(models / "split.csv"), pd.read_csv(models / "history.csv")))
    (split_a, history_a), (split_b, history_b) = runs
    pd.testing.assert_frame_equal(split_a, split_b)
    pd.testing.assert_frame_equal(history_a, history_b, check_exact=False, rtol=1e-5)
