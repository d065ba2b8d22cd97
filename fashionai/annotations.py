"""Find the annotation files of extracted archives and merge their rows into one table.

Nothing is judged here: every non-empty line of every ``Annotations/*.csv`` becomes a row,
headers and malformed lines included, with the file and line it came from. Deciding what is
usable is ``fashionai.decoding``'s job. Blank lines (e.g. the final newline) are not annotation
rows and are not counted anywhere.
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
    """Every ``*.csv`` directly inside a folder named ``Annotations`` anywhere below ``root``,
    sorted; macOS ``._*`` sidecars and ``__MACOSX`` folders left out."""
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
    """Every non-empty line of ``path`` as a row: ``line`` (1-based), image_path, attribute, code.
    (A question file has this format too, with ``?`` as the code.)

    Fields are split at the first two commas and stripped (missing ones are ""); byte-order
    marks (of the file or of any line, as in files joined with ``cat``) and CR or CRLF line ends
    are tolerated; blank lines are not rows. Bytes that are not UTF-8 fail the whole file, naming
    the first such line: a file in another encoding would otherwise be half read.
    """
    data = Path(path).read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        # Numbered like the rows: CRLF, LF and a lone CR each end a line. (Positions are taken
        # after the BOM: utf-8-sig would report them 3 bytes short.)
        before = data[: bom + error.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = before.count(b"\n") + 1
        raise ValueError(
            f"{path}: line {line} is not valid UTF-8 ({error.reason} at byte "
            f"{bom + error.start:,}); annotation and question files must be UTF-8, so the "
            "whole file is refused rather than guessed"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # CRLF and old Mac line ends
    # A BOM at the start of a later line (label files joined with cat) is not part of the path.
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
    """All rows of all annotation files of ``extracted`` (``(archive_id, folder)`` in round
    order), with MERGED_COLUMNS: ``round`` is the 0-based position, ``image`` the folder
    holding ``Annotations/`` joined with ``image_path`` ("" if absolute or with ``..``)."""
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
