"""Hostile and damaged archives: refused with a message naming the member, nothing written outside.

tests/test_archives.py covers the basic hostile members. This file adds what it leaves out:
escapes placed so that the folder they would land in is watched (the whole scratch tree is
listed before and after, and outside files keep their link count), absolute targets inside the
scratch tree, PAX and GNU long names, zip symlinks pointing out and zip block devices, lying
zip sizes with compression, both size-limit knobs on tar.gz and zip, truncated and corrupt
archives of every kind, and through snakemake a hostile archive and one with too many
members for `extract.max_members` set in the config.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fashionai.archives import CorruptArchiveError, extract_archive
from tests.archive_helpers import (
    UP_TO_ROOT,
    listing,
    patch_zip_size,
    quiet,
    refused,
    tar_file,
    tar_special,
)
from tests.workflow_helpers import run_snakemake, tiny_config

CSV = b"Images/skirt_length_labels/a.jpg,skirt_length_labels,nynnnn\n"
JPEG = b"\xff\xd8\xff\xe0" + bytes(100) + b"\xff\xd9"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """tmp_path with a victim file outside the destination, as an attacker's target."""
    (tmp_path / "victim.txt").write_text("precious")
    return tmp_path


def refuse(scratch: Path, archive: Path, *words: str, **options) -> str:
    """``refused`` (nothing written anywhere), and the victim file is untouched."""
    message = refused(scratch, archive, *words, **options)
    assert (scratch / "victim.txt").read_text() == "precious"
    return message


# ----------------------------------------------------------------------------------------------
# Building archives


