"""Faults at training time, through snakemake: a job killed with SIGKILL mid-training resumes
from its last finished epoch; two runs with the same seed give the same split and history."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.workflow_helpers import REPO, SNAKEMAKE, run_snakemake, tiny_config

pytestmark = pytest.mark.slow

CATEGORY = "collar_design_labels"
TARGET = f"results/models/{CATEGORY}/best.weights.h5"


def training_config(**train: object) -> dict:
    return tiny_config(
        categories=[CATEGORY],
        train={"fine_tune": True, "head_epochs": 1, "learning_rate": 0.01, **train},
    )


def test_training_killed_mid_run_resumes_from_its_last_finished_epoch(tmp_path: Path) -> None:
    config = training_config(epochs=12, patience=12, batch_size=4)
    prepared = run_snakemake(tmp_path, config, f"results/regrouped/{CATEGORY}")
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    (tmp_path / "test-config.yaml").write_text(yaml.safe_dump(config))
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
        "--configfile", str(REPO / "config.yaml"), str(tmp_path / "test-config.yaml"),
        "--cores", "2", "--resources", "gpu=1", "--nolock", TARGET,
    ]  # fmt: skip
    log = tmp_path / "logs/train" / f"{CATEGORY}.log"
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180
    try:
        while not (log.exists() and re.search(r"epoch 3/", log.read_text())):
            assert process.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "training never reached epoch 3"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_log = log.read_text()
    finished = len(re.findall(r"epoch \d+/\d+ \[", killed_log))
    assert not (tmp_path / TARGET).exists()
    assert (tmp_path / f"results/models/{CATEGORY}/.backup").is_dir()

    rerun = run_snakemake(tmp_path, config, TARGET, extra=("--rerun-incomplete",))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = re.search(r"resuming from .*: (\d+) epoch\(s\) finished", log.read_text())
    assert resumed, log.read_text()[-2000:]
    assert int(resumed.group(1)) >= finished - 1 >= 2  # at most the epoch being run is lost
    history = pd.read_csv(tmp_path / f"results/models/{CATEGORY}/history.csv")
    assert history["epoch"].tolist() == list(range(len(history)))
    assert len(history) == 12


def test_same_seed_gives_the_same_split_and_history_on_cpu(tmp_path: Path) -> None:
    runs = []
    for name in ("first", "second"):
        workdir = tmp_path / name
        result = run_snakemake(workdir, training_config(epochs=3), TARGET)
        assert result.returncode == 0, result.stderr[-3000:]
        models = workdir / "results/models" / CATEGORY
        split = pd.read_csv(models / "split.csv")
        split["image"] = split["image"].str.replace(str(workdir), "", regex=False)
        runs.append((split, pd.read_csv(models / "history.csv")))
    (split_a, history_a), (split_b, history_b) = runs
    pd.testing.assert_frame_equal(split_a, split_b)
    pd.testing.assert_frame_equal(history_a, history_b, check_exact=False, rtol=1e-5)
