"""The one full workflow run the end-to-end tests share (tests/test_workflow_train.py), made once
per session; the test order (the files that wait longest on one run first); and the
``--all-backbones`` option: the tests marked ``all_backbones`` (every ``keras.applications``
backbone built and checked against Keras, minutes) run only with it (``make test-backbones``);
every other run checks a representative set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import run_snakemake, stand_in_gpus, tiny_config

# One category: its regrouping merges and drops labels. Several categories in one run are the
# Slurm test's (two).
FULL_RUN_CATEGORIES = ["sleeve_length_labels"]
TERMINAL_FILE = "terminal.txt"  # what the full run printed, beside its results
# The files that take longest, longest first (`--durations=0`, summed per file), so that
# `make test` (`pytest -n 4 --dist loadfile --no-loadscope-reorder`) starts them at once and the
# short files fill the time behind them. The first two each wait minutes on one workflow run (a
# Slurm cluster's, with the CPU mostly idle; the shared full run's).
LONGEST_FIRST = (
    "test_slurm.py",
    "test_workflow_train.py",
    "test_hardening_training.py",
    "test_training_run.py",
    "test_training_backbones.py",
    "test_training_targets.py",
    "test_workflow_data.py",
    "test_hardening_interrupt.py",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all-backbones",
        action="store_true",
        help="also build and check every keras.applications backbone (make test-backbones)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: order.get(item.path.name, len(order)))  # stable within a file
    if config.getoption("--all-backbones"):
        return
    every = [item for item in items if "all_backbones" in item.keywords]
    if every:
        config.hook.pytest_deselected(items=every)
        items[:] = [item for item in items if "all_backbones" not in item.keywords]


def full_run_config() -> dict:
    """Three experiments of every shape on one category, their ensemble and a submission:

    - ``default``: a random network trained whole (one phase, BatchNorm training), flip;
    - ``wide``: the same at another input size, as two fold members (``train.folds``);
    - ``frozen``: a frozen random backbone whose head trains on rule features' cache, on soft
      targets from the ``m`` codes of decoded.csv.
    """
    return tiny_config(
        categories=FULL_RUN_CATEGORIES,
        questions="resources/synthetic/fashionAI_attributes_test_a_20180222.tar",
        synthetic={"images_per_class": 8},  # a test image per class
        train={"fine_tune": True, "epochs": 3, "augmentations": ["flip"]},
        eval={"tta": True},
        experiments={
            "wide": {"image_size": 40, "folds": 2},
            "frozen": {"fine_tune": False, "maybe_labels": "soft", "learning_rate": 0.01},
        },
        ensemble={"members": ["default", "wide"], "tta": True},
    )


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of one complete run of :func:`full_run_config`."""
    workdir = tmp_path_factory.mktemp("full-run")
    # On two stand-in GPUs, two TensorFlow jobs at a time (tests/test_workflow_train.py checks
    # that they never share one). The later --resources wins; --nolock ends its values.
    env = {**stand_in_gpus(workdir / "gpu-locks"), "CUDA_VISIBLE_DEVICES": None}
    extra = ("--resources", "gpu=2", "--nolock")
    result = run_snakemake(workdir, full_run_config(), extra=extra, env=env)
    assert result.returncode == 0, result.stderr[-6000:]
    (workdir / TERMINAL_FILE).write_text(result.stdout + result.stderr)
    return workdir
