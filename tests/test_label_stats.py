"""Label-statistics figures: distribution before/after regrouping and per-label preview grids."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashionai.attributes import classes, slugify
from fashionai.plots.label_stats import (
    DPI,
    load_thumbnail,
    plot_label_distribution,
    plot_preview_grids,
)
from fashionai.synthetic import render_image

CATEGORY = "sleeve_length_labels"
COUNTS = {"Invisible": 3, "Sleeveless": 4, "Cup Sleeves": 1, "Short Sleeves": 10,
          "Elbow Sleeves": 2, "3/4 Sleeves": 0, "Wrist Length": 2, "Long Sleeves": 5,
          "Extra Long Sleeves": 1}  # fmt: skip
GROUPS = {
    "Sleeveless": ["Sleeveless"],
    "Short Sleeves": ["Cup Sleeves", "Short Sleeves"],
    "Elbow Sleeves": ["Elbow Sleeves", "3/4 Sleeves"],
    "Long Sleeves": ["Wrist Length", "Long Sleeves", "Extra Long Sleeves"],
}


def write_labels(tree: Path, groups: dict[str, list[str]], dropped: list[str]) -> None:
    entries = [
        {"index": i, "slug": slugify(name), "name": name, "members": members}
        for i, (name, members) in enumerate(groups.items())
    ]
    counts = {
        e["slug"]: sum(1 for p in (tree / e["slug"]).iterdir() if not p.name.startswith("."))
        for e in entries
    }
    labels = {"category": CATEGORY, "classes": entries, "dropped": dropped, "counts": counts}
    (tree / "labels.json").write_text(json.dumps(labels))


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """A sleeve tree (with odd files in Short Sleeves) and its regrouped tree (hard links)."""
    rng = np.random.default_rng(0)
    tree = tmp_path / "trees" / CATEGORY
    for k, name in enumerate(classes(CATEGORY)):
        folder = tree / slugify(name)
        folder.mkdir(parents=True)
        for i in range(COUNTS[name]):
            image = Image.fromarray(render_image(CATEGORY, k, rng, 48))
            path = folder / f"{k:02d}{i:030x}.jpg"
            image.save(path, "JPEG", quality=90)
    odd = tree / "short_sleeves"
    (odd / f"{'e' * 32}.jpg").write_bytes(b"")  # zero bytes
    (odd / f"{'f' * 32}.jpg").write_bytes(b"not an image at all")
    (odd / f"._{'0' * 30}00.jpg").write_bytes(b"\x00\x05\x16\x07")  # macOS sidecar: skipped
    Image.new("RGB", (40, 30), "blue").save(odd / f"{'a' * 32}.jpg", "PNG")
    Image.new("L", (30, 40), 128).save(odd / f"{'b' * 32}.jpg", "JPEG")
    write_labels(tree, {n: [n] for n in classes(CATEGORY)}, [])

    regrouped = tmp_path / "regrouped" / CATEGORY
    for name, members in GROUPS.items():
        folder = regrouped / slugify(name)
        folder.mkdir(parents=True)
        for member in members:
            for path in (tree / slugify(member)).iterdir():
                if not path.name.startswith("."):
                    os.link(path, folder / path.name)
    write_labels(regrouped, GROUPS, ["Invisible"])
    return tree, regrouped


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_label_distribution(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, regrouped = trees
    out = tmp_path / "plots" / "label_distribution.png"
    plot_label_distribution(tree, regrouped, out)
    width, height = png_size(out)
    assert width >= 13 * DPI - 2 and height >= 5 * DPI
    with Image.open(out) as image:
        assert np.asarray(image.convert("L")).std() > 10  # not blank


def test_label_distribution_without_regrouping(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, _ = trees
    out = tmp_path / "same.png"
    plot_label_distribution(tree, tree, out)
    assert png_size(out)[0] > 1000


def test_label_distribution_rejects_other_category(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    tree, regrouped = trees
    labels = json.loads((regrouped / "labels.json").read_text())
    labels["category"] = "coat_length_labels"
    (regrouped / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ValueError, match="coat_length_labels"):
        plot_label_distribution(tree, regrouped, tmp_path / "x.png")


def test_preview_grids(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, regrouped = trees
    out = tmp_path / "preview"
    paths = plot_preview_grids(tree, out, per_label=9, seed=3)
    assert paths == [out / f"{slugify(n)}.png" for n in classes(CATEGORY)]
    sizes = {p.stem: png_size(p) for p in paths}
    empty = sizes["3_4_sleeves"]  # no images: a small "no images" figure
    assert empty == (round(6 * DPI), round(3 * DPI))
    full = sizes["short_sleeves"]  # 10 images + 4 odd files: a full 3x3 grid, with odd tiles
    assert full[0] > 700 and full[1] > full[0]
    single = sizes["cup_sleeves"]  # one tile
    assert single != empty and single[1] < full[1]

    regrouped_paths = plot_preview_grids(regrouped, tmp_path / "regrouped", per_label=4)
    assert [p.stem for p in regrouped_paths] == [slugify(n) for n in GROUPS]
    for path in regrouped_paths:
        assert png_size(path)[0] > 500


def test_unreadable_images_become_tiles(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, _ = trees
    odd = tree / "short_sleeves"
    for path in odd.iterdir():
        if path.name.startswith("0"):
            path.unlink()  # leave only the odd files
    assert load_thumbnail(odd / f"{'e' * 32}.jpg") is None
    paths = plot_preview_grids(tree, tmp_path / "odd", per_label=9)
    assert paths[3].stem == "short_sleeves"
    width, height = png_size(paths[3])
    assert (width, height) != (round(6 * DPI), round(3 * DPI))  # not the "no images" figure
    assert height < width  # 4 tiles: two rows of a 3-column grid
    with Image.open(paths[3]) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    red_text = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    assert red_text.sum() > 50  # the "unreadable" placeholder text


def test_preview_is_seeded(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, _ = trees

    def pixels(folder: str, seed: int) -> np.ndarray:
        (path,) = [
            p for p in plot_preview_grids(tree, tmp_path / folder, per_label=2, seed=seed)
            if p.stem == "short_sleeves"
        ]  # fmt: skip
        with Image.open(path) as image:
            return np.asarray(image)

    assert np.array_equal(pixels("a", 1), pixels("b", 1))


def test_load_thumbnail(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.fromarray(render_image("coat_length_labels", 3, np.random.default_rng(0), 512)).save(big)
    thumb = load_thumbnail(big, 100)
    assert thumb is not None and thumb.shape[2] == 3 and max(thumb.shape[:2]) <= 100

    png = tmp_path / "png.jpg"
    Image.new("RGB", (20, 10), "blue").save(png, "PNG")
    assert load_thumbnail(png).shape == (10, 20, 3)
    gray = tmp_path / "gray.jpg"
    Image.new("L", (16, 16), 10).save(gray, "JPEG")
    assert load_thumbnail(gray).shape == (16, 16, 3)

    buffer = io.BytesIO()
    Image.fromarray(render_image("coat_length_labels", 3, np.random.default_rng(0), 64)).save(
        buffer, "JPEG"
    )
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (truncated, empty, tmp_path / "missing.jpg"):
        assert load_thumbnail(path) is None
