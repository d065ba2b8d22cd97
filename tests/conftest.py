"""The one full workflow run the end-to-end tests share (tests/test_workflow_train.py and the
tests that check what its outputs say), made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import run_snakemake, tiny_config

FULL_RUN_CATEGORIES = ["collar_design_labels", "sleeve_length_labels"]


def full_run_config() -> dict:
    """Three experiments of every shape on two categories, their ensemble and a submission:

    - ``default``: a random network trained whole (one phase, BatchNorm training), flip;
    - ``wide``: the same at another input size;
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
            "wide": {"image_size": 40},
            "frozen": {"fine_tune": False, "maybe_labels": "soft", "learning_rate": 0.01},
        },
        ensemble={"members": ["default", "wide"], "tta": True},
    )


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of one complete run of :func:`full_run_config`."""
    workdir = tmp_path_factory.mktemp("full-run")
    result = run_snakemake(workdir, full_run_config())
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir
