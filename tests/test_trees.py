"""Category trees and regrouped trees: hard links, labels.json, atomic writing, errors."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from fashionai import trees
from fashionai.atomic import partial_path
from fashionai.attributes import ATTRIBUTES, slugify
from fashionai.regrouping import plan_regroup
from fashionai.trees import build_category_tree, link_or_copy, read_labels, regroup_tree
from tests.workflow_helpers import CONFIG_REGROUP

SLEEVE = "sleeve_length_labels"


def decoded_rows(root: Path, rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """A decoded table for (attribute, image_name, label_index) rows, with files on disk."""
    records = []
    for attribute, name, index in rows:
        image = root / "extracted" / attribute / name
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(f"{attribute}/{name}".encode())
        records.append(
            {
                "attribute": attribute,
                "image_name": name,
                "image": str(image),
                "label_index": index,
                "label": ATTRIBUTES[attribute][index],
            }
        )
    return pd.DataFrame.from_records(records)


@pytest.fixture
def sleeve_tree(tmp_path) -> tuple[Path, pd.DataFrame]:
    rows = [
        (SLEEVE, "inv1.jpg", 0),
        (SLEEVE, "inv2.jpg", 0),
        (SLEEVE, "cup.jpg", 2),
        (SLEEVE, "short.jpg", 3),
        (SLEEVE, "wrist.jpg", 6),
        (SLEEVE, "long.jpg", 7),
        (SLEEVE, "xlong.jpg", 8),
        ("skirt_length_labels", "skirt.jpg", 1),  # another category: not in this tree
    ]
    decoded = decoded_rows(tmp_path, rows)
    tree = tmp_path / "trees" / SLEEVE
    build_category_tree(decoded, SLEEVE, tree, log=lambda _: None)
    return tree, decoded


def test_link_or_copy_links(tmp_path):
    src, dst = tmp_path / "a.jpg", tmp_path / "b.jpg"
    src.write_bytes(b"image")
    assert link_or_copy(src, dst) is True
    assert dst.stat().st_ino == src.stat().st_ino
    assert src.stat().st_nlink == 2


def test_link_or_copy_copies_across_file_systems(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    src, dst = tmp_path / "a.jpg", tmp_path / "b.jpg"
    src.write_bytes(b"image")
    assert link_or_copy(src, dst) is False
    assert dst.read_bytes() == b"image"
    assert dst.stat().st_ino != src.stat().st_ino


def test_link_or_copy_other_errors_propagate(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.jpg"):
        link_or_copy(tmp_path / "nothere.jpg", tmp_path / "b.jpg")


def test_category_tree(sleeve_tree, tmp_path):
    tree, decoded = sleeve_tree
    slugs = [slugify(name) for name in ATTRIBUTES[SLEEVE]]
    assert sorted(p.name for p in tree.iterdir()) == sorted([*slugs, "labels.json"])
    assert sorted(p.name for p in (tree / "invisible").iterdir()) == ["inv1.jpg", "inv2.jpg"]
    assert list((tree / "sleeveless").iterdir()) == []  # empty classes still have a folder
    linked = tree / "3_4_sleeves"
    assert linked.is_dir()
    for _, row in decoded[decoded.attribute == SLEEVE].iterrows():
        path = tree / slugify(row["label"]) / row["image_name"]
        assert path.stat().st_ino == Path(row["image"]).stat().st_ino
        assert path.stat().st_nlink == 2
    assert not partial_path(tree).exists()
    labels = json.loads((tree / "labels.json").read_text())
    assert labels["category"] == SLEEVE
    assert labels["dropped"] == []
    assert labels["classes"][5] == {
        "index": 5,
        "slug": "3_4_sleeves",
        "name": "3/4 Sleeves",
        "members": ["3/4 Sleeves"],
    }
    assert len(labels["classes"]) == 9
    assert labels["counts"] == {
        "invisible": 2, "sleeveless": 0, "cup_sleeves": 1, "short_sleeves": 1,
        "elbow_sleeves": 0, "3_4_sleeves": 0, "wrist_length": 1, "long_sleeves": 1,
        "extra_long_sleeves": 1,
    }  # fmt: skip
    assert read_labels(tree) == labels


def test_category_tree_returns_counts_logs_and_replaces(tmp_path):
    decoded = decoded_rows(tmp_path, [("skirt_length_labels", "a.jpg", 1)])
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "stale.txt").write_text("old")
    partial_path(tmp_path / "tree").mkdir()  # left over by a killed run
    messages: list[str] = []
    counts = build_category_tree(decoded, "skirt_length_labels", tree, log=messages.append)
    assert counts["short_length"] == 1 and sum(counts.values()) == 1
    assert not (tree / "stale.txt").exists()
    assert not partial_path(tmp_path / "tree").exists()
    text = "\n".join(messages)
    assert "1 hard-linked, 0 copied" in text
    assert "short_length (Short Length): 1 images" in text


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([("skirt_length_labels", "a.jpg", 6)], "label_index outside 0..5"),
        ([("skirt_length_labels", "a.jpg", 1)] * 2, "image_name appears twice"),
        ([("skirt_length_labels", "..", 1)], "not a plain file name"),
    ],
)
def test_category_tree_bad_rows(tmp_path, rows, words):
    decoded = decoded_rows(tmp_path / "x", [(r[0], f"{i}.jpg", 1) for i, r in enumerate(rows)])
    decoded["image_name"] = [r[1] for r in rows]
    decoded["label_index"] = [r[2] for r in rows]
    with pytest.raises(ValueError, match="decoded labels of skirt_length_labels: row") as info:
        build_category_tree(decoded, "skirt_length_labels", tmp_path / "tree", log=print)
    assert words in str(info.value)
    assert not (tmp_path / "tree").exists()
    assert not partial_path(tmp_path / "tree").exists()


def test_category_tree_unknown_category_and_missing_image(tmp_path):
    decoded = decoded_rows(tmp_path, [("skirt_length_labels", "a.jpg", 1)])
    with pytest.raises(KeyError, match="unknown attribute 'hats'"):
        build_category_tree(decoded, "hats", tmp_path / "tree", log=print)
    os.unlink(decoded["image"].iloc[0])
    with pytest.raises(FileNotFoundError, match="a.jpg"):
        build_category_tree(decoded, "skirt_length_labels", tmp_path / "tree", log=print)
    assert not (tmp_path / "tree").exists()
    assert not partial_path(tmp_path / "tree").exists()


def test_regroup_tree(sleeve_tree, tmp_path):
    tree, _ = sleeve_tree
    plan = plan_regroup(SLEEVE, CONFIG_REGROUP[SLEEVE])
    out = tmp_path / "regrouped" / SLEEVE
    messages: list[str] = []
    counts = regroup_tree(tree, out, plan, log=messages.append)
    assert counts == {"sleeveless": 0, "short_sleeves": 2, "elbow_sleeves": 0, "long_sleeves": 3}
    assert sorted(p.name for p in out.iterdir()) == sorted([*counts, "labels.json"])
    assert sorted(p.name for p in (out / "long_sleeves").iterdir()) == [
        "long.jpg", "wrist.jpg", "xlong.jpg"
    ]  # fmt: skip
    original = tree / "wrist_length" / "wrist.jpg"
    assert (out / "long_sleeves/wrist.jpg").stat().st_ino == original.stat().st_ino
    assert original.stat().st_nlink == 3  # extracted file, category tree, regrouped tree
    assert not any((out / slug / "inv1.jpg").exists() for slug in counts)
    assert "dropped Invisible: 2 images left out" in "\n".join(messages)
    labels = read_labels(out)
    assert labels == {
        "category": SLEEVE,
        "classes": [
            {"index": 0, "slug": "sleeveless", "name": "Sleeveless", "members": ["Sleeveless"]},
            {"index": 1, "slug": "short_sleeves", "name": "Short Sleeves",
             "members": ["Cup Sleeves", "Short Sleeves"]},
            {"index": 2, "slug": "elbow_sleeves", "name": "Elbow Sleeves",
             "members": ["Elbow Sleeves", "3/4 Sleeves"]},
            {"index": 3, "slug": "long_sleeves", "name": "Long Sleeves",
             "members": ["Wrist Length", "Long Sleeves", "Extra Long Sleeves"]},
        ],
        "dropped": ["Invisible"],
        "counts": counts,
    }  # fmt: skip
    assert not partial_path(tmp_path / "regrouped" / SLEEVE).exists()


def test_regroup_identity_copies_the_tree_shape(sleeve_tree, tmp_path):
    tree, _ = sleeve_tree
    out = tmp_path / "same"
    regroup_tree(tree, out, plan_regroup(SLEEVE, None), log=lambda _: None)
    assert read_labels(out) == read_labels(tree)


def test_regroup_errors(sleeve_tree, tmp_path):
    tree, _ = sleeve_tree
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="category 'sleeve_length_labels' does not match"):
        regroup_tree(tree, out, plan_regroup("skirt_length_labels", None), log=print)
    # the same image name in two labels that merge: impossible from decoding, caught anyway
    os.link(tree / "long_sleeves/long.jpg", tree / "wrist_length/long.jpg")
    plan = plan_regroup(SLEEVE, CONFIG_REGROUP[SLEEVE])
    with pytest.raises(ValueError, match="image 'long.jpg' is in both") as info:
        regroup_tree(tree, out, plan, log=print)
    assert "merge into 'Long Sleeves'" in str(info.value)
    assert not out.exists() and not partial_path(tmp_path / "out").exists()


def test_read_labels_errors(sleeve_tree, tmp_path):
    tree, _ = sleeve_tree
    with pytest.raises(FileNotFoundError, match="labels.json: missing"):
        read_labels(tmp_path)
    path = tree / "labels.json"
    good = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: not valid JSON"):
        read_labels(tree)
    cases = [
        ({**good, "classes": "x"}, "classes: missing or not a list"),
        ({**good, "counts": {**good["counts"], "extra": 1}}, "counts: keys"),
        ({**good, "counts": {**good["counts"], "invisible": -1}}, "counts.invisible"),
        ({k: v for k, v in good.items() if k != "category"}, "category: missing"),
        ({**good, "classes": [{**good["classes"][0], "index": 3}]}, "classes[0].index"),
        ({**good, "classes": [{**good["classes"][0], "slug": ""}]}, "classes[0].slug"),
    ]
    for labels, words in cases:
        path.write_text(json.dumps(labels))
        with pytest.raises(ValueError) as info:
            read_labels(tree)
        assert str(path) in str(info.value)
        assert words in str(info.value)


def test_progress_is_logged(tmp_path, monkeypatch):
    monkeypatch.setattr(trees, "_PROGRESS_EVERY", 2)
    decoded = decoded_rows(tmp_path, [("skirt_length_labels", f"{i}.jpg", 1) for i in range(5)])
    messages: list[str] = []
    build_category_tree(decoded, "skirt_length_labels", tmp_path / "t", log=messages.append)
    assert sum("images so far" in m for m in messages) == 2
