"""Finding annotation files, reading them line by line, merging them across archives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fashionai.annotations import (
    MERGED_COLUMNS,
    find_annotation_files,
    merge_annotations,
    read_annotation_file,
)

ROW = "Images/collar_design_labels/aeac682be9be754a1bcd40528cfee441.jpg,collar_design_labels,nnynn"


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def test_find_annotation_files_anywhere_below_root(tmp_path):
    wanted = [
        write(tmp_path / "base/Annotations/label.csv", ROW),
        write(tmp_path / "outer/train/Annotations/label.csv", ROW),
        write(tmp_path / "web/Annotations/skirt_length_labels.csv", ROW),
    ]
    write(tmp_path / "base/Annotations/._label.csv", b"\x00\x05\x16\x07")
    write(tmp_path / "__MACOSX/base/Annotations/label.csv", ROW)
    write(tmp_path / "base/Images/not_annotations.csv", ROW)
    write(tmp_path / "base/Annotations/readme.txt", "hello")
    write(tmp_path / "base/Annotations/sub/deeper.csv", ROW)  # parent is not Annotations
    assert find_annotation_files(tmp_path) == sorted(wanted)
    assert find_annotation_files(tmp_path / "nothing") == []


def test_read_plain_file(tmp_path):
    path = write(tmp_path / "label.csv", f"{ROW}\n{ROW.replace('nnynn', 'ymnnn')}\n")
    frame = read_annotation_file(path)
    assert list(frame.columns) == ["line", "image_path", "attribute", "code"]
    assert frame["line"].tolist() == [1, 2]
    assert frame["code"].tolist() == ["nnynn", "ymnnn"]
    assert frame["attribute"].tolist() == ["collar_design_labels"] * 2
    assert frame["image_path"].iloc[0].startswith("Images/collar_design_labels/")
    assert frame["line"].dtype == "int64"


def test_read_keeps_every_nonblank_line_with_bom_crlf_header_and_malformed(tmp_path):
    text = (
        "\ufeffimage_path,attribute,label\r\n"  # BOM and a header line
        f"{ROW}\r\n"
        "\r\n"  # blank: not a row
        "  Images/x.jpg , skirt_length_labels ,  nynnnn  \r\n"  # spaces around fields
        "just-one-field\r\n"
        "two,fields\r\n"
        f"{ROW},extra\r\n"  # a fourth field stays in the code
        "   \r\n"
    )
    frame = read_annotation_file(write(tmp_path / "label.csv", text))
    assert frame["line"].tolist() == [1, 2, 4, 5, 6, 7]
    assert frame.iloc[0].tolist() == [1, "image_path", "attribute", "label"]
    assert frame.iloc[1]["code"] == "nnynn"
    assert frame.iloc[2].tolist() == [4, "Images/x.jpg", "skirt_length_labels", "nynnnn"]
    assert frame.iloc[3].tolist() == [5, "just-one-field", "", ""]
    assert frame.iloc[4].tolist() == [6, "two", "fields", ""]
    assert frame.iloc[5]["code"] == "nnynn,extra"


def test_read_old_mac_line_ends(tmp_path):
    frame = read_annotation_file(write(tmp_path / "label.csv", f"{ROW}\r{ROW}\r"))
    assert frame["line"].tolist() == [1, 2]
    assert frame["code"].tolist() == ["nnynn", "nnynn"]


def test_read_file_of_only_short_lines(tmp_path):
    frame = read_annotation_file(write(tmp_path / "label.csv", "a\nb\n"))
    assert frame.values.tolist() == [[1, "a", "", ""], [2, "b", "", ""]]


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff"])
def test_read_empty_file(tmp_path, text):
    frame = read_annotation_file(write(tmp_path / "label.csv", text))
    assert list(frame.columns) == ["line", "image_path", "attribute", "code"]
    assert len(frame) == 0


def test_read_invalid_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path / "label.csv", ROW.encode() + b"\n" + b"Images/\xff.jpg,a,b\n")
    with pytest.raises(ValueError, match="line 2 is not valid UTF-8") as info:
        read_annotation_file(path)
    assert str(path) in str(info.value)


def _archive(root: Path, folder: str, text: str, name: str = "label.csv") -> Path:
    write(root / folder / "Annotations" / name, text)
    return root


def test_merge_annotations(tmp_path):
    first = _archive(tmp_path / "r1", "base", f"{ROW}\nImages/a/b.jpg,skirt_length_labels,nynnnn\n")
    second = _archive(tmp_path / "r2", "nested/train", "x\n../../etc/passwd,a,b\n/abs.jpg,a,b\n")
    merged = merge_annotations([("round1", first), ("round2", second)])
    assert list(merged.columns) == MERGED_COLUMNS
    assert merged["archive"].tolist() == ["round1"] * 2 + ["round2"] * 3
    assert merged["round"].tolist() == [0, 0, 1, 1, 1]
    assert (
        merged["annotation_file"].tolist()
        == ["base/Annotations/label.csv"] * 2 + ["nested/train/Annotations/label.csv"] * 3
    )
    assert merged["line"].tolist() == [1, 2, 1, 2, 3]
    assert merged["image"].iloc[0] == (first / "base" / ROW.split(",")[0]).as_posix()
    assert merged["image"].iloc[1] == (first / "base/Images/a/b.jpg").as_posix()
    # unsafe image paths are kept as rows, with no image
    assert merged["image"].iloc[2] == (second / "nested/train/x").as_posix()
    assert merged["image"].iloc[3:].tolist() == ["", ""]
    assert merged["image_path"].iloc[3] == "../../etc/passwd"
    assert merged["round"].dtype == "int64" and merged["line"].dtype == "int64"


def test_merge_several_files_per_archive_and_backslashes(tmp_path):
    root = _archive(tmp_path / "r1", "base", "Images\\a\\x.jpg,a,b\n")
    _archive(root, "web", "Images/s/y.jpg,skirt_length_labels,nynnnn\n", "skirt_length_labels.csv")
    merged = merge_annotations([("r1", root)])
    assert merged["annotation_file"].tolist() == [
        "base/Annotations/label.csv",
        "web/Annotations/skirt_length_labels.csv",
    ]
    assert merged["image"].tolist() == [
        (root / "base/Images/a/x.jpg").as_posix(),
        (root / "web/Images/s/y.jpg").as_posix(),
    ]


def test_merge_relative_folder_gives_relative_image_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _archive(tmp_path / "results/extracted/r1", "base", f"{ROW}\n")
    merged = merge_annotations([("r1", Path("results/extracted/r1"))])
    assert merged["image"].iloc[0] == "results/extracted/r1/base/" + ROW.split(",")[0]


def test_merge_archive_without_annotations(tmp_path):
    good = _archive(tmp_path / "r1", "base", f"{ROW}\n")
    empty = tmp_path / "r2"
    write(empty / "train/Images/a.jpg", b"x")
    with pytest.raises(ValueError, match="archive r2: no annotation file") as info:
        merge_annotations([("r1", good), ("r2", empty)])
    assert str(empty) in str(info.value)


def test_merge_nothing():
    merged = merge_annotations([])
    assert list(merged.columns) == MERGED_COLUMNS
    assert len(merged) == 0
    assert isinstance(merged, pd.DataFrame)
