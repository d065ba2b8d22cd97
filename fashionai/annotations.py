"""Find the annotation files of extracted archives and merge their rows into one table.

Nothing is judged here (that is :mod:`fashionai.decoding`'s job): every non-blank line of every
``Annotations/*.csv`` becomes a row, headers and malformed lines included, with its file and line.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

ANNOTATION_COLUMNS = ["line", "image_path", "attribute", "code"]
MERGED_COLUMNS = ["archive", "round", "annotation_file", *ANNOTATION_COLUMNS, "image"]
ANNOTATION_FOLDER = "Annotations"


def find_annotation_files(root: Path) -> list[Path]:
    """Every ``Annotations/*.csv`` below ``root``, sorted, without macOS ``._*`` or ``__MACOSX``."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name != "__MACOSX"]
        if os.path.basename(folder) != ANNOTATION_FOLDER:
            continue
        for name in files:
            if name.lower().endswith(".csv") and not name.startswith("._"):
                found.append(Path(folder) / name)
    return sorted(found)


def read_annotation_file(path: Path) -> pd.DataFrame:
    """Every non-blank line of ``path`` (or of a question file) as a row: ``line`` (1-based) and
    the fields split at the first two commas, stripped ("" if missing). Byte-order marks (also
    mid-file, as in files joined with ``cat``) and CR line ends are tolerated; bytes that are not
    UTF-8 fail the whole file, naming the line, rather than have it half read."""
    data = Path(path).read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        # Numbered like the rows; positions after the BOM (utf-8-sig would be 3 bytes short).
        before = data[: bom + error.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = before.count(b"\n") + 1
        raise ValueError(
            f"{path}: line {line} is not valid UTF-8 ({error.reason} at byte "
            f"{bom + error.start:,}); annotation and question files must be UTF-8, so the "
            "whole file is refused rather than guessed"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # CRLF and old Mac line ends
    lines = pd.Series(text.split("\n"), dtype=object).str.strip().str.lstrip("\ufeff").str.strip()
    lines = lines[lines != ""]
    fields = lines.str.split(",", n=2, expand=True) if len(lines) else pd.DataFrame()
    fields = fields.reindex(columns=[0, 1, 2]).fillna("").astype(str)
    names = ANNOTATION_COLUMNS[1:]
    frame = pd.DataFrame({name: fields[i].str.strip().to_numpy() for i, name in enumerate(names)})
    frame.insert(0, "line", (lines.index.to_numpy() + 1).astype("int64"))
    return frame


def _image_paths(prefix: str, image_path: pd.Series) -> pd.Series:
    """``prefix/image_path``, or "" where the path is empty, absolute or contains ``..``."""
    posix = image_path.str.replace("\\", "/", regex=False)
    unsafe = (
        (posix == "")
        | posix.str.match(r"/|[A-Za-z]:")
        | posix.str.contains(r"(?:^|/)\.\.(?:/|$)", regex=True)
    )
    joined = (prefix + "/" + posix) if prefix else posix
    return joined.where(~unsafe, "")


def merge_annotations(extracted: Sequence[tuple[str, Path]]) -> pd.DataFrame:
    """All annotation rows of ``extracted`` (``(archive_id, folder)`` by round): ``round`` is the
    0-based position, ``image`` the folder holding ``Annotations/`` joined with ``image_path``."""
    frames = []
    for round_index, (archive, folder) in enumerate(extracted):
        folder = Path(folder)
        files = find_annotation_files(folder)
        if not files:
            raise ValueError(
                f"archive {archive}: no annotation file (Annotations/*.csv) found in {folder}"
            )
        for path in files:
            rows = read_annotation_file(path)
            rows["archive"], rows["round"] = archive, round_index
            rows["annotation_file"] = path.relative_to(folder).as_posix()
            rows["image"] = _image_paths(path.parent.parent.as_posix(), rows["image_path"])
            frames.append(rows)
    if not frames:
        frames.append(pd.DataFrame(columns=MERGED_COLUMNS, dtype=object))
    merged = pd.concat(frames, ignore_index=True)[MERGED_COLUMNS]
    return merged.astype({"round": "int64", "line": "int64"})
