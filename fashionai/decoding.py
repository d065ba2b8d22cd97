"""Decode the y/n/m codes of merged annotation rows; reject every unusable row with a reason.

A row gets the first reason that applies: its code, an unsafe image path, a conflict (the rows
left of one (attribute, image name) disagree: all rejected), its image file. The rest becomes one
sample per key (earliest round's image), so ``source_rows.sum() + len(rejected) == len(merged)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fashionai import images
from fashionai.annotations import MERGED_COLUMNS
from fashionai.attributes import ATTRIBUTES

HEADER = "header line"
MALFORMED = "malformed line (expected path,attribute,code)"
UNKNOWN_ATTRIBUTE = "unknown attribute"
BAD_CHARACTER = "code has characters other than y/n/m"
WRONG_LENGTH = "code length does not match the attribute's class count"
NO_Y = "no y in code"
MULTIPLE_Y = "more than one y in code"
UNSAFE_PATH = "image path is absolute or leaves the archive folder"
CONFLICT_IN_FILE = "same image listed {count} times in {file} with different codes"
CONFLICT_ACROSS_FILES = "same image with different codes in several label files: {files}"
IMAGE_MISSING = "image missing"
IMAGE_UNREADABLE = "image unreadable"  # followed by ": <detail from check_image>"

DECODED_COLUMNS = ["attribute", "image_name", "image", "label_index", "label", "code"]
DECODED_COLUMNS += ["maybe", "archives", "source_rows"]
REJECTED_COLUMNS = MERGED_COLUMNS + ["reason"]
_KEY = ["attribute", "image_name"]
_TEXT_COLUMNS = [c for c in MERGED_COLUMNS if c not in ("round", "line")]
_CHECK_CHUNK = 10000  # images checked between two progress lines


def image_names(image_path: pd.Series) -> pd.Series:
    """The file name part of each image path (after the last ``/`` or ``\\``)."""
    return image_path.str.replace("\\", "/", regex=False).str.rsplit("/", n=1).str[-1]


def _code_reasons(frame: pd.DataFrame, reason: np.ndarray) -> None:
    """Fill ``reason`` (object array, "" = fine so far) with the code checks, first one wins."""
    attribute, code, path = frame["attribute"], frame["code"], frame["image_path"]
    known = attribute.isin(list(ATTRIBUTES)).to_numpy()
    letters = code.str.fullmatch(r"[ynm]+").fillna(False).to_numpy(dtype=bool)
    expected = attribute.map({a: len(n) for a, n in ATTRIBUTES.items()}).fillna(-1).to_numpy()
    y_count = code.str.count("y").to_numpy()
    empty = (path == "") | (attribute == "") | (code == "") | (image_names(path) == "")
    malformed = (empty | code.str.contains(",", regex=False)).to_numpy(dtype=bool)
    checks = [
        ((frame["line"] == 1).to_numpy() & ~known & ~letters, HEADER),
        (malformed, MALFORMED),
        (~known, UNKNOWN_ATTRIBUTE),
        (~letters, BAD_CHARACTER),
        (code.str.len().to_numpy() != expected, WRONG_LENGTH),
        (y_count == 0, NO_Y),
        (y_count > 1, MULTIPLE_Y),
        ((frame["image"] == "").to_numpy(), UNSAFE_PATH),
    ]
    for mask, why in checks:
        reason[mask & (reason == "")] = why


def _conflict_reasons(frame: pd.DataFrame, reason: np.ndarray) -> None:
    """Reject every row of a key whose still-valid rows disagree on the code."""
    valid = frame.loc[reason == ""]
    codes = valid.groupby(_KEY, sort=False)["code"].transform("nunique")
    conflicts = valid.loc[codes.to_numpy() > 1]
    files = conflicts["archive"] + "/" + conflicts["annotation_file"]
    for _, rows in conflicts.groupby(_KEY, sort=False):
        names = pd.unique(files[rows.index])
        if len(names) == 1:
            why = CONFLICT_IN_FILE.format(count=len(rows), file=names[0])
        else:
            why = CONFLICT_ACROSS_FILES.format(files="; ".join(names))
        reason[rows.index.to_numpy()] = why


def _image_reasons(
    frame: pd.DataFrame, reason: np.ndarray, workers: int, log: Callable[[str], None]
) -> None:
    """Reject the still-valid rows whose image is bad; each image checked once."""
    ok = reason == ""
    paths = frame.loc[ok, "image"]
    unique = list(pd.unique(paths))
    found: dict[str, str | None] = {}
    for start in range(0, len(unique), _CHECK_CHUNK):
        chunk = unique[start : start + _CHECK_CHUNK]
        found.update(zip(chunk, images.check_images(chunk, workers=workers), strict=True))
        log(f"checked {len(found):,} of {len(unique):,} images ({len(found) / len(unique):.0%})")
    detail = paths.map(found).astype(object)
    bad = detail.notna().to_numpy()
    why = np.where(
        detail == images.MISSING, IMAGE_MISSING, IMAGE_UNREADABLE + ": " + detail.fillna("")
    )
    reason[np.flatnonzero(ok)[bad]] = why[bad]


def _classes(attribute: str, code: str) -> tuple[int, str, str]:
    """Label index, label and ";"-joined maybe-classes of a valid ``code`` of ``attribute``."""
    names = ATTRIBUTES[attribute]
    maybe = ";".join(name for name, letter in zip(names, code, strict=True) if letter == "m")
    return code.index("y"), names[code.index("y")], maybe


def _deduplicated(good: pd.DataFrame) -> pd.DataFrame:
    """One row per (attribute, image_name): earliest round's image, archives, source_rows."""
    good = good.sort_values("round", kind="stable")
    first = good.drop_duplicates(_KEY, keep="first").set_index(_KEY)
    counts = good.groupby(_KEY, sort=False).size()
    per_archive = good.drop_duplicates(_KEY + ["archive"])
    several = per_archive.duplicated(_KEY, keep=False)
    archives = per_archive.loc[~several].set_index(_KEY)["archive"]
    if several.any():
        joined = per_archive.loc[several].groupby(_KEY, sort=False)["archive"].agg(";".join)
        archives = pd.concat([archives, joined])
    return first[["image", "code"]].assign(archives=archives, source_rows=counts).reset_index()


def decode_labels(
    merged: pd.DataFrame,
    *,
    check_images: bool = True,
    workers: int = 4,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(decoded, rejected)`` from the merged annotation rows (see the module docstring)."""
    frame = merged[MERGED_COLUMNS].reset_index(drop=True)  # KeyError names a missing column
    for column in _TEXT_COLUMNS:  # as str, "" for missing
        frame[column] = frame[column].fillna("").astype(str).astype(object)
    frame = frame.astype({"round": "int64", "line": "int64"})
    frame["image_name"] = image_names(frame["image_path"])
    reason = np.full(len(frame), "", dtype=object)
    _code_reasons(frame, reason)
    _conflict_reasons(frame, reason)
    if check_images:
        _image_reasons(frame, reason, workers, log)

    decoded = _deduplicated(frame.loc[reason == ""])
    keys = decoded[["attribute", "code"]].drop_duplicates()  # each code decoded once
    classes = [_classes(*key) for key in keys.itertuples(index=False)]
    columns = ["label_index", "label", "maybe"]
    keys[columns] = pd.DataFrame(classes, index=keys.index, columns=columns, dtype=object)
    decoded = decoded.merge(keys, on=["attribute", "code"], how="left")
    decoded = decoded.astype({"source_rows": "int64", "label_index": "int64"})
    decoded = decoded.sort_values(_KEY, kind="stable", ignore_index=True)[DECODED_COLUMNS]

    bad = reason != ""
    rejected = frame.loc[bad].assign(reason=reason[bad])[REJECTED_COLUMNS].reset_index(drop=True)
    return decoded, rejected


def reconcile(merged: pd.DataFrame, decoded: pd.DataFrame, rejected: pd.DataFrame) -> str:
    """A report of where every annotation row went; ValueError if the counts do not add up."""
    n_read, n_rejected = len(merged), len(rejected)
    used = int(decoded["source_rows"].sum())
    per_archive = merged.groupby(["round", "archive"], sort=True).size()
    dropped = rejected.groupby("archive").size()
    per_attribute = decoded.groupby("attribute").size()
    lines = [
        f"annotation rows read: {n_read:,} from {len(per_archive)} archive(s)",
        *(
            f"  {a}: {n:,} rows, {int(dropped.get(a, 0)):,} rejected"
            for (_, a), n in per_archive.items()
        ),
        f"used rows: {used:,} -> {len(decoded):,} labelled images "
        f"({used - len(decoded):,} duplicate rows of the same image and code collapsed)",
        *(f"  {a}: {int(per_attribute[a]):,} images" for a in ATTRIBUTES if a in per_attribute),
        f"rejected rows: {n_rejected:,}",
        *(f"  {why}: {count:,}" for why, count in rejected["reason"].value_counts().items()),
    ]
    total = used + n_rejected
    lines.append(f"check: {used:,} used + {n_rejected:,} rejected = {total:,} of {n_read:,} read")
    if total != n_read:
        raise ValueError(
            f"annotation rows do not add up: {used:,} used + {n_rejected:,} rejected != "
            f"{n_read:,} rows read\n" + "\n".join(lines)
        )
    return "\n".join(lines)


def read_decoded(path: Path | str, columns: Sequence[str]) -> pd.DataFrame:
    """The ``columns`` of decoded.csv at ``path``: text kept literal (a code is never NaN),
    ``label_index`` a number; ValueError naming the file and the columns a reader needs."""
    text = dict.fromkeys((c for c in columns if c != "label_index"), str)
    try:
        return pd.read_csv(path, usecols=list(columns), dtype=text, keep_default_na=False)
    except ValueError as error:  # a column missing
        raise ValueError(f"{path}: {error}; needed: {', '.join(columns)}") from None