def hostile_tar(
    path: Path, add: Callable[[tarfile.TarFile], None], *, mode: str = "w", fmt: int = 1
) -> Path:
    """A tar whose good members come first, then what ``add`` writes, then a good one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode, format=fmt) as tar:
        tar_file(tar, "base/Annotations/label.csv", CSV)
        for i in range(5):
            tar_file(tar, f"base/Images/skirt_length_labels/{i}.jpg", JPEG)
        add(tar)
        tar_file(tar, "base/Images/skirt_length_labels/last.jpg", JPEG)
    return path


def zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: external_attr holds st_mode
    info.external_attr = mode << 16
    return info


def hostile_zip(path: Path, entry: zipfile.ZipInfo | str, data: bytes = b"x") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr(entry, data)
    return path


def good_tar(path: Path, n: int = 40, mode: str = "w") -> Path:
    """A tar of ``n`` random 3 kB images (incompressible, so a .tar.gz stays big)."""
    with tarfile.open(path, mode) as tar:
        tar_file(tar, "base/Annotations/label.csv", CSV)
        for i in range(n):
            tar_file(tar, f"base/Images/coat_length_labels/{i:03d}.jpg", os.urandom(3000))
    return path


def good_zip(path: Path, n: int = 40) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        for i in range(n):
            zf.writestr(f"train/Images/coat_length_labels/{i:03d}.jpg", os.urandom(3000))
    return path


# ----------------------------------------------------------------------------------------------
# Hostile tar members


OUT = "' leads outside the extraction folder"
UP = "'..' leads outside the extraction folder"


def _tar_cases(tmp: Path) -> dict[str, tuple[str, Callable, str, dict]]:
    """Per case: the member named, what ``add`` writes, its own message, tarfile.open options."""
    victim = str(tmp / "victim.txt")
    escape = f"{UP_TO_ROOT}victim.txt"
    return {
        "dotdot": ("../evil.txt", lambda t: tar_file(t, "../evil.txt"), UP, {}),
        "dotdot-to-root": (
            f"{UP_TO_ROOT}evil.txt",
            lambda t: tar_file(t, f"{UP_TO_ROOT}evil.txt"),
            UP,
            {},
        ),
        "dotdot-after-folder": (
            f"base/../{UP_TO_ROOT}evil.txt",
            lambda t: tar_file(t, f"base/../{UP_TO_ROOT}evil.txt"),
            UP,
            {},
        ),
        "absolute": (
            f"{tmp}/abs_evil.txt",
            lambda t: tar_file(t, f"{tmp}/abs_evil.txt"),
            "has an absolute path",
            {},
        ),
        "pax-path": (
            f"{UP_TO_ROOT}pax_evil.txt",  # the PAX "path" record overrides the plain name
            lambda t: _pax_file(t, f"{UP_TO_ROOT}pax_evil.txt"),
            UP,
            {"fmt": tarfile.PAX_FORMAT},
        ),
        "gnu-longname": (
            "x" * 150 + f"/../../{UP_TO_ROOT}gnu_evil.txt",
            lambda t: tar_file(t, "x" * 150 + f"/../../{UP_TO_ROOT}gnu_evil.txt"),
            UP,
            {"fmt": tarfile.GNU_FORMAT},
        ),
        "symlink-up": (
            "base/out",
            lambda t: tar_special(t, "base/out", tarfile.SYMTYPE, f"../{UP_TO_ROOT}"),
            f"symbolic link to '../{UP_TO_ROOT}{OUT}",
            {},
        ),
        "symlink-absolute": (
            "base/out",
            lambda t: (
                tar_special(t, "base/out", tarfile.SYMTYPE, str(tmp)),
                tar_file(t, "base/out/evil.txt"),
            ),
            f"symbolic link to '{tmp}{OUT}",
            {},
        ),
        "written-through-symlink": (
            "base/inside/evil.txt",  # written through a link member, even one pointing inside
            lambda t: (
                tar_special(t, "base/inside", tarfile.SYMTYPE, "../base"),
                tar_file(t, "base/inside/evil.txt"),
            ),
            "goes through symbolic link member 'base/inside'",
            {},
        ),
        "hardlink-up": (
            "base/hard.txt",
            lambda t: tar_special(t, "base/hard.txt", tarfile.LNKTYPE, escape),
            f"hard link to '{escape}{OUT}",
            {},
        ),
        "hardlink-absolute": (
            "base/hard.txt",
            lambda t: tar_special(t, "base/hard.txt", tarfile.LNKTYPE, victim),
            f"hard link to '{victim}{OUT}",
            {},
        ),
        "hardlink-through-symlink": (
            "base/hard.txt",  # a hard link through a symlink member that points inside
            lambda t: (
                tar_special(t, "base/dir", tarfile.SYMTYPE, "."),
                tar_special(t, "base/hard.txt", tarfile.LNKTYPE, "base/dir/label.csv"),
            ),
            "goes through symbolic link member 'base/dir'",
            {},
        ),
        "chardev": (
            "base/tty",
            lambda t: tar_special(t, "base/tty", tarfile.CHRTYPE),
            "is a character device",
            {},
        ),
        "blockdev": (
            "base/sda",
            lambda t: tar_special(t, "base/sda", tarfile.BLKTYPE),
            "is a block device",
            {},
        ),
        "fifo": (
            "base/pipe",
            lambda t: tar_special(t, "base/pipe", tarfile.FIFOTYPE),
            "is a FIFO",
            {},
        ),
        "chardev-tgz": (
            "base/tty",  # a device inside a compressed tar is refused just the same
            lambda t: tar_special(t, "base/tty", tarfile.CHRTYPE),
            "is a character device",
            {"mode": "w:gz"},
        ),
    }


def _pax_file(tar: tarfile.TarFile, real_name: str) -> None:
    info = tarfile.TarInfo("harmless.txt")
    info.size = 1
    info.pax_headers = {"path": real_name}
    tar.addfile(info, io.BytesIO(b"x"))


@pytest.mark.parametrize("case", list(_tar_cases(Path("/tmp"))))
def test_hostile_tar_member_refused_and_nothing_written(scratch, case):
    member, add, words, options = _tar_cases(scratch)[case]
    mode = options.get("mode", "w")
    fmt = options.get("fmt", tarfile.GNU_FORMAT)
    suffix = ".tar.gz" if mode == "w:gz" else ".tar"
    archive = hostile_tar(scratch / "raw" / f"hostile{suffix}", add, mode=mode, fmt=fmt)
    refuse(scratch, archive, words, member=member)
    assert (scratch / "victim.txt").stat().st_nlink == 1


# ----------------------------------------------------------------------------------------------
# Hostile zip members


ZIP_CASES = [
    ("../evil.txt", "../evil.txt", UP),
    (f"{UP_TO_ROOT}evil.txt", f"{UP_TO_ROOT}evil.txt", UP),
    ("..\\..\\..\\..\\evil.txt", "..\\..\\..\\..\\evil.txt", UP),
    ("train/link", zip_info("train/link", stat.S_IFLNK | 0o777), "zip links are refused"),
    ("train/tty", zip_info("train/tty", stat.S_IFCHR | 0o644), "special file (mode 20644)"),
    ("train/sda", zip_info("train/sda", stat.S_IFBLK | 0o644), "special file (mode 60644)"),
    ("train/pipe", zip_info("train/pipe", stat.S_IFIFO | 0o644), "special file (mode 10644)"),
    ("train/sock", zip_info("train/sock", stat.S_IFSOCK | 0o644), "special file (mode 140644)"),
]


@pytest.mark.parametrize(("member", "entry", "words"), ZIP_CASES, ids=lambda v: str(v)[:20])
def test_hostile_zip_member_refused_and_nothing_written(scratch, member, entry, words):
    # A zip symlink's data is its target: point it out of the folder.
    archive = hostile_zip(scratch / "hostile.zip", entry, f"{UP_TO_ROOT}victim.txt".encode())
    refuse(scratch, archive, words, member=member)


def test_zip_absolute_name_inside_scratch_is_refused(scratch):
    target = scratch / "abs_evil.txt"
    archive = hostile_zip(scratch / "abs.zip", str(target))
    refuse(scratch, archive, "has an absolute path", member=str(target))


# ----------------------------------------------------------------------------------------------
# Zip members whose declared size lies


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("declared", [100, 10_000], ids=["declares-less", "declares-more"])
def test_zip_declared_size_lies(scratch, compression, declared):
    real = JPEG * 20  # 2,120 bytes
    archive = scratch / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr("train/Images/big.jpg", real)
    patch_zip_size(archive, "train/Images/big.jpg", declared)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("train/Images/big.jpg").file_size == declared
    # Declaring less fails the CRC (zipfile stops at the declared size); declaring more ends
    # the copy early, which the byte count catches.
    words = (
        "Bad CRC-32" if declared < len(real) else f"ends after 2,120 of its declared {declared:,}"
    )
    refuse(scratch, archive, words, member="train/Images/big.jpg", max_ratio=1000)


# ----------------------------------------------------------------------------------------------
# Size limits: max_ratio (default 10 x the archive) and max_bytes (default 100 GB)


def _compressible(path: Path, total: int) -> Path:
    """An archive whose content is ``total`` bytes of zeros in two members (tar.gz or zip)."""
    members = {"r/Annotations/label.csv": CSV, "r/Images/zeros.bin": bytes(total - len(CSV))}
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as tar:
            for name, data in members.items():
                tar_file(tar, name, data)
    return path


@pytest.mark.parametrize("name", ["bomb.tar.gz", "bomb.zip"])
def test_size_limits_both_knobs(scratch, name):
    total = 3_000_000
    archive = _compressible(scratch / name, total)
    size = archive.stat().st_size
    assert total > 10 * size  # the defaults refuse it by ratio
    message = refuse(scratch, archive, "archive bomb", member="r/Images/zeros.bin")
    assert f"declared uncompressed size {total:,} bytes" in message
    assert f"limit of {10 * size:,} bytes" in message
    # max_ratio: just below the real ratio refuses, at it passes.
    ratio = total / size
    refuse(scratch, archive, "archive bomb", max_ratio=ratio * 0.999)
    dest = scratch / "ok"
    assert extract_archive(archive, dest, max_ratio=ratio, log=quiet).bytes == total
    # max_bytes caps a generous ratio: one byte short refuses, exactly enough passes.
    message = refuse(scratch, archive, max_ratio=10**6, max_bytes=total - 1)
    assert f"limit of {total - 1:,} bytes" in message
    summary = extract_archive(archive, dest, max_ratio=10**6, max_bytes=total, log=quiet)
    assert summary.bytes == total
    assert (dest / "r/Images/zeros.bin").stat().st_size == total - len(CSV)


def test_default_max_bytes_is_100_gb(scratch):
    # A tar whose single member declares 100 GB + 1 byte: refused before any data is read.
    archive = scratch / "huge.tar"
    size = 100 * 10**9 + 1
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("r/Images/huge.bin")
        info.size = size
        tar.addfile(info)  # the header only
    # Make the file as long as the header says, plus the end marker: a sparse file of zeros.
    with open(archive, "r+b") as handle:
        handle.truncate(512 + -(-size // 512) * 512 + 1024)
    message = refuse(scratch, archive, member="r/Images/huge.bin", max_ratio=10**6)
    assert "limit of 100,000,000,000 bytes" in message


# ----------------------------------------------------------------------------------------------
# Truncated and corrupt archives: the whole archive is refused, nothing is left


def _cut(path: Path, at: int) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:at])
    return path


def _flip(path: Path, start: int, count: int = 64) -> Path:
    data = bytearray(path.read_bytes())
    for i in range(start, start + count):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


# Each member of good_tar: a 512-byte header and 3,000 bytes of data padded to 3,072.
_MEMBER = 512 + 3072
_FIRST = 512 + 512  # the label.csv member


DAMAGED = {
    "tar-cut-in-half": lambda p: _cut(good_tar(p / "a.tar"), (_FIRST + 40 * _MEMBER) // 2),
    "tar-cut-at-member-boundary": lambda p: _cut(good_tar(p / "a.tar"), _FIRST + 20 * _MEMBER),
    "tar-cut-inside-a-header": lambda p: _cut(good_tar(p / "a.tar"), _FIRST + 20 * _MEMBER + 100),
    "tar-corrupt-header-midway": lambda p: _flip(good_tar(p / "a.tar"), _FIRST + 20 * _MEMBER),
    "tar-zeroed-header-midway": lambda p: _zero(good_tar(p / "a.tar"), _FIRST + 20 * _MEMBER),
    "tgz-cut-in-half": lambda p: _cut(good_tar(p / "a.tar.gz", mode="w:gz"), 60_000),
    "tgz-trailer-cut": lambda p: _cut(good_tar(p / "a.tar.gz", mode="w:gz"), -4),
    "tgz-corrupt-stream": lambda p: _flip(good_tar(p / "a.tar.gz", mode="w:gz"), 60_000),
    "tgz-crc-mismatch": lambda p: _flip(good_tar(p / "a.tar.gz", mode="w:gz"), -8, 1),
    "tgz-corrupt-gzip-header": lambda p: _flip(good_tar(p / "a.tar.gz", mode="w:gz"), 3, 1),
    "zip-cut-in-half": lambda p: _cut(good_zip(p / "a.zip"), 62_000),
    "zip-end-record-cut": lambda p: _cut(good_zip(p / "a.zip"), -10),
    "zip-corrupt-member-data": lambda p: _flip(good_zip(p / "a.zip"), 60_000),
    "zip-corrupt-central-directory": lambda p: _flip_last(good_zip(p / "a.zip"), b"PK\x01\x02"),
    "empty-file": lambda p: _cut(good_tar(p / "a.tar"), 0),
}


def _flip_last(path: Path, signature: bytes) -> Path:
    """Damage the last occurrence of ``signature`` (a zip central directory entry)."""
    return _flip(path, path.read_bytes().rfind(signature), 2)


def _zero(path: Path, start: int) -> Path:
    data = bytearray(path.read_bytes())
    data[start : start + 512] = bytes(512)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_damaged_archive_is_refused_whole(scratch, damage):
    archive = DAMAGED[damage](scratch)
    message = refuse(scratch, archive, error=ValueError)
    assert any(w in message for w in ("truncated", "corrupt", "empty file")), message


def test_gzip_crc_error_is_not_ignored(scratch):
    """Python's gzip checks the CRC only at the end of the stream, which tarfile never reads."""
    archive = good_tar(scratch / "a.tar.gz", mode="w:gz")
    data = bytearray(archive.read_bytes())
    crc = struct.unpack_from("<I", data, len(data) - 8)[0]
    struct.pack_into("<I", data, len(data) - 8, crc ^ 1)
    archive.write_bytes(bytes(data))
    with tarfile.open(archive) as tar:  # tarfile alone lists and reads every member happily
        assert len(tar.getmembers()) == 41
    with pytest.raises(gzip.BadGzipFile, match="CRC"):
        gzip.decompress(bytes(data))
    message = refuse(scratch, archive, "CRC", error=CorruptArchiveError)
    assert "truncated or corrupt" in message


