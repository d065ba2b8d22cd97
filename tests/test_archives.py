"""Safe extraction: good tar/tar.gz/zip archives, and hostile ones that must be refused."""

from __future__ import annotations

import errno
import io
import os
import random
import shutil
import stat
import struct
import subprocess
import tarfile
import types
import zipfile
from pathlib import Path

import pytest

from fashionai import archives
from fashionai.archives import UnsafeArchiveError, archive_id, extract_archive
from tests.archive_helpers import patch_zip_size, tar_file, tar_special

JPEG = b"\xff\xd8\xff\xe0" + bytes(100) + b"\xff\xd9"
CSV = b"Images/skirt_length_labels/a.jpg,skirt_length_labels,nynnnn\n"
SIDECAR = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"
GOOD = {
    "base/Annotations/label.csv": CSV,
    "base/Images/skirt_length_labels/a.jpg": JPEG,
    "base/Images/skirt_length_labels/._a.jpg": SIDECAR,
}


# ----------------------------------------------------------------------------------------------
# Helpers


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            tar_file(tar, name, data)
    return path


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def assert_refused(tmp_path: Path, archive: Path, member: str, *words: str) -> None:
    """Extraction fails naming the archive and member; nothing is left anywhere."""
    before = snapshot(tmp_path)
    dest = tmp_path / "out" / "extracted"
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, dest, log=lambda _: None)
    message = str(info.value)
    assert str(archive) in message
    assert repr(member) in message
    for word in words:
        assert word in message
    assert not dest.exists()
    assert not (dest.parent / "extracted.partial").exists()
    # At most the (empty) parent folder has appeared: nothing else, nothing outside.
    assert snapshot(tmp_path) - before <= {"out"}
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------------------------
# archive_id


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("resources/raw/warm_up_train_20180201.tar", "warm_up_train_20180201"),
        ("x/fashionAI_attributes_train2.zip", "fashionAI_attributes_train2"),
        ("a.b.tar.gz", "a.b"),
        (Path("round.tgz"), "round"),
        ("UPPER.TAR", "UPPER"),
    ],
)
def test_archive_id(path, expected):
    assert archive_id(path) == expected


@pytest.mark.parametrize("path", ["data/labels.csv", "x.rar", ".tar", "archive"])
def test_archive_id_rejects_unknown_extensions(path):
    with pytest.raises(ValueError, match="not an archive name") as info:
        archive_id(path)
    assert path in str(info.value)


# ----------------------------------------------------------------------------------------------
# Good archives


def _check_good(dest: Path, summary: archives.ExtractionSummary) -> None:
    assert (dest / "base/Annotations/label.csv").read_bytes() == CSV
    assert (dest / "base/Images/skirt_length_labels/a.jpg").read_bytes() == JPEG
    assert not (dest / "base/Images/skirt_length_labels/._a.jpg").exists()
    assert not (dest.parent / (dest.name + ".partial")).exists()
    assert summary.files == 2
    assert summary.bytes == len(CSV) + len(JPEG)


