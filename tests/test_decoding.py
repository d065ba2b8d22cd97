"""Decoding y/n/m codes, every rejection reason, deduplication across rounds, reconciliation."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fashionai import decoding as d
from fashionai.annotations import MERGED_COLUMNS, merge_annotations

COLLAR = "collar_design_labels"
SKIRT = "skirt_length_labels"


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


class Rows:
    """Builds a merged table whose images live below ``root`` (written unless told not to)."""

    def __init__(self, root: Path) -> None:
        self.root, self.rows = root, []

    def add(
        self, name, attribute, code, *, archive="r1", round_=0, line=None, data=b"jpeg", image=None
    ) -> None:
        image_path = f"Images/{attribute}/{name}" if name else ""
        if image is None:
            image = (self.root / archive / image_path).as_posix() if name else ""
            if data is not None and name:
                Path(image).parent.mkdir(parents=True, exist_ok=True)
                Path(image).write_bytes(jpeg() if data == b"jpeg" else data)
        if line is None:
            line = 1 + sum(r[0] == archive for r in self.rows)
        self.rows.append(
            (
                archive,
                round_,
                "base/Annotations/label.csv",
                line,
                image_path,
                attribute,
                code,
                image,
            )
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=MERGED_COLUMNS)


@pytest.fixture
def rows(tmp_path) -> Rows:
    return Rows(tmp_path)


def test_valid_rows_with_maybes(rows):
    rows.add("b.jpg", COLLAR, "nmnyn")
    rows.add("a.jpg", COLLAR, "ynnnn")
    rows.add("c.jpg", "sleeve_length_labels", "nmnnnnmny")
    merged = rows.frame()
    decoded, rejected = d.decode_labels(merged)
    assert list(decoded.columns) == d.DECODED_COLUMNS
    assert list(rejected.columns) == d.REJECTED_COLUMNS
    assert len(rejected) == 0
    assert decoded["image_name"].tolist() == ["a.jpg", "b.jpg", "c.jpg"]  # sorted
    assert decoded["label_index"].tolist() == [0, 3, 8]
    assert decoded["label"].tolist() == ["Invisible", "Puritan Collar", "Extra Long Sleeves"]
    assert decoded["maybe"].tolist() == ["", "Shirt Collar", "Sleeveless;Wrist Length"]
    assert decoded["code"].tolist() == ["ynnnn", "nmnyn", "nmnnnnmny"]
    assert decoded["archives"].tolist() == ["r1"] * 3
    assert decoded["source_rows"].tolist() == [1, 1, 1]
    assert decoded["image"].iloc[0] == merged["image"].iloc[1]
    assert decoded["label_index"].dtype == "int64"
    assert decoded["source_rows"].dtype == "int64"


@pytest.mark.parametrize(
    ("name", "attribute", "code", "line", "reason"),
    [
        ("image_path", "attribute", "code", 1, d.HEADER),
        ("", "", "", 2, d.MALFORMED),
        ("a.jpg", COLLAR, "", 2, d.MALFORMED),
        ("a.jpg", "", "nnynn", 2, d.MALFORMED),
        ("a.jpg", COLLAR, "nnynn,extra", 2, d.MALFORMED),
        ("a.jpg", "shoe_style_labels", "nynnn", 1, d.UNKNOWN_ATTRIBUTE),
        ("a.jpg", "attribute", "code", 2, d.UNKNOWN_ATTRIBUTE),
        ("a.jpg", COLLAR, "nnYnn", 2, d.BAD_CHARACTER),
        ("a.jpg", COLLAR, "nn?nn", 2, d.BAD_CHARACTER),
        ("a.jpg", COLLAR, "nyn", 2, d.WRONG_LENGTH),
        ("a.jpg", COLLAR, "nnynnn", 2, d.WRONG_LENGTH),
        ("a.jpg", COLLAR, "nnmnn", 2, d.NO_Y),
        ("a.jpg", COLLAR, "nynyn", 2, d.MULTIPLE_Y),
    ],
)
def test_code_rejections(rows, name, attribute, code, line, reason):
    rows.add("ok.jpg", SKIRT, "nynnnn")
    rows.add(name, attribute, code, line=line)
    decoded, rejected = d.decode_labels(rows.frame())
    assert rejected["reason"].tolist() == [reason]
    assert rejected["code"].tolist() == [code]
    assert decoded["image_name"].tolist() == ["ok.jpg"]


def test_rejection_reasons_are_short_and_distinct():
    reasons = [
        d.HEADER,
        d.MALFORMED,
        d.UNKNOWN_ATTRIBUTE,
        d.BAD_CHARACTER,
        d.WRONG_LENGTH,
        d.NO_Y,
        d.MULTIPLE_Y,
        d.UNSAFE_PATH,
        d.CONFLICT_IN_FILE,
        d.CONFLICT_ACROSS_FILES,
        d.IMAGE_MISSING,
        d.IMAGE_UNREADABLE,
    ]
    assert len(set(reasons)) == len(reasons)
    assert all(len(r) < 70 and "," not in r.split("(")[0] for r in reasons)


def test_image_rejections(rows):
    rows.add("missing.jpg", COLLAR, "nnynn", data=None)
    rows.add("empty.jpg", COLLAR, "nnynn", data=b"")
    rows.add("text.jpg", COLLAR, "nnynn", data=b"not an image at all")
    rows.add("cut.jpg", COLLAR, "nnynn", data=jpeg()[:-50])
    rows.add("unsafe.jpg", COLLAR, "nnynn", image="")
    rows.add("good.jpg", COLLAR, "nnynn")
    decoded, rejected = d.decode_labels(rows.frame(), workers=2)
    assert rejected["reason"].tolist() == [
        d.IMAGE_MISSING,
        "image unreadable: empty file",
        "image unreadable: not an image (unknown header)",
        "image unreadable: corrupt or truncated image header (Truncated File Read)",
        d.UNSAFE_PATH,
    ]
    assert decoded["image_name"].tolist() == ["good.jpg"]


def test_image_checks_can_be_skipped(rows):
    rows.add("missing.jpg", COLLAR, "nnynn", data=None)
    rows.add("bad.jpg", COLLAR, "nyynn", data=None)
    decoded, rejected = d.decode_labels(rows.frame(), check_images=False)
    assert decoded["image_name"].tolist() == ["missing.jpg"]
    assert rejected["reason"].tolist() == [d.MULTIPLE_Y]


def test_duplicates_with_the_same_code_become_one_sample(rows):
    rows.add("dup.jpg", COLLAR, "nmynn", archive="r2", round_=1)  # listed first, later round
    rows.add("dup.jpg", COLLAR, "nmynn", archive="r1", round_=0)
    rows.add("dup.jpg", SKIRT, "nynnnn", archive="r1", round_=0)  # other attribute: other key
    merged = rows.frame()
    decoded, rejected = d.decode_labels(merged)
    assert len(rejected) == 0
    assert len(decoded) == 2
    collar = decoded[decoded["attribute"] == COLLAR].iloc[0]
    assert collar["source_rows"] == 2
    assert collar["archives"] == "r1;r2"
    assert collar["image"] == merged["image"].iloc[1]  # the earliest round's copy
    assert collar["maybe"] == "Shirt Collar"
    assert decoded["source_rows"].sum() + len(rejected) == len(merged)


def test_duplicate_whose_earliest_image_is_missing_uses_the_later_one(rows):
    rows.add("dup.jpg", COLLAR, "nnynn", archive="r1", round_=0, data=None)
    rows.add("dup.jpg", COLLAR, "nnynn", archive="r2", round_=1)
    merged = rows.frame()
    decoded, rejected = d.decode_labels(merged)
    assert rejected["reason"].tolist() == [d.IMAGE_MISSING]
    assert decoded["image"].tolist() == [merged["image"].iloc[1]]
    assert decoded["archives"].tolist() == ["r2"]


def test_conflicting_codes_reject_all_rows_of_the_image(rows):
    rows.add("c.jpg", COLLAR, "nnynn", archive="r1", round_=0)
    rows.add("c.jpg", COLLAR, "nnynn", archive="r2", round_=1)
    rows.add("c.jpg", COLLAR, "nynnn", archive="r3", round_=2)
    rows.add("other.jpg", COLLAR, "nynnn", archive="r3", round_=2)
    merged = rows.frame()
    decoded, rejected = d.decode_labels(merged)
    files = "; ".join(f"{archive}/base/Annotations/label.csv" for archive in ("r1", "r2", "r3"))
    why = f"same image with different codes in several label files: {files}"
    assert rejected["reason"].tolist() == [why] * 3
    assert rejected["archive"].tolist() == ["r1", "r2", "r3"]
    assert decoded["image_name"].tolist() == ["other.jpg"]


def test_the_same_image_twice_in_one_label_file_is_not_a_conflict_of_rounds(rows):
    rows.add("c.jpg", COLLAR, "nnynn", archive="r1", round_=0)
    rows.add("c.jpg", COLLAR, "nynnn", archive="r1", round_=0)
    rows.add("c.jpg", COLLAR, "nynnn", archive="r1", round_=0)
    rows.add("d.jpg", COLLAR, "nynnn", archive="r1", round_=0)
    rows.add("d.jpg", COLLAR, "nynnn", archive="r1", round_=0)  # the same code: one sample
    decoded, rejected = d.decode_labels(rows.frame())
    why = "same image listed 3 times in r1/base/Annotations/label.csv with different codes"
    assert rejected["reason"].tolist() == [why] * 3
    assert decoded[["image_name", "source_rows"]].values.tolist() == [["d.jpg", 2]]


def test_conflict_only_counts_rows_with_valid_codes(rows):
    rows.add("c.jpg", COLLAR, "nnynn", archive="r1", round_=0)
    rows.add("c.jpg", COLLAR, "nyynn", archive="r2", round_=1)  # invalid: not a conflict
    decoded, rejected = d.decode_labels(rows.frame())
    assert rejected["reason"].tolist() == [d.MULTIPLE_Y]
    assert decoded["source_rows"].tolist() == [1]


def test_rejected_keeps_merged_columns_and_order(rows):
    rows.add("x.jpg", COLLAR, "nyn")
    rows.add("ok.jpg", COLLAR, "ynnnn")
    rows.add("y.jpg", "nope", "nyn")
    merged = rows.frame()
    _, rejected = d.decode_labels(merged)
    expected = merged.iloc[[0, 2]].reset_index(drop=True)
    pd.testing.assert_frame_equal(rejected[MERGED_COLUMNS], expected, check_dtype=False)
    assert rejected["reason"].tolist() == [d.WRONG_LENGTH, d.UNKNOWN_ATTRIBUTE]


def test_round_trip_through_csv_with_empty_fields(rows, tmp_path):
    rows.add("", "", "", line=3)
    rows.add("a.jpg", COLLAR, "nnynn")
    path = tmp_path / "merged.csv"
    rows.frame().to_csv(path, index=False)
    merged = pd.read_csv(path)  # empty fields come back as NaN
    decoded, rejected = d.decode_labels(merged)
    assert rejected["reason"].tolist() == [d.MALFORMED]
    assert rejected["image_path"].tolist() == [""]
    assert len(decoded) == 1


def test_empty_input(rows):
    merged = rows.frame()
    decoded, rejected = d.decode_labels(merged)
    assert list(decoded.columns) == d.DECODED_COLUMNS and len(decoded) == 0
    assert list(rejected.columns) == d.REJECTED_COLUMNS and len(rejected) == 0
    assert "annotation rows read: 0" in d.reconcile(merged, decoded, rejected)


def test_missing_columns_and_bad_integers(rows):
    rows.add("a.jpg", COLLAR, "nnynn")
    with pytest.raises(KeyError, match=r"\['image'\]"):
        d.decode_labels(rows.frame().drop(columns="image"))
    bad = rows.frame().astype({"line": object})
    bad.loc[0, "line"] = "first"
    with pytest.raises(ValueError, match="'first'"):
        d.decode_labels(bad)


def test_reconcile_report_and_mismatch(rows):
    rows.add("a.jpg", COLLAR, "nnynn", archive="r1", round_=0)
    rows.add("a.jpg", COLLAR, "nnynn", archive="r2", round_=1)
    rows.add("b.jpg", COLLAR, "nnynnn", archive="r2", round_=1)
    rows.add("c.jpg", COLLAR, "nnynn", archive="r2", round_=1, data=None)
    merged = rows.frame()
    decoded, rejected = d.decode_labels(merged)
    report = d.reconcile(merged, decoded, rejected)
    assert "annotation rows read: 4 from 2 archive(s)" in report
    assert "  r1: 1 rows, 0 rejected" in report
    assert "  r2: 3 rows, 2 rejected" in report
    assert "used rows: 2 -> 1 labelled images (1 duplicate rows" in report
    assert f"  {d.WRONG_LENGTH}: 1" in report
    assert f"  {d.IMAGE_MISSING}: 1" in report
    assert "check: 2 used + 2 rejected = 4 of 4 read" in report
    with pytest.raises(ValueError, match="2 used \\+ 1 rejected != 4 rows read"):
        d.reconcile(merged, decoded, rejected.iloc[1:])


def test_from_annotation_files_with_bom_crlf_and_header(tmp_path):
    folder = tmp_path / "extracted" / "train2"
    image_dir = folder / "train/Images" / COLLAR
    image_dir.mkdir(parents=True)
    (image_dir / "a.jpg").write_bytes(jpeg())
    (image_dir / "b.jpg").write_bytes(jpeg())
    (folder / "train/Annotations").mkdir()
    text = (
        "\ufeffpath,attribute,code\r\n"
        f"Images/{COLLAR}/a.jpg,{COLLAR},nmynn\r\n"
        f"Images/{COLLAR}/b.jpg,{COLLAR},yxnnn\r\n\r\n"
    )
    (folder / "train/Annotations/label.csv").write_bytes(text.encode("utf-8"))
    merged = merge_annotations([("train2", folder)])
    decoded, rejected = d.decode_labels(merged)
    assert rejected["reason"].tolist() == [d.HEADER, d.BAD_CHARACTER]
    assert rejected["line"].tolist() == [1, 3]
    assert decoded[["image_name", "label", "maybe"]].values.tolist() == [
        ["a.jpg", "Peter Pan", "Shirt Collar"]
    ]
    assert Path(decoded["image"].iloc[0]) == image_dir / "a.jpg"
    d.reconcile(merged, decoded, rejected)