def test_tar_cut_at_member_boundary_names_last_good_member(scratch):
    archive = _cut(good_tar(scratch / "a.tar"), _FIRST + 20 * _MEMBER)
    with tarfile.open(archive) as tar:  # tarfile alone sees a complete archive of 21 members
        assert len(tar.getmembers()) == 21
    message = refuse(scratch, archive, "truncated", error=CorruptArchiveError)
    assert "'base/Images/coat_length_labels/019.jpg'" in message
    assert "end-of-archive marker" in message


def test_good_archives_still_extract_after_the_end_checks(scratch):
    for archive in (
        good_tar(scratch / "g.tar"),
        good_tar(scratch / "g.tar.gz", mode="w:gz"),
        good_zip(scratch / "g.zip"),
    ):
        dest = scratch / "out" / archive.name
        assert extract_archive(archive, dest, log=quiet).files == 41
    # A tar with no members at all (only the end-of-archive marker) is fine too.
    with tarfile.open(scratch / "empty.tar", "w"):
        pass
    assert extract_archive(scratch / "empty.tar", scratch / "out/empty", log=quiet).files == 0


# ----------------------------------------------------------------------------------------------
# Through snakemake


def _escaping(archive: Path) -> None:
    # From results/extracted/<name>, three levels up is the working directory.
    hostile_tar(archive, lambda t: tar_file(t, "base/../../../../escaped.txt", b"pwned"))


