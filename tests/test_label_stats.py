"""Label-statistics figures: distribution before/after regrouping and per-label preview grids."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo.synthetic import render_image
from fashionai.attributes import classes, slugify
from fashionai.plots.label_stats import (
    DPI,
    PreviewLayout,
    load_tile,
    plot_label_distribution,
    plot_preview_grids,
    tile_caption,
)

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


def png_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(int)


def crop(pixels: np.ndarray, layout: PreviewLayout, x: int, y: int, w: int, h: int) -> np.ndarray:
    """The PNG pixels of the mosaic rectangle (x, y, w, h)."""
    left, top = layout.mosaic_left + x, layout.mosaic_top + y
    return pixels[top : top + h, left : left + w]


def ink(pixels: np.ndarray) -> np.ndarray:
    """Text (or other dark) pixels."""
    return pixels.max(axis=-1) < 160


def red(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)


def test_preview_grids(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, regrouped = trees
    out = tmp_path / "preview"
    paths = plot_preview_grids(tree, out, per_label=9, seed=3)
    # One PNG per label, in label order, the empty label (3/4 Sleeves) included.
    assert paths == [out / f"{slugify(n)}.png" for n in classes(CATEGORY)]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    # Every grid has the same size: 3 columns of 192 px tiles, captions, a title.
    layout = PreviewLayout.for_count(9)
    assert (layout.cols, layout.rows) == (3, 3)
    assert layout.figure_size == (3 * 192 + 2 * 12 + 2 * 14, 74 + 3 * (192 + 34) + 2 * 12 + 14)
    assert {png_size(p) for p in paths} == {layout.figure_size}

    regrouped_paths = plot_preview_grids(regrouped, tmp_path / "regrouped", per_label=4)
    assert [p.stem for p in regrouped_paths] == [slugify(n) for n in GROUPS]
    small = PreviewLayout.for_count(4)
    assert (small.cols, small.rows) == (2, 2) and small.figure_size[0] == 480  # title room
    assert {png_size(p) for p in regrouped_paths} == {small.figure_size}


def test_preview_mosaic_holds_the_thumbnails(trees: tuple[Path, Path], tmp_path: Path) -> None:
    """A tile is the image's own pixels, each enlarged to a block, drawn without resampling."""
    tree, _ = trees
    paths = plot_preview_grids(tree, tmp_path / "p", per_label=9, seed=3)
    layout = PreviewLayout.for_count(9)
    # Wrist Length: 2 images of 48 px, shown in cells 0 and 1 at 4x, each pixel a 4x4 block.
    (wrist,) = [p for p in paths if p.stem == "wrist_length"]
    pixels = png_pixels(wrist)
    for i, image in enumerate(sorted((tree / "wrist_length").iterdir())):
        tile, original = load_tile(image)
        assert original == (48, 48)
        source = np.asarray(Image.open(image).convert("RGB"))
        expected = source.repeat(4, axis=0).repeat(4, axis=1)
        assert np.array_equal(tile, expected)
        x, y = layout.cell(i)
        assert np.array_equal(crop(pixels, layout, x, y, 192, 192), expected)
        caption = crop(pixels, layout, x, y + 192, 192, layout.caption)
        assert ink(caption).sum() > 100  # file name and size under the tile
        assert not red(caption).any()
    for i in range(2, 9):  # the unused cells and their captions stay white
        x, y = layout.cell(i)
        assert (crop(pixels, layout, x, y, 192, 192 + layout.caption) == 255).all()
    # Titles: category and label, and the image count, above the mosaic.
    header = pixels[: layout.mosaic_top]
    assert ink(header).sum() > 500


