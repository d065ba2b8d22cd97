"""Running the Snakemake workflow from tests, in a scratch working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from snakemake.utils import update_config

REPO = Path(__file__).resolve().parents[1]
# tests/bin/nvidia-smi lists $FASHIONAI_FAKE_GPUS stand-in GPUs (default 2) that do not exist.
STAND_IN_GPUS = REPO / "tests" / "bin"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
# The regrouping a user gets by default: the regroup: block of the repository's config.yaml.
CONFIG_REGROUP: dict = yaml.safe_load((REPO / "config.yaml").read_text())["regroup"]


def tiny_config(**overrides: object) -> dict:
    """A demo-like configuration small enough for a test: 32 px images, a few per class."""
    config: dict = {
        "archives": [
            "resources/synthetic/fashionAI_attributes_train_20180222.tar",
            "resources/synthetic/warm_up_train_20180201.tar",
            "resources/synthetic/fashionAI_attributes_train2.zip",
        ],
        "questions": None,
        "synthetic": {
            "out_dir": "resources/synthetic",
            "images_per_class": 3,
            "image_size": 32,
            "seed": 117,
            "faults": True,
            "questions_per_attribute": 4,
        },
        "train": {
            "backbone": "SmallCNN",
            "weights": None,
            "image_size": 32,
            "batch_size": 8,
            "epochs": 2,
            "patience": 2,
            "gpus": 1,
            "threads": 1,
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def workflow_config(**overrides: object) -> dict:
    """The configuration the workflow sees for ``tiny_config(**overrides)``: config.yaml with
    the test's file merged over it key by key (Snakemake's rule for later --configfile files),
    before validation fills the defaults in."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, tiny_config(**overrides))
    return config


def run_snakemake(
    workdir: Path,
    config: dict,
    *targets: str,
    extra: tuple[str, ...] = (),
    env: dict[str, str | None] | None = None,
) -> subprocess.CompletedProcess:
    """Run the workflow with config.yaml overridden by ``config``, in this environment updated
    with ``env`` (None: unset); output captured as text."""
    workdir.mkdir(parents=True, exist_ok=True)
    override = workdir / "test-config.yaml"
    override.write_text(yaml.safe_dump(config))
    command = [
        str(SNAKEMAKE),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(REPO / "config.yaml"), str(override),
        "--cores", "2",
        "--resources", "gpu=1",
        "--nolock",
        *extra,
        *targets,
    ]  # fmt: skip
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    environ = {name: value for name, value in environ.items() if value is not None}
    return subprocess.run(command, capture_output=True, text=True, env=environ, check=False)


def stand_in_gpus(lock_dir: Path, count: int = 2) -> dict[str, str]:
    """The environment of a workflow on a machine with ``count`` stand-in GPUs (tests/bin's
    nvidia-smi first on PATH; locks in ``lock_dir``, polled every 0.1 s)."""
    return {
        "PATH": f"{STAND_IN_GPUS}{os.pathsep}{os.environ['PATH']}",
        "FASHIONAI_FAKE_GPUS": str(count),
        "FASHIONAI_GPU_LOCK_DIR": str(lock_dir),
        "FASHIONAI_GPU_POLL_SECONDS": "0.1",
    }