def _many_members(archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(200):
            tar_file(tar, f"base/Images/{i}.jpg", b"")


SNAKEMAKE_CASES = {
    "traversal": (_escaping, {}, "'base/../../../../escaped.txt': '..' leads outside"),
    "max_members": (
        _many_members,
        {"max_members": 50},
        "at least 51 members, over the limit of 50",
    ),
}


@pytest.mark.parametrize("case", list(SNAKEMAKE_CASES))
def test_refused_archive_through_snakemake(tmp_path, case):
    """The workflow's extract job fails with the message; nothing else lands anywhere."""
    make, extract, words = SNAKEMAKE_CASES[case]
    workdir = tmp_path / "run"
    (workdir / "resources" / "raw").mkdir(parents=True)
    name = "round1.tar" if case == "traversal" else "round1.tar.gz"
    make(workdir / "resources" / "raw" / name)
    config = tiny_config(archives=[f"resources/raw/{name}"], extract=extract)
    before = listing(tmp_path)
    result = run_snakemake(workdir, config, "data")
    assert result.returncode != 0, result.stdout[-3000:]
    log = (workdir / "logs/extract/round1.log").read_text()
    assert words in log and "UnsafeArchiveError" in log, log
    new = {p for p in listing(tmp_path) if p not in before}
    # Snakemake's own files, the job's log, and the (empty) folders of the job's output.
    expected = {"run/test-config.yaml", "run/results", "run/results/extracted"}
    unexpected = {p for p in new - expected if not p.startswith(("run/.snakemake", "run/logs"))}
    assert not unexpected, unexpected
