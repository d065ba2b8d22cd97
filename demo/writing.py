"""Writing: the planned rows as archives in the layout of the real ones, and the manifest.

The member names, annotation format and quirks are those described in
``fashionai-format.md``: annotation files with and without BOM and CRLF line ends, macOS
``._`` sidecar files, directory members, and fixed metadata, so that the same seed gives the
same bytes.
"""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from demo.archive_names import ARCHIVE_NAMES
from demo.drawing import render_image
from demo.planning import Row

# The folder each archive extracts to, and the annotation file inside it.
ARCHIVE_ROOTS: dict[str, str] = {
    "round1": "base",
    "warmup": "web",
    "round2": "train",
    "questions": "rank",
}
ANNOTATION_FILES: dict[str, str] = {
    "round1": "base/Annotations/label.csv",
    "warmup": "web/Annotations/skirt_length_labels.csv",
    "round2": "train/Annotations/label.csv",
    "questions": "rank/Tests/question.csv",
}
MANIFEST_COLUMNS: tuple[str, ...] = (
    "archive",  # archive file name
    "image_path",  # column 1 of the annotation row, as written
    "attribute",  # column 2, as written
    "code",  # column 3, as written
    "class_index",  # the class the code means (position of its single y), else -1
    "expected",  # "used", "duplicate" or the reason the row must be rejected
    "annotation",  # the annotation file's member name inside the archive
    "line",  # 1-based line of the row in that file
)

_MTIME = 1519257600  # 2018-02-22, fixed so that the same seed gives the same bytes
_ZIP_DATE = (2018, 4, 18, 0, 0, 0)
_JPEG_QUALITY = 90
# macOS AppleDouble header: what the real ._*.jpg sidecar files start with.
_SIDECAR_BYTES = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(50)

Log = Callable[[str], None]


def image_bytes(row: Row, *, seed: int, size: int, difficulty: float) -> bytes | None:
    """The file bytes of ``row``'s image (None: not in the archive).

    The pixels depend only on the seed, the image name and what it shows, so an image listed in
    two archives has the same bytes in both.
    """
    if row.image == "missing":
        return None
    if row.image == "empty":
        return b""
    attribute, k = row.drawn()
    rng = np.random.default_rng([seed, int(row.name, 16)])
    image = Image.fromarray(render_image(attribute, k, rng, size, difficulty))
    if row.image == "gray":
        image = image.convert("L")
    buffer = io.BytesIO()
    if row.image == "png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=_JPEG_QUALITY)
    data = buffer.getvalue()
    if row.image == "truncated":
        data = data[: len(data) // 2]  # header intact, scan data cut off
    return data


Encoder = Callable[[Row], "bytes | None"]


class _ArchiveWriter:
    """Streams members into a tar or zip with fixed metadata (same seed, same bytes)."""

    def __init__(self, path: Path) -> None:
        self.is_zip = path.suffix == ".zip"
        if self.is_zip:
            self._zip = zipfile.ZipFile(path, "w")
        else:
            self._tar = tarfile.open(path, "w", format=tarfile.GNU_FORMAT)  # noqa: SIM115
        self._dirs: set[str] = set()

    def _directory(self, name: str) -> None:
        if name in self._dirs:
            return
        parent = name.rstrip("/").rpartition("/")[0]
        if parent:
            self._directory(parent + "/")
        self._dirs.add(name)
        if self.is_zip:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = (0o40755 << 16) | 0x10
            self._zip.writestr(info, b"")
        else:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _MTIME
            self._tar.addfile(info)

    def add(self, name: str, data: bytes) -> None:
        self._directory(name.rpartition("/")[0] + "/")
        if self.is_zip:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            jpeg = name.endswith(".jpg")
            info.compress_type = zipfile.ZIP_STORED if jpeg else zipfile.ZIP_DEFLATED
            self._zip.writestr(info, data)
        else:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
            self._tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        (self._zip if self.is_zip else self._tar).close()

    def __enter__(self) -> _ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_bytes(lines: Iterable[str], *, crlf: bool = False, bom: bool = False) -> bytes:
    """``lines`` as a UTF-8 file, each line ended by LF (or CRLF), with a BOM if asked."""
    newline = "\r\n" if crlf else "\n"
    text = "".join(line + newline for line in lines)
    return (("\ufeff" if bom else "") + text).encode("utf-8")


class _Progress:
    def __init__(self, log: Log, label: str, total: int) -> None:
        self.log, self.label, self.total = log, label, total
        self.done, self.start = 0, time.monotonic()
        self.step = max(500, total // 10)

    def tick(self) -> None:
        self.done += 1
        if self.done % self.step == 0 or self.done == self.total:
            rate = self.done / max(time.monotonic() - self.start, 1e-9)
            self.log(f"  {self.label}: {self.done}/{self.total} images ({rate:.0f}/s)")


def write_training_archive(
    path: Path, archive: str, rows: list[Row], encode: Encoder, log: Log
) -> None:
    """The annotation file, then the images sorted by path; round 1 has two ``._`` sidecars."""
    root = ARCHIVE_ROOTS[archive]
    progress = _Progress(log, path.name, sum(r.image != "missing" for r in rows))
    with _ArchiveWriter(path) as writer:
        # Round 2 gets a BOM and CRLF line ends: real annotation files vary.
        round2 = archive == "round2"
        lines = (r.line() for r in rows)
        writer.add(ANNOTATION_FILES[archive], _csv_bytes(lines, crlf=round2, bom=round2))
        sidecars = 2 if archive == "round1" else 0
        for row in sorted(rows, key=lambda r: r.image_path):
            data = encode(row)
            if data is None:
                continue
            writer.add(f"{root}/{row.image_path}", data)
            progress.tick()
            if sidecars and row.image == "jpeg":  # macOS ._ sidecar beside a real image
                writer.add(f"{root}/{row.sidecar_path}", _SIDECAR_BYTES)
                sidecars -= 1


def write_questions(path: Path, rows: list[Row], encode: Encoder, log: Log) -> None:
    """The question file (codes ``?``), the images in question order and one ``._`` sidecar."""
    root = ARCHIVE_ROOTS["questions"]
    progress = _Progress(log, path.name, len(rows))
    with _ArchiveWriter(path) as writer:
        writer.add(ANNOTATION_FILES["questions"], _csv_bytes(r.line("?") for r in rows))
        for row in rows:
            writer.add(f"{root}/{row.image_path}", encode(row) or b"")
            progress.tick()
        if rows:
            writer.add(f"{root}/{rows[0].sidecar_path}", _SIDECAR_BYTES)


def write_answers(path: Path, rows: list[Row]) -> None:
    """The questions' true codes, in label.csv format (paths relative to the question root)."""
    path.write_bytes(_csv_bytes(r.line() for r in rows))


def write_manifest(path: Path, plan: dict[str, list[Row]]) -> pd.DataFrame:
    """Write and return the manifest: one row per annotation row of ``plan``'s archives, with
    the columns of ``MANIFEST_COLUMNS``."""
    records = [
        (ARCHIVE_NAMES[archive], r.image_path, r.attribute, r.code, r.class_index, r.expected)
        + (ANNOTATION_FILES[archive], line)
        for archive, rows in plan.items()
        for line, r in enumerate(rows, start=1)
    ]
    frame = pd.DataFrame.from_records(records, columns=list(MANIFEST_COLUMNS))
    frame = frame.astype({"class_index": "int64", "line": "int64"})
    frame.to_csv(path, index=False)
    return frame