@pytest.mark.parametrize(("suffix", "mode"), [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_extracts_tar(tmp_path, suffix, mode):
    archive = make_tar(tmp_path / f"round1{suffix}", GOOD, mode)
    messages: list[str] = []
    summary = extract_archive(archive, tmp_path / "out" / "round1", log=messages.append)
    _check_good(tmp_path / "out" / "round1", summary)
    assert summary.skipped == 1
    assert "extracted 2 files" in messages[-1]


def test_extracts_zip_and_skips_macos_metadata(tmp_path):
    files = {
        **GOOD,
        "__MACOSX/base/Images/skirt_length_labels/._a.jpg": SIDECAR,
        "base/Images/": b"",
    }
    archive = make_zip(tmp_path / "train2.zip", files)
    summary = extract_archive(archive, tmp_path / "train2", log=lambda _: None)
    _check_good(tmp_path / "train2", summary)
    assert summary.skipped == 2
    assert not (tmp_path / "train2" / "__MACOSX").exists()


def test_tar_directories_links_inside_and_dot_slash_names(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        tar_special(tar, "./base", tarfile.DIRTYPE)
        tar_file(tar, "./base/x.jpg", JPEG)
        tar_special(tar, "base/hard.jpg", tarfile.LNKTYPE, "./base/x.jpg")
        tar_special(tar, "base/sub/soft.jpg", tarfile.SYMTYPE, "../x.jpg")
        tar_file(tar, "base/y/../z.jpg", JPEG)  # '..' that stays inside is fine
    dest = tmp_path / "a"
    summary = extract_archive(archive, dest, log=lambda _: None)
    assert summary.files == 4
    assert (dest / "base/hard.jpg").stat().st_ino == (dest / "base/x.jpg").stat().st_ino
    assert (dest / "base/sub/soft.jpg").is_symlink()
    assert (dest / "base/sub/soft.jpg").read_bytes() == JPEG
    assert (dest / "base/z.jpg").read_bytes() == JPEG


def test_format_is_detected_by_content(tmp_path):
    archive = make_tar(tmp_path / "really_a_tar.zip", GOOD)
    summary = extract_archive(archive, tmp_path / "x", log=lambda _: None)
    _check_good(tmp_path / "x", summary)


def test_not_an_archive(tmp_path):
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"this is not an archive at all" * 40)
    with pytest.raises(ValueError, match="neither a tar") as info:
        extract_archive(bogus, tmp_path / "x", log=lambda _: None)
    assert str(bogus) in str(info.value)
    assert not (tmp_path / "x").exists()


def test_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.tar"):
        extract_archive(tmp_path / "nothere.tar", tmp_path / "x", log=lambda _: None)


def test_progress_and_leftovers(tmp_path):
    archive = make_tar(tmp_path / "a.tar", {f"base/Images/{i}.jpg": JPEG for i in range(5)})
    dest = tmp_path / "a"
    (tmp_path / "a.partial" / "junk").mkdir(parents=True)  # left over by a killed run
    dest.mkdir()
    (dest / "old.txt").write_text("from an earlier run")
    messages: list[str] = []
    summary = extract_archive(archive, dest, log=messages.append, progress_every=2)
    assert summary.files == 5
    assert sorted(p.name for p in (dest / "base/Images").iterdir()) == [
        f"{i}.jpg" for i in range(5)
    ]
    assert not (dest / "old.txt").exists()
    assert not (tmp_path / "a.partial").exists()
    assert not (tmp_path / "a.old").exists()
    assert sum("so far" in m for m in messages) == 2


# ----------------------------------------------------------------------------------------------
# Hostile tar archives


def _hostile_tar(path: Path, add) -> Path:
    with tarfile.open(path, "w") as tar:
        tar_file(tar, "base/Annotations/label.csv", CSV)  # a good member comes first
        add(tar)
    return path


@pytest.mark.parametrize(
    ("member", "add", "words"),
    [
        ("../evil", lambda t: tar_file(t, "../evil", b"x"), ["outside"]),
        ("base/../../evil", lambda t: tar_file(t, "base/../../evil", b"x"), ["outside"]),
        ("/abs/evil", lambda t: tar_file(t, "/abs/evil", b"x"), ["absolute path"]),
        (
            "base/passwd",
            lambda t: tar_special(t, "base/passwd", tarfile.SYMTYPE, "/etc/passwd"),
            ["symbolic link", "/etc/passwd"],
        ),
        (
            "base/up",
            lambda t: tar_special(t, "base/up", tarfile.SYMTYPE, "../../x"),
            ["symbolic link", "outside"],
        ),
        (
            "base/hard",
            lambda t: tar_special(t, "base/hard", tarfile.LNKTYPE, "../outside"),
            ["hard link", "outside"],
        ),
        (
            "base/hard",
            lambda t: tar_special(t, "base/hard", tarfile.LNKTYPE, "/etc/passwd"),
            ["hard link", "absolute"],
        ),
        (
            "base/hard",
            lambda t: tar_special(t, "base/hard", tarfile.LNKTYPE, "base/later"),
            ["not an earlier file"],
        ),
        ("base/tty", lambda t: tar_special(t, "base/tty", tarfile.CHRTYPE), ["character device"]),
        ("base/disk", lambda t: tar_special(t, "base/disk", tarfile.BLKTYPE), ["block device"]),
        ("base/pipe", lambda t: tar_special(t, "base/pipe", tarfile.FIFOTYPE), ["FIFO"]),
    ],
)
def test_hostile_tar_members_are_refused(tmp_path, member, add, words):
    archive = _hostile_tar(tmp_path / "hostile.tar", add)
    assert_refused(tmp_path, archive, member, *words)


def test_symlink_chain_escaping_is_refused(tmp_path):
    # d/l1 -> .. is inside, and l2 -> d/l1/.. looks inside lexically but is really outside.
    def add(tar):
        tar_special(tar, "base/d/l1", tarfile.SYMTYPE, "..")
        tar_special(tar, "base/l2", tarfile.SYMTYPE, "d/l1/../..")

    archive = _hostile_tar(tmp_path / "chain.tar", add)
    assert_refused(tmp_path, archive, "base/l2", "goes through symbolic link member")


def test_member_written_through_a_symlink_is_refused(tmp_path):
    def add(tar):
        tar_special(tar, "base/link", tarfile.SYMTYPE, "Images")
        tar_file(tar, "base/link/x.jpg", JPEG)

    archive = _hostile_tar(tmp_path / "through.tar", add)
    assert_refused(tmp_path, archive, "base/link/x.jpg", "'base/link'")


def test_tar_data_filter_is_a_second_line_of_defence(tmp_path, monkeypatch):
    def refuse(member, path):
        raise tarfile.OutsideDestinationError(member, path)

    monkeypatch.setattr(tarfile, "data_filter", refuse)
    archive = make_tar(tmp_path / "a.tar", GOOD)
    assert_refused(tmp_path, archive, "base/Annotations/label.csv", "data filter")


# ----------------------------------------------------------------------------------------------
# Hostile zip archives


def _hostile_zip(path: Path, info: zipfile.ZipInfo | str, data: bytes = b"x") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr(info, data)
    return path


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize(
    ("member", "entry", "words"),
    [
        ("../evil", "../evil", ["outside"]),
        ("train/../../evil", "train/../../evil", ["outside"]),
        ("/abs/evil", "/abs/evil", ["absolute path"]),
        ("..\\evil", "..\\evil", ["outside"]),
        ("C:/evil", "C:/evil", ["absolute path"]),
        ("train/link", _zip_info("train/link", stat.S_IFLNK | 0o777), ["symbolic link"]),
        ("train/tty", _zip_info("train/tty", stat.S_IFCHR | 0o644), ["special file"]),
        ("train/pipe", _zip_info("train/pipe", stat.S_IFIFO | 0o644), ["special file"]),
    ],
)
def test_hostile_zip_members_are_refused(tmp_path, member, entry, words):
    archive = _hostile_zip(tmp_path / "hostile.zip", entry, b"/etc/passwd")
    assert_refused(tmp_path, archive, member, *words)


def test_zip_bomb_by_declared_ratio_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr("train/zeros.bin", bytes(2_000_000))
    size = archive.stat().st_size
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, tmp_path / "bomb", log=lambda _: None)
    message = str(info.value)
    assert "'train/zeros.bin'" in message
    assert f"declared uncompressed size {2_000_000 + len(CSV):,} bytes" in message
    assert f"limit of {10 * size:,} bytes" in message
    assert snapshot(tmp_path) == before
    # The same archive passes with a generous ratio, and max_bytes caps it again.
    extract_archive(archive, tmp_path / "ok", max_ratio=10_000, log=lambda _: None)
    with pytest.raises(UnsafeArchiveError, match="limit of 1,000 bytes"):
        extract_archive(archive, tmp_path / "no", max_ratio=10_000, max_bytes=1000, log=print)


@pytest.mark.parametrize(("declared", "words"), [(10, "does not match"), (3000, "ends after")])
def test_zip_member_whose_declared_size_lies_is_refused(tmp_path, declared, words):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr("train/Images/big.jpg", JPEG * 10)
    patch_zip_size(archive, "train/Images/big.jpg", declared)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("train/Images/big.jpg").file_size == declared
    # The good member is written first; the failure must remove it with the partial folder.
    assert_refused(tmp_path, archive, "train/Images/big.jpg", words)


def test_copy_never_writes_more_than_declared(tmp_path):
    target = tmp_path / "f"
    with pytest.raises(UnsafeArchiveError, match="more bytes than its declared size of 10"):
        archives._copy(io.BytesIO(bytes(20)), str(target), 10, "a.zip: member 'f'")
    assert target.stat().st_size == 10


# ----------------------------------------------------------------------------------------------
# Fast paths (tar headers read by _scan_tar, data copied by offset, stored zip members) and
# their fallbacks: the same files, the same refusals.

BIG = random.Random(117).randbytes(2_560_000)  # more than one _CHUNK; incompressible
FAST = {
    "base/Annotations/label.csv": CSV,
    "base/Images/skirt_length_labels/a.jpg": JPEG,
    "base/Images/skirt_length_labels/empty.jpg": b"",
    "base/Images/skirt_length_labels/block.jpg": bytes(range(256)) * 2,  # exactly 512 bytes
    "base/Images/coat_length_labels/big.jpg": BIG,
    "base/Images/coat_length_labels/caf\u00e9.jpg": JPEG[::-1],
}


def _fast_tar(path: Path, mode: str = "w", fmt: int = tarfile.GNU_FORMAT) -> Path:
    with tarfile.open(path, mode, format=fmt) as tar:
        tar_special(tar, "base", tarfile.DIRTYPE)
        for name, data in FAST.items():
            tar_file(tar, name, data)
        tar_special(tar, "base/Images/hard.jpg", tarfile.LNKTYPE, "base/Annotations/label.csv")
        tar_special(tar, "base/Images/soft.jpg", tarfile.SYMTYPE, "skirt_length_labels/a.jpg")
    return path


def _fast_zip(path: Path, compression: int = zipfile.ZIP_STORED, stream: bool = False) -> Path:
    """A zip of FAST; ``stream``: written to an unseekable file (data descriptors)."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.data += b
            return len(b)

    target = Unseekable() if stream else path
    with zipfile.ZipFile(target, "w", compression) as zf:  # type: ignore[arg-type]
        zf.writestr("base/Images/", b"")
        for name, data in FAST.items():
            zf.writestr(name, data)
    if stream:
        path.write_bytes(bytes(target.data))  # type: ignore[union-attr]
    return path


def _check_fast(dest: Path, links: bool = False) -> None:
    for name, data in FAST.items():
        assert (dest / name).read_bytes() == data, name
    if links:
        hard = dest / "base/Images/hard.jpg"
        assert hard.stat().st_ino == (dest / "base/Annotations/label.csv").stat().st_ino
        assert (dest / "base/Images/soft.jpg").is_symlink()
        assert (dest / "base/Images/soft.jpg").read_bytes() == JPEG


def _no_getmembers(self):
    raise AssertionError("tarfile listed the archive: _scan_tar fell back")


@pytest.mark.parametrize(("suffix", "mode"), [(".tar", "w"), (".tar.gz", "w:gz")])
@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_fast_tar_extracts_identical_files(tmp_path, monkeypatch, suffix, mode, fmt):
    archive = _fast_tar(tmp_path / f"a{suffix}", mode, fmt)
    monkeypatch.setattr(tarfile.TarFile, "getmembers", _no_getmembers)
    summary = extract_archive(archive, tmp_path / "a", log=lambda _: None)
    _check_fast(tmp_path / "a", links=True)
    assert summary.files == len(FAST) + 2
    assert summary.bytes == sum(len(d) for d in FAST.values())


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_listed_by_tarfile_extracts_identical_files(tmp_path, fmt):
    """Long names need GNU or PAX extension headers: tarfile lists, the data is still copied."""
    long_name = "base/Images/" + "x" * 150 + ".jpg"
    archive = _fast_tar(tmp_path / "a.tar", fmt=fmt)
    with tarfile.open(archive, "a", format=fmt) as tar:
        tar_file(tar, long_name, BIG[:5000])
    with tarfile.open(archive) as tar:
        assert archives._scan_tar(tar) is None
    extract_archive(archive, tmp_path / "a", log=lambda _: None)
    _check_fast(tmp_path / "a", links=True)
    assert (tmp_path / "a" / long_name).read_bytes() == BIG[:5000]


@pytest.mark.parametrize(
    ("compression", "stream"),
    [(zipfile.ZIP_STORED, False), (zipfile.ZIP_STORED, True), (zipfile.ZIP_DEFLATED, False)],
    ids=["stored", "stored-data-descriptor", "deflated"],
)
def test_zip_extracts_identical_files(tmp_path, monkeypatch, compression, stream):
    archive = _fast_zip(tmp_path / "a.zip", compression, stream)
    if compression == zipfile.ZIP_STORED:  # copied by offset, never through zipfile.open
        monkeypatch.setattr(zipfile.ZipFile, "open", _no_getmembers)
    summary = extract_archive(archive, tmp_path / "a", log=lambda _: None, max_ratio=1000)
    _check_fast(tmp_path / "a")
    assert summary.bytes == sum(len(d) for d in FAST.values())


def test_stored_zip_with_local_extra_field_unlike_central(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in FAST.items():
            with zf.open(name, "w", force_zip64=True) as member:  # zip64 extra: local only
                member.write(data)
    with zipfile.ZipFile(archive) as zf:
        assert all(not info.extra for info in zf.infolist())
    extract_archive(archive, tmp_path / "a", log=lambda _: None)
    _check_fast(tmp_path / "a")


def _kernel_copy_says(result):
    def fake(*args, **kwargs):
        if isinstance(result, Exception):
            raise result
        return result

    return fake


@pytest.mark.parametrize(
    ("kind", "fallback"),
    [
        ("tar", "no-descriptor"),
        ("tar", "copy_file_range-EXDEV"),
        ("tar", "copy_file_range-ENOSYS"),
        ("tar", "copy_file_range-0"),
        ("zip", "no-descriptor"),
    ],
)
def test_fallbacks_extract_identical_files(tmp_path, monkeypatch, kind, fallback):
    if fallback == "no-descriptor":  # as on a platform without pread: tarfile/zipfile streams
        monkeypatch.setattr(archives, "_plain_fd", lambda fileobj: None)
    else:
        error = {"EXDEV": OSError(errno.EXDEV, "x"), "ENOSYS": OSError(errno.ENOSYS, "x")}
        result = error.get(fallback.rsplit("-", 1)[1], 0)  # 0: a file system reporting no data
        monkeypatch.setattr(os, "copy_file_range", _kernel_copy_says(result), raising=False)
    if kind == "tar":
        archive = _fast_tar(tmp_path / "a.tar")
        extract_archive(archive, tmp_path / "a", log=lambda _: None)
        _check_fast(tmp_path / "a", links=True)
    else:
        archive = _fast_zip(tmp_path / "a.zip")
        extract_archive(archive, tmp_path / "a", log=lambda _: None, max_ratio=1000)
        _check_fast(tmp_path / "a")


def test_copy_file_range_errors_that_are_real_are_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(
        os, "copy_file_range", _kernel_copy_says(OSError(errno.EIO, "I/O error")), raising=False
    )
    archive = _fast_tar(tmp_path / "a.tar")
    with pytest.raises(OSError, match="I/O error") as info:
        extract_archive(archive, tmp_path / "a", log=lambda _: None)
    assert "member 'base/Annotations/label.csv'" in str(info.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()


def _cut_after_listing(monkeypatch, archive: Path, at: int) -> None:
    """Truncate ``archive`` at byte ``at`` once its members are checked, before writing."""
    check = archives._check_entries

    def check_then_cut(*args, **kwargs):
        check(*args, **kwargs)
        with open(archive, "r+b") as handle:
            handle.truncate(at)

    monkeypatch.setattr(archives, "_check_entries", check_then_cut)


@pytest.mark.parametrize("kernel", [True, False], ids=["copy_file_range", "pread"])
def test_tar_member_cut_short_while_writing_is_refused(tmp_path, monkeypatch, kernel):
    archive = _fast_tar(tmp_path / "a.tar")
    with tarfile.open(archive) as tar:
        member = tar.getmember("base/Images/coat_length_labels/big.jpg")
    _cut_after_listing(monkeypatch, archive, member.offset_data + 1000)
    if not kernel:
        monkeypatch.setattr(
            os, "copy_file_range", _kernel_copy_says(OSError(errno.ENOSYS, "x")), raising=False
        )
    assert_refused(
        tmp_path, archive, member.name, f"ends after 1,000 of its declared {len(BIG):,} bytes"
    )


def test_tar_gz_cut_short_while_writing_is_refused(tmp_path, monkeypatch):
    archive = _fast_tar(tmp_path / "a.tar.gz", "w:gz")
    _cut_after_listing(monkeypatch, archive, archive.stat().st_size // 2)
    dest = tmp_path / "a"
    with pytest.raises(UnsafeArchiveError, match="member 'base/Images/coat_length_labels/big.jpg'"):
        extract_archive(archive, dest, log=lambda _: None)
    assert not dest.exists() and not (tmp_path / "a.partial").exists()


def _zip_data_offset(archive: Path, name: str) -> int:
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
    with open(archive, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
    return info.header_offset + 30 + name_length + extra_length


def test_stored_zip_member_cut_short_while_writing_is_refused(tmp_path, monkeypatch):
    archive = _fast_zip(tmp_path / "a.zip")
    name = "base/Images/coat_length_labels/big.jpg"
    _cut_after_listing(monkeypatch, archive, _zip_data_offset(archive, name) + 1000)
    assert_refused(tmp_path, archive, name, "data does not match its header")


def test_stored_zip_member_with_bad_crc_is_refused(tmp_path):
    archive = _fast_zip(tmp_path / "a.zip")
    name = "base/Images/coat_length_labels/big.jpg"
    data = bytearray(archive.read_bytes())
    data[_zip_data_offset(archive, name) + 2_000_000] ^= 0xFF
    archive.write_bytes(bytes(data))
    assert_refused(tmp_path, archive, name, "Bad CRC-32")


def test_stored_zip_local_name_unlike_central_is_left_to_zipfile(tmp_path):
    archive = _fast_zip(tmp_path / "a.zip")
    name = "base/Images/skirt_length_labels/a.jpg"
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        at = zf.getinfo(name).header_offset + 30
    assert data[at : at + len(name)] == name.encode()
    data[at : at + len(name)] = name.replace("a.jpg", "b.jpg").encode()
    archive.write_bytes(bytes(data))
    assert_refused(tmp_path, archive, name, "differ")


def test_stored_zip_member_overlapping_the_next_is_left_to_zipfile(tmp_path):
    """Newer zipfile refuses a member whose data runs into the next one (``_end_offset``)."""
    archive = _fast_zip(tmp_path / "a.zip")
    with zipfile.ZipFile(archive) as zf:
        real = zf.getinfo("base/Images/coat_length_labels/big.jpg")
    fields = ("orig_filename", "filename", "extra", "header_offset", "CRC", "flag_bits")
    info = types.SimpleNamespace(**{f: getattr(real, f) for f in fields})
    info.compress_type, info.compress_size, info.file_size = zipfile.ZIP_STORED, len(BIG), len(BIG)
    end = _zip_data_offset(archive, real.filename) + len(BIG)
    with open(archive, "rb") as handle:
        fd = handle.fileno()
        info._end_offset = end - 1
        assert archives._copy_stored(fd, info, None, str(tmp_path / "x")) is None
        assert not (tmp_path / "x").exists()
        info._end_offset = end
        assert archives._copy_stored(fd, info, None, str(tmp_path / "x")) == len(BIG)
    assert (tmp_path / "x").read_bytes() == BIG


# What _scan_tar reads must be what tarfile reads; where it cannot be sure, it gives up.
SCAN_CASES = {
    "short names": {"base/a.jpg": JPEG, "base/empty": b"", "base/x/../y.jpg": CSV},
    "ustar prefix": {"base/" + "d" * 90 + "/" + "f" * 90 + ".jpg": JPEG},
    "utf-8 name": {"base/caf\u00e9.jpg": JPEG},
}


def _tarfile_view(archive: Path) -> tuple[list[tuple], int]:
    kinds = {tarfile.DIRTYPE: "directory", tarfile.SYMTYPE: "symbolic link"}
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        rows = [
            (
                m.name,
                "file" if m.isreg() else kinds.get(m.type, "hard link"),
                m.size if m.isreg() else 0,
                m.linkname,
                m.offset_data if m.isreg() else -1,
            )
            for m in members
        ]
        return rows, tar.offset


@pytest.mark.parametrize("case", list(SCAN_CASES))
@pytest.mark.parametrize(
    "fmt",
    [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
    ids=["ustar", "gnu", "pax"],
)
@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_scan_reads_what_tarfile_reads(tmp_path, case, fmt, mode):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, mode, format=fmt) as tar:
        tar_special(tar, "base/", tarfile.DIRTYPE)
        v7 = tarfile.TarInfo("base/old/")  # a V7 directory: a regular file named with a slash
        v7.type = tarfile.AREGTYPE
        tar.addfile(v7)
        for name, data in SCAN_CASES[case].items():
            tar_file(tar, name, data)
        tar_special(tar, "base/hard", tarfile.LNKTYPE, "base/a.jpg")
        tar_special(tar, "base/soft", tarfile.SYMTYPE, "a.jpg")
        tar.addfile(tarfile.TarInfo("last"), io.BytesIO(b""))
    expected, end = _tarfile_view(archive)
    with tarfile.open(archive) as tar:
        scanned = archives._scan_tar(tar)
        needs_extension = case != "short names" and fmt != tarfile.USTAR_FORMAT
        needs_extension &= not (case == "utf-8 name" and fmt == tarfile.GNU_FORMAT)
        if needs_extension:  # GNU long name or PAX header: tarfile's job
            assert scanned is None
            return
        assert scanned is not None
        entries, scanned_end = scanned
        got = [(e.name, e.kind, e.size, e.link, e.offset) for e in entries]
        assert got == expected
        assert scanned_end == end
        for entry in entries:  # the TarInfo built for the data filter is tarfile's
            info = archives._tarinfo(entry, tar)
            assert (info.name, info.linkname) == (entry.name, entry.link)


def test_scan_gives_up_on_unusual_headers(tmp_path):
    def scan(data: bytes) -> object:
        path = tmp_path / "x.tar"
        path.write_bytes(data)
        with tarfile.open(path) as tar:
            return archives._scan_tar(tar)

    good = make_tar(tmp_path / "g.tar", {"base/a.jpg": JPEG, "base/b.jpg": JPEG}).read_bytes()
    assert scan(good) is not None
    second = 1024  # the header of base/b.jpg (tarfile.open reads the first one itself)

    def header(**fields: bytes) -> bytes:
        """``good`` with fields of the second header replaced and its checksum made right."""
        block = bytearray(good[second : second + 512])
        where = {"mode": (100, 8), "uid": (108, 8), "size": (124, 12), "type": (156, 1)}
        for field, value in fields.items():
            start, width = where[field]
            block[start : start + width] = value.ljust(width, b"\0")
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
        return good[:second] + bytes(block) + good[second + 512 :]

    assert scan(header(mode=b"0000644 ")) is not None  # a space instead of a NUL is fine
    assert scan(header(mode=b" 644")) is not None
    assert scan(header(uid=b"\x80" + bytes(6) + b"\x01")) is None  # base-256
    assert scan(header(mode=b"0 644")) is None  # tarfile stops here: not ours to judge
    assert scan(header(size=b"\xff" * 12)) is None
    assert scan(header(type=b"3")) is None  # a device: tarfile lists it, we refuse it
    assert scan(header(type=b"x")) is None  # PAX
    assert scan(header(type=b"L")) is None  # GNU long name
    bad_sum = bytearray(good)
    bad_sum[second] ^= 1
    assert scan(bytes(bad_sum)) is None
    assert scan(good[: second + 100]) is None  # cut inside a header
    assert scan(good[:second]) is None  # cut at a header: no end marker
    # A tar ends at its first zero block, where the scan stops too.
    entries, end = scan(good[:second] + bytes(512) + good[second:])
    assert [e.name for e in entries] == ["base/a.jpg"] and end == second


def test_write_all_finishes_partial_writes(tmp_path, monkeypatch):
    write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: write(fd, bytes(data[:7])))
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        archives._write_all(fd, bytes(range(100)))
    finally:
        os.close(fd)
    monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == bytes(range(100))


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs a tar that writes sparse files")
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_tar_members_go_through_tarfile(tmp_path, fmt):
    source = tmp_path / "src"
    (source / "base").mkdir(parents=True)
    sparse = source / "base" / "sparse.bin"
    with open(sparse, "wb") as handle:
        handle.write(b"head")
        handle.seek(3 * 1024 * 1024)
        handle.write(b"tail")
    (source / "base" / "plain.jpg").write_bytes(JPEG)
    archive = tmp_path / "s.tar"
    result = subprocess.run(
        ["tar", "--sparse", f"--format={fmt}", "-cf", str(archive), "-C", str(source), "base"],
        capture_output=True,
    )
    if result.returncode != 0:
        pytest.skip(f"tar cannot write {fmt} sparse archives: {result.stderr!r}")
    with tarfile.open(archive) as tar:
        if tar.getmember("base/sparse.bin").sparse is None:
            pytest.skip("this tar did not store the file as sparse")
    extract_archive(archive, tmp_path / "s", log=lambda _: None, max_ratio=10_000)
    assert (tmp_path / "s/base/sparse.bin").read_bytes() == sparse.read_bytes()
    assert (tmp_path / "s/base/plain.jpg").read_bytes() == JPEG
