"""End to end through snakemake: generated archives -> regrouped label folders and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fashionai.attributes import ATTRIBUTES, slugify
from fashionai.outputs import PREVIEW_SUFFIX
from fashionai.regrouping import plan_regroup
from tests.workflow_helpers import CONFIG_REGROUP, run_snakemake, tiny_config

pytestmark = pytest.mark.slow

# One regular image per class of every category (each fault of the generator is still there): the
# accounting below holds row by row, and each image costs the jobs of eight categories time.
DATA_CONFIG = tiny_config(synthetic={"images_per_class": 1})


@pytest.fixture(scope="module")
def data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("data-run")
    result = run_snakemake(workdir, DATA_CONFIG, "data")
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


def expected_counts(workdir: Path) -> pd.Series:
    """Images per (attribute, official class) that the generator says must be used."""
    manifest = pd.read_csv(workdir / "resources/synthetic/manifest.csv")
    used = manifest[manifest["expected"] == "used"]
    return used.groupby(["attribute", "class_index"]).size()


def test_every_row_is_used_or_rejected_with_the_expected_reason(data_run: Path) -> None:
    manifest = pd.read_csv(data_run / "resources/synthetic/manifest.csv")
    merged = pd.read_csv(data_run / "results/labels/merged.csv")
    decoded = pd.read_csv(data_run / "results/labels/decoded.csv")
    rejected = pd.read_csv(data_run / "results/labels/rejected.csv")
    assert len(merged) == len(manifest)
    assert decoded["source_rows"].sum() + len(rejected) == len(merged)
    assert len(decoded) == (manifest["expected"] == "used").sum()
    faults = manifest[~manifest["expected"].isin(["used", "duplicate"])]
    assert len(rejected) == len(faults)
    reasons = {
        "wrong_length": "code length",
        "no_y": "no y",
        "multiple_y": "more than one y",
        "unknown_attribute": "unknown attribute",
        "image_missing": "image missing",
        "image_unreadable": "image unreadable",
        "conflicting_codes": "different codes",
    }
    for expected, count in faults["expected"].value_counts().items():
        matched = rejected["reason"].str.contains(reasons[expected], regex=False).sum()
        assert matched == count, (expected, rejected["reason"].tolist())
    log = (data_run / "logs/labels/decode_labels.log").read_text()
    assert f"of {len(merged):,} read" in log


def test_trees_hold_exactly_the_expected_images_as_hard_links(data_run: Path) -> None:
    counts = expected_counts(data_run)
    for category, names in ATTRIBUTES.items():
        tree = data_run / "results/trees" / category
        labels = json.loads((tree / "labels.json").read_text())
        assert [c["name"] for c in labels["classes"]] == list(names)
        for index, name in enumerate(names):
            files = list((tree / slugify(name)).iterdir())
            assert len(files) == counts.get((category, index), 0), (category, name)
            assert all(f.stat().st_nlink >= 2 for f in files)


def test_regrouped_trees_follow_the_default_merges_and_drops(data_run: Path) -> None:
    counts = expected_counts(data_run)
    for category, names in ATTRIBUTES.items():
        plan = plan_regroup(category, CONFIG_REGROUP.get(category))
        root = data_run / "results/regrouped" / category
        labels = json.loads((root / "labels.json").read_text())
        assert [c["name"] for c in labels["classes"]] == [g.name for g in plan.groups]
        for group in plan.groups:
            expected = sum(counts.get((category, names.index(m)), 0) for m in group.members)
            assert len(list((root / group.slug).iterdir())) == expected, (category, group)
    sleeve = data_run / "results/regrouped/sleeve_length_labels"
    assert json.loads((sleeve / "labels.json").read_text())["dropped"] == ["Invisible"]
    assert not (sleeve / "invisible").exists()


def test_label_statistics_figures_exist(data_run: Path) -> None:
    """One label_statistics job per category wrote both figures."""
    for category, names in ATTRIBUTES.items():
        plots = data_run / "results/plots" / category
        assert (plots / "label_distribution.png").stat().st_size > 10_000
        previews = sorted(p.name for p in (plots / "previews").glob(f"*{PREVIEW_SUFFIX}"))
        assert previews == sorted(f"{slugify(n)}{PREVIEW_SUFFIX}" for n in names)
        sizes = set()
        for name in previews:
            with Image.open(plots / "previews" / name) as image:
                assert image.format == "JPEG"
                sizes.add(image.size)
        assert len(sizes) == 1  # every preview grid of a category has the same size
        log = (data_run / "logs/plots" / category / "label_statistics.log").read_text()
        assert "label_distribution.png" in log
        assert f"wrote {len(names)} preview grids" in log


def test_a_rerun_has_nothing_to_do(data_run: Path) -> None:
    result = run_snakemake(data_run, DATA_CONFIG, "data", extra=("--dry-run",))
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
