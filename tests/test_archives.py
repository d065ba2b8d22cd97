"""Safe extraction: good tar/tar.gz/zip archives, and hostile ones that must be refused."""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from fashionai import archives
from fashionai.archives import UnsafeArchiveError, archive_id, extract_archive

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


def _tar_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _tar_special(tar: tarfile.TarFile, name: str, kind: bytes, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    tar.addfile(info)


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            _tar_file(tar, name, data)
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
        _tar_special(tar, "./base", tarfile.DIRTYPE)
        _tar_file(tar, "./base/x.jpg", JPEG)
        _tar_special(tar, "base/hard.jpg", tarfile.LNKTYPE, "./base/x.jpg")
        _tar_special(tar, "base/sub/soft.jpg", tarfile.SYMTYPE, "../x.jpg")
        _tar_file(tar, "base/y/../z.jpg", JPEG)  # '..' that stays inside is fine
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
        _tar_file(tar, "base/Annotations/label.csv", CSV)  # a good member comes first
        add(tar)
    return path


@pytest.mark.parametrize(
    ("member", "add", "words"),
    [
        ("../evil", lambda t: _tar_file(t, "../evil", b"x"), ["outside"]),
        ("base/../../evil", lambda t: _tar_file(t, "base/../../evil", b"x"), ["outside"]),
        ("/abs/evil", lambda t: _tar_file(t, "/abs/evil", b"x"), ["absolute path"]),
        (
            "base/passwd",
            lambda t: _tar_special(t, "base/passwd", tarfile.SYMTYPE, "/etc/passwd"),
            ["symbolic link", "/etc/passwd"],
        ),
        (
            "base/up",
            lambda t: _tar_special(t, "base/up", tarfile.SYMTYPE, "../../x"),
            ["symbolic link", "outside"],
        ),
        (
            "base/hard",
            lambda t: _tar_special(t, "base/hard", tarfile.LNKTYPE, "../outside"),
            ["hard link", "outside"],
        ),
        (
            "base/hard",
            lambda t: _tar_special(t, "base/hard", tarfile.LNKTYPE, "/etc/passwd"),
            ["hard link", "absolute"],
        ),
        (
            "base/hard",
            lambda t: _tar_special(t, "base/hard", tarfile.LNKTYPE, "base/later"),
            ["not an earlier file"],
        ),
        ("base/tty", lambda t: _tar_special(t, "base/tty", tarfile.CHRTYPE), ["character device"]),
        ("base/disk", lambda t: _tar_special(t, "base/disk", tarfile.BLKTYPE), ["block device"]),
        ("base/pipe", lambda t: _tar_special(t, "base/pipe", tarfile.FIFOTYPE), ["FIFO"]),
    ],
)
def test_hostile_tar_members_are_refused(tmp_path, member, add, words):
    archive = _hostile_tar(tmp_path / "hostile.tar", add)
    assert_refused(tmp_path, archive, member, *words)


def test_symlink_chain_escaping_is_refused(tmp_path):
    # d/l1 -> .. is inside, and l2 -> d/l1/.. looks inside lexically but is really outside.
    def add(tar):
        _tar_special(tar, "base/d/l1", tarfile.SYMTYPE, "..")
        _tar_special(tar, "base/l2", tarfile.SYMTYPE, "d/l1/../..")

    archive = _hostile_tar(tmp_path / "chain.tar", add)
    assert_refused(tmp_path, archive, "base/l2", "goes through symbolic link member")


def test_member_written_through_a_symlink_is_refused(tmp_path):
    def add(tar):
        _tar_special(tar, "base/link", tarfile.SYMTYPE, "Images")
        _tar_file(tar, "base/link/x.jpg", JPEG)

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


def _patch_sizes(path: Path, member: str, new_size: int) -> None:
    """Make the local and central headers of ``member`` declare ``new_size`` bytes."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local != -1:
        name_len = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30 : local + 30 + name_len] == name:
            struct.pack_into("<I", data, local + 22, new_size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_len] == name:
            struct.pack_into("<I", data, central + 24, new_size)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("declared", "words"), [(10, "does not match"), (3000, "ends after")])
def test_zip_member_whose_declared_size_lies_is_refused(tmp_path, declared, words):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr("train/Images/big.jpg", JPEG * 10)
    _patch_sizes(archive, "train/Images/big.jpg", declared)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("train/Images/big.jpg").file_size == declared
    # The good member is written first; the failure must remove it with the partial folder.
    assert_refused(tmp_path, archive, "train/Images/big.jpg", words)


def test_copy_never_writes_more_than_declared(tmp_path):
    target = tmp_path / "f"
    with pytest.raises(UnsafeArchiveError, match="more bytes than its declared size of 10"):
        archives._copy(io.BytesIO(bytes(20)), str(target), 10, "a.zip: member 'f'")
    assert target.stat().st_size == 10