def test_preview_of_an_empty_label(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, _ = trees
    (tree / "invisible").rename(tmp_path / "elsewhere")  # a label without a folder at all
    paths = plot_preview_grids(tree, tmp_path / "p", per_label=9)
    layout = PreviewLayout.for_count(9)
    for stem in ("3_4_sleeves", "invisible"):  # an empty folder, a missing folder
        (path,) = [p for p in paths if p.stem == stem]
        assert png_size(path) == layout.figure_size
        pixels = png_pixels(path)
        mosaic = crop(pixels, layout, 0, 0, layout.width, layout.height)
        assert (mosaic == 238).all(axis=-1).sum() < 100  # no tile background (but text edges)
        x, y = layout.width // 2, layout.height // 2
        assert ink(crop(pixels, layout, x - 100, y - 20, 200, 40)).sum() > 200  # "no images"
        assert ink(mosaic).sum() == ink(crop(pixels, layout, x - 100, y - 20, 200, 40)).sum()


def test_unreadable_images_become_tiles(trees: tuple[Path, Path], tmp_path: Path) -> None:
    tree, _ = trees
    odd = tree / "short_sleeves"
    for path in odd.iterdir():
        if path.name.startswith("0"):
            path.unlink()  # leave only the odd files: aaa (PNG data), bbb (grey), eee, fff
    assert load_tile(odd / f"{'e' * 32}.jpg") is None
    paths = plot_preview_grids(tree, tmp_path / "odd", per_label=9)
    assert paths[3].stem == "short_sleeves"
    layout = PreviewLayout.for_count(9)
    assert png_size(paths[3]) == layout.figure_size
    pixels = png_pixels(paths[3])
    # Cell 0: the 40x30 blue image at 4x, 160x120, centred on a light grey cell.
    x, y = layout.cell(0)
    assert layout.placement(0, (120, 160)) == (x + 16, y + 36)
    assert (crop(pixels, layout, x + 16, y + 36, 160, 120) == [0, 0, 255]).all()
    assert (crop(pixels, layout, x, y, 192, 36) == 238).all()
    # Cell 1: the 30x40 grey JPEG at 4x, 120x160.
    x, y = layout.cell(1)
    tile = crop(pixels, layout, x + 36, y + 16, 120, 160)
    assert np.abs(tile - 128).max() <= 2 and (crop(pixels, layout, x, y, 36, 192) == 238).all()
    # Cells 2 and 3: the empty and the garbage file, darker placeholders saying "unreadable"
    # in red, also in their caption; the readable tiles have no red.
    for i in (2, 3):
        x, y = layout.cell(i)
        tile = crop(pixels, layout, x, y, 192, 192)
        assert red(tile).sum() > 50 and ((tile == 225).all(axis=-1)).mean() > 0.8
        assert red(crop(pixels, layout, x, y + 192, 192, layout.caption)).sum() > 20
    for i in (0, 1):
        x, y = layout.cell(i)
        assert not red(crop(pixels, layout, x, y, 192, 192 + layout.caption)).any()


def test_tile_captions(tmp_path: Path) -> None:
    image = tmp_path / f"{'c' * 32}.jpg"
    Image.new("RGB", (512, 384), "red").save(image, "JPEG", quality=95)
    size = image.stat().st_size
    assert size > 1024
    assert tile_caption(image, (512, 384)) == ("cccccccc….jpg", f"512×384 px, {size / 1024:.1f} kB")
    empty = tmp_path / "short.jpg"
    empty.write_bytes(b"")
    assert tile_caption(empty, None) == ("short.jpg", "unreadable, 0 bytes")


def test_preview_layout_composes_tiles() -> None:
    layout = PreviewLayout(cols=2, rows=2, tile=8, gap=2, caption=3)
    assert (layout.width, layout.height) == (18, 24)
    assert [layout.cell(i) for i in range(4)] == [(0, 0), (10, 0), (0, 13), (10, 13)]
    wide = np.full((4, 8, 3), 7, np.uint8)
    tall = np.arange(2 * 6 * 3, dtype=np.uint8).reshape(6, 2, 3)
    mosaic = layout.compose([wide, None, tall])
    assert mosaic.shape == (24, 18, 4) and (mosaic[..., 3] == 255).all()
    rgb = mosaic[..., :3]
    assert (rgb[2:6, 0:8] == 7).all()  # centred vertically
    assert (rgb[0:2, 0:8] == 238).all() and (rgb[6:8, 0:8] == 238).all()
    assert (rgb[0:8, 10:18] == 225).all()  # placeholder
    assert np.array_equal(rgb[14:20, 3:5], tall)  # centred horizontally in cell 2
    assert (rgb[13:21, 10:18] == 255).all()  # no tile: white
    assert (rgb[8:13] == 255).all()  # caption rows and gap
    with pytest.raises(ValueError, match="do not fit"):
        layout.compose([None] * 5)
    with pytest.raises(ValueError, match="larger"):
        layout.compose([np.zeros((9, 4, 3), np.uint8)])


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
    assert not np.array_equal(pixels("a", 1), pixels("c", 2))


def test_preview_rejects_no_images_per_label(trees: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="per_label"):
        plot_preview_grids(trees[0], tmp_path / "p", per_label=0)


def test_load_tile(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.fromarray(render_image("coat_length_labels", 3, np.random.default_rng(0), 512)).save(big)
    tile, original = load_tile(big, 100)
    assert original == (512, 512) and tile.shape == (100, 100, 3)

    png = tmp_path / "png.jpg"
    Image.new("RGB", (20, 10), "blue").save(png, "PNG")
    tile, original = load_tile(png, 20)
    assert original == (20, 10) and tile.shape == (10, 20, 3)
    tile, _ = load_tile(png, 45)  # enlarged 2x, not 2.25x: whole blocks
    assert tile.shape == (20, 40, 3) and (tile == (0, 0, 255)).all()
    gray = tmp_path / "gray.jpg"
    Image.new("L", (16, 16), 10).save(gray, "JPEG")
    assert load_tile(gray, 16)[0].shape == (16, 16, 3)

    buffer = io.BytesIO()
    Image.fromarray(render_image("coat_length_labels", 3, np.random.default_rng(0), 64)).save(
        buffer, "JPEG"
    )
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (truncated, empty, tmp_path / "missing.jpg"):
        assert load_tile(path) is None
