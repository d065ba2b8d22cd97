"""Bad configuration is refused before any job runs, with a message naming key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import run_snakemake, tiny_config


def dry_run(tmp_path: Path, **overrides: object):
    return run_snakemake(tmp_path, tiny_config(**overrides), "data", extra=("--dry-run",))


def test_tiny_config_plans(tmp_path: Path) -> None:
    result = dry_run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "make_synthetic" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"train": {"backbone": "ResNet9000"}}, "ResNet9000"),
        ({"train": {"epochs": 0}}, "epochs"),
        ({"train": {"batch_size": -4}}, "batch_size"),
        ({"train": {"validation_split": 1.5}}, "validation_split"),
        ({"train": {"augmentations": ["flip", "zoom"]}}, "zoom"),
        ({"train": {"typo_key": 1}}, "typo_key"),
        ({"categories": ["hat_length_labels"]}, "hat_length_labels"),
        ({"regroup": {"neck_design_labels": {"merge": {"Polo Neck": "Turtle Neck"}}}}, "Polo Neck"),
        ({"regroup": {"sleeve_length_labels": {"drop": ["Very Long"]}}}, "Very Long"),
        ({"archives": ["resources/raw/missing_round.tar"]}, "missing_round.tar"),
        ({"archives": ["resources/raw/labels.rar"]}, "labels.rar"),
        ({"train": {"weights": "resources/weights/nowhere.h5"}}, "nowhere.h5"),
        ({"train": {"weights": "imagenet"}}, "SmallCNN"),
        ({"extract": {"max_ratio": 0}}, "max_ratio"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, overrides, expected: str) -> None:
    result = dry_run(tmp_path, **overrides)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert expected in output, output[-3000:]
    assert not (tmp_path / "results").exists()
