"""Label-statistics figures: distribution before/after regrouping and per-label preview grids.

The figures are read back from their artists: the bars' lengths, the tick labels, the tiles'
images and captions.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from demo.synthetic import render_image
from fashionai.attributes import classes, slugify
from fashionai.outputs import PREVIEW_SUFFIX
from fashionai.plots import label_stats
from fashionai.plots.label_stats import (
    load_tile,
    plot_label_distribution,
    plot_preview_grids,
    preview_figure,
)

CATEGORY = "sleeve_length_labels"
COUNTS = {
    "Invisible": 3,
    "Sleeveless": 4,
    "Cup Sleeves": 1,
    "Short Sleeves": 10,
    "Elbow Sleeves": 2,
    "3/4 Sleeves": 0,
    "Wrist Length": 2,
    "Long Sleeves": 5,
    "Extra Long Sleeves": 1,
}
GROUPS = {
    "Sleeveless": ["Sleeveless"],
    "Short Sleeves": ["Cup Sleeves", "Short Sleeves"],
    "Elbow Sleeves": ["Elbow Sleeves", "3/4 Sleeves"],
    "Long Sleeves": ["Wrist Length", "Long Sleeves", "Extra Long Sleeves"],
}
ODD = {  # extra files in Short Sleeves: name -> (width, height) or None if unreadable
    f"{'a' * 32}.jpg": (40, 30),  # PNG data behind a .jpg name
    f"{'b' * 32}.jpg": (30, 40),  # grayscale JPEG
    f"{'e' * 32}.jpg": None,  # zero bytes
    f"{'f' * 32}.jpg": None,  # not an image at all
}


def write_labels(tree: Path, groups: dict[str, list[str]], dropped: list[str]) -> None:
    entries = [
        {"index": i, "slug": slugify(name), "name": name, "members": members}
        for i, (name, members) in enumerate(groups.items())
    ]
    counts = {e["slug"]: 0 for e in entries}  # the figures count the files themselves
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
            image.save(folder / f"{k:02d}{i:030x}.jpg", "JPEG", quality=90)
    odd = tree / "short_sleeves"
    (odd / f"{'e' * 32}.jpg").write_bytes(b"")
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


def bars(ax) -> tuple[list[str], list[int]]:
    """The tick labels and bar lengths of a horizontal bar chart, top to bottom."""
    return [t.get_text() for t in ax.get_yticklabels()], [int(p.get_width()) for p in ax.patches]


def test_label_distribution_bars_are_the_tree_counts(trees, tmp_path: Path) -> None:
    tree, regrouped = trees
    out = tmp_path / "plots" / "label_distribution.png"
    fig = plot_label_distribution(tree, regrouped, out)
    before, after = fig.axes
    # Before: every official class in official order, as many images as its folder holds.
    assert bars(before) == (list(classes(CATEGORY)), [3, 4, 1, 14, 2, 0, 2, 5, 1])
    assert [p.get_hatch() for p in before.patches] == ["//"] + [None] * 8  # Invisible dropped
    assert before.get_title() == "Before regrouping: 9 labels, 32 images"
    # After: the groups with their merged labels, then the dropped label with its images.
    names = [
        "Sleeveless",
        "Short Sleeves\n+ Cup Sleeves",
        "Elbow Sleeves\n+ 3/4 Sleeves",
        "Long Sleeves\n+ Wrist Length, Extra Long Sleeves",
        "Invisible\n(dropped)",
    ]
    assert bars(after) == (names, [4, 15, 2, 8, 3])
    assert after.get_title() == "After regrouping: 4 labels, 29 images (3 dropped)"
    # A merged label's bar has the colour of its group.
    colours = [p.get_facecolor() for p in before.patches]
    assert colours[2] == colours[3] == after.patches[1].get_facecolor()
    assert colours[6] == colours[7] == colours[8] == after.patches[3].get_facecolor()
    assert len(set(colours[1:])) == 4
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width == 1300
    assert sorted(p.name for p in out.parent.iterdir()) == ["label_distribution.png"]


def test_label_distribution_without_regrouping(trees, tmp_path: Path) -> None:
    tree, _ = trees
    fig = plot_label_distribution(tree, tree, tmp_path / "same.png")
    assert bars(fig.axes[0]) == bars(fig.axes[1])
    assert not fig.axes[1].get_title().endswith("dropped)")


def test_label_distribution_rejects_other_category(trees, tmp_path: Path) -> None:
    tree, regrouped = trees
    labels = json.loads((regrouped / "labels.json").read_text())
    labels["category"] = "coat_length_labels"
    (regrouped / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ValueError, match=f"{regrouped}: category 'coat_length_labels'"):
        plot_label_distribution(tree, regrouped, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Path]]]:
    """The (title, paths) of every preview figure drawn."""
    calls = []
    original = label_stats.preview_figure

    def record(title: str, paths: list[Path], per_label: int):
        calls.append((title, paths))
        return original(title, paths, per_label)

    monkeypatch.setattr(label_stats, "preview_figure", record)
    return calls


def test_preview_grids(trees, tmp_path: Path, drawn) -> None:
    tree, _ = trees
    out = tmp_path / "preview"
    paths = plot_preview_grids(tree, out, per_label=9, seed=3)
    # One JPEG per label, in label order, the empty label (3/4 Sleeves) included.
    assert paths == [out / f"{slugify(n)}{PREVIEW_SUFFIX}" for n in classes(CATEGORY)]
    assert sorted(out.iterdir()) == sorted(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview", "regrouped", "trees"]
    sizes = set()
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "JPEG"
            sizes.add(image.size)
    assert sizes == {(720, 810)}  # every grid the same size
    # The HTML report embeds every grid: a full one of nine photos in under 80 kB (PNG: 450 kB).
    assert (out / f"short_sleeves{PREVIEW_SUFFIX}").stat().st_size < 80_000
    titles = {title.split("\n")[0].split(": ")[1]: title for title, _ in drawn}
    assert titles["Short Sleeves"] == f"{CATEGORY}: Short Sleeves\n14 images, 9 chosen at random"
    assert titles["Cup Sleeves"] == f"{CATEGORY}: Cup Sleeves\n1 image"
    assert titles["3/4 Sleeves"] == f"{CATEGORY}: 3/4 Sleeves\n0 images"
    chosen = dict(zip(titles, (p for _, p in drawn), strict=True))
    assert len(chosen["Short Sleeves"]) == 9 and len(set(chosen["Short Sleeves"])) == 9
    assert chosen["Long Sleeves"] == sorted((tree / "long_sleeves").iterdir())
    assert all(p.parent == tree / "short_sleeves" for p in chosen["Short Sleeves"])
    assert not any(p.name.startswith(".") for p in chosen["Short Sleeves"])


def test_preview_titles_name_merged_labels(trees, tmp_path: Path, drawn) -> None:
    _, regrouped = trees
    plot_preview_grids(regrouped, tmp_path / "p", per_label=4)
    assert drawn[3][0] == (
        f"{CATEGORY}: Long Sleeves\n8 images, 4 chosen at random; "
        "merged: Wrist Length, Extra Long Sleeves"
    )


def test_preview_figure_shows_each_image_with_its_caption(trees) -> None:
    folder = trees[0] / "short_sleeves"
    paths = [folder / name for name in ODD]
    fig = preview_figure("the title", paths, per_label=9)
    assert fig.get_suptitle() == "the title"
    assert len(fig.axes) == 9 and not any(ax.axison for ax in fig.axes)
    for ax, (name, size) in zip(fig.axes, ODD.items(), strict=False):
        caption = ax.texts[-1].get_text()
        assert caption.startswith(f"{name[:12]}….jpg\n")
        file_size = (folder / name).stat().st_size
        if size is None:  # a hatched placeholder saying "unreadable", the caption too
            assert not ax.images and ax.patches[0].get_hatch() == "//"
            assert ax.texts[0].get_text() == "unreadable"
            assert caption.endswith(f"\nunreadable, {file_size} bytes")
        else:
            (image,) = ax.images
            assert image.get_array().shape == (size[1], size[0], 3)
            assert caption.endswith(f"\n{size[0]}×{size[1]} px, {file_size} bytes")
            assert not ax.patches
    assert np.array_equal(fig.axes[0].images[0].get_array()[0, 0], [0, 0, 255])
    for ax in fig.axes[len(ODD) :]:  # unused cells stay empty
        assert not ax.images and not ax.texts and not ax.patches


def test_preview_of_an_empty_label() -> None:
    fig = preview_figure("empty", [], per_label=4)
    assert len(fig.axes) == 4 and not any(ax.images or ax.texts for ax in fig.axes)
    assert [t.get_text() for t in fig.texts] == ["empty", "no images"]  # suptitle, then text


def test_preview_is_seeded(trees, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = []

    def record(title: str, paths: list[Path], per_label: int) -> Figure:
        drawn.append(paths)
        return Figure(figsize=(1, 1))  # drawing is not what this test is about

    def chosen(folder: str, seed: int) -> list[list[Path]]:
        drawn.clear()
        plot_preview_grids(tree, tmp_path / folder, per_label=2, seed=seed)
        return list(drawn)

    monkeypatch.setattr(label_stats, "preview_figure", record)
    tree, _ = trees
    assert chosen("a", 1) == chosen("b", 1)
    assert chosen("a", 1) != chosen("c", 2)


def test_preview_failure_leaves_no_folder(trees, tmp_path: Path, monkeypatch) -> None:
    """A job killed or failing halfway leaves the old folder or none, never a partial one."""
    out = tmp_path / "previews"
    calls = []

    def fail_third(title: str, paths: list[Path], per_label: int):
        calls.append(title)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return preview_figure(title, paths, per_label)

    monkeypatch.setattr(label_stats, "preview_figure", fail_third)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_preview_grids(trees[0], out, per_label=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["regrouped", "trees"]


def test_preview_rejects_no_images_per_label(trees, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="per_label must be at least 1, not 0"):
        plot_preview_grids(trees[0], tmp_path / "p", per_label=0)


def test_load_tile(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    Image.fromarray(render_image("coat_length_labels", 3, np.random.default_rng(0), 512)).save(big)
    tile, original = load_tile(big, 100)
    assert original == (512, 512) and tile.shape == (100, 100, 3)
    png = tmp_path / "png.jpg"
    Image.new("RGB", (20, 10), "blue").save(png, "PNG")
    tile, original = load_tile(png, 45)  # small images are not enlarged
    assert original == (20, 10) and tile.shape == (10, 20, 3) and (tile == (0, 0, 255)).all()
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
