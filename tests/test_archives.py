"""Safe extraction: good tar/tar.gz/zip archives, and hostile ones that must be refused."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from fashionai import archives
from fashionai.archives import archive_id, extract_archive
from fashionai.atomic import OLD_PREFIX, partial_path
from tests.archive_helpers import patch_zip_size, quiet, refused, tar_file, tar_special

JPEG = b"\xff\xd8\xff\xe0" + bytes(100) + b"\xff\xd9"
BIG = os.urandom(3 * 1024 * 1024)  # more than one copy chunk
CSV = b"Images/skirt_length_labels/a.jpg,skirt_length_labels,nynnnn\n"
SIDECAR = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"
GOOD = {
    "base/Annotations/label.csv": CSV,
    "base/Images/skirt_length_labels/a.jpg": JPEG,
    "base/Images/skirt_length_labels/._a.jpg": SIDECAR,
}


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
    with pytest.raises(ValueError) as info:
        archive_id(path)
    assert str(info.value) == f"{path}: {archives.NOT_AN_ARCHIVE}"


# ----------------------------------------------------------------------------------------------
# Good archives


def _check_good(dest: Path, summary: archives.ExtractionSummary) -> None:
    assert (dest / "base/Annotations/label.csv").read_bytes() == CSV
    assert (dest / "base/Images/skirt_length_labels/a.jpg").read_bytes() == JPEG
    assert not (dest / "base/Images/skirt_length_labels/._a.jpg").exists()
    assert sorted(os.listdir(dest.parent)) == [dest.name]  # no partial or old folder
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
    summary = extract_archive(archive, tmp_path / "out" / "train2", log=quiet)
    _check_good(tmp_path / "out" / "train2", summary)
    assert summary.skipped == 2
    assert not (tmp_path / "out" / "train2" / "__MACOSX").exists()


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_large_members_are_copied_whole(tmp_path, compression):
    with zipfile.ZipFile(tmp_path / "a.zip", "w", compression) as zf:
        zf.writestr("base/big.bin", BIG)
    make_tar(tmp_path / "a.tar.gz", {"base/big.bin": BIG}, "w:gz")
    for archive in (tmp_path / "a.zip", tmp_path / "a.tar.gz"):
        summary = extract_archive(archive, tmp_path / archive.name.replace(".", "_"), log=quiet)
        assert (tmp_path / archive.name.replace(".", "_") / "base/big.bin").read_bytes() == BIG
        assert summary.bytes == len(BIG)


def test_tar_directories_links_inside_and_dot_slash_names(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        tar_special(tar, "./base", tarfile.DIRTYPE)
        tar_file(tar, "./base/x.jpg", JPEG)
        tar_special(tar, "base/hard.jpg", tarfile.LNKTYPE, "./base/x.jpg")
        tar_special(tar, "base/sub/soft.jpg", tarfile.SYMTYPE, "../x.jpg")
        tar_file(tar, "base/y/../z.jpg", JPEG)  # '..' that stays inside is fine
    dest = tmp_path / "a"
    summary = extract_archive(archive, dest, log=quiet)
    assert summary.files == 4
    assert (dest / "base/hard.jpg").stat().st_ino == (dest / "base/x.jpg").stat().st_ino
    assert (dest / "base/sub/soft.jpg").is_symlink()
    assert (dest / "base/sub/soft.jpg").read_bytes() == JPEG
    assert (dest / "base/z.jpg").read_bytes() == JPEG


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_a_file_named_like_an_earlier_link_replaces_it_never_writes_through(tmp_path, kind):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        tar_file(tar, "base/label.csv", CSV)
        link = "label.csv" if kind == tarfile.SYMTYPE else "base/label.csv"
        tar_special(tar, "base/a.jpg", kind, link)
        tar_file(tar, "base/a.jpg", JPEG)
    dest = tmp_path / "a"
    extract_archive(archive, dest, log=quiet)
    assert (dest / "base/label.csv").read_bytes() == CSV
    assert (dest / "base/a.jpg").read_bytes() == JPEG
    assert not (dest / "base/a.jpg").is_symlink()
    assert (dest / "base/label.csv").stat().st_nlink == 1


def test_format_is_detected_by_content(tmp_path):
    archive = make_tar(tmp_path / "really_a_tar.zip", GOOD)
    summary = extract_archive(archive, tmp_path / "out" / "x", log=quiet)
    _check_good(tmp_path / "out" / "x", summary)


def test_not_an_archive(tmp_path):
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"this is not an archive at all" * 40)
    refused(tmp_path, bogus, "neither a tar", error=ValueError)


def test_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.tar"):
        extract_archive(tmp_path / "nothere.tar", tmp_path / "x", log=quiet)


def test_progress_and_leftovers(tmp_path):
    archive = make_tar(tmp_path / "a.tar", {f"base/Images/{i}.jpg": JPEG for i in range(5)})
    dest = tmp_path / "out" / "a"
    (partial_path(dest) / "junk").mkdir(parents=True)  # left over by a killed run
    dest.mkdir()
    (dest / "old.txt").write_text("from an earlier run")
    messages: list[str] = []
    summary = extract_archive(archive, dest, log=messages.append, progress_every=2)
    assert summary.files == 5
    assert sorted(os.listdir(dest / "base/Images")) == [f"{i}.jpg" for i in range(5)]
    assert sorted(os.listdir(dest.parent)) == ["a"]  # the old output, partial and .old gone
    assert sum("so far" in m for m in messages) == 2


def test_stale_old_folder_of_a_killed_publish_is_removed(tmp_path):
    """A run killed between moving the old destination aside and publishing the new one."""
    archive = make_tar(tmp_path / "g.tar", GOOD)
    dest = tmp_path / "out" / "g"
    old = dest.with_name(OLD_PREFIX + dest.name)
    (old / "base").mkdir(parents=True)
    extract_archive(archive, dest, log=quiet)
    assert sorted(os.listdir(dest.parent)) == ["g"]


# ----------------------------------------------------------------------------------------------
# Hostile tar members: each refused by its own check, with its own message, before anything is
# written (another check catching it later, e.g. tarfile's data filter, does not count).


def _hostile_tar(path: Path, add) -> Path:
    with tarfile.open(path, "w") as tar:
        tar_file(tar, "base/Annotations/label.csv", CSV)  # a good member comes first
        add(tar)
    return path


OUT = "' leads outside the extraction folder"
HOSTILE_TAR = {
    "dotdot": ("../evil", lambda t: tar_file(t, "../evil"), "'..' leads outside"),
    "dotdot-after-folder": (
        "base/../../evil",
        lambda t: tar_file(t, "base/../../evil"),
        "'..' leads outside",
    ),
    "absolute": ("/abs/evil", lambda t: tar_file(t, "/abs/evil"), "has an absolute path"),
    "drive-letter": ("C:/evil", lambda t: tar_file(t, "C:/evil"), "has an absolute path"),
    "symlink-absolute": (
        "base/passwd",
        lambda t: tar_special(t, "base/passwd", tarfile.SYMTYPE, "/etc/passwd"),
        "symbolic link to '/etc/passwd" + OUT,
    ),
    "symlink-up": (
        "base/up",
        lambda t: tar_special(t, "base/up", tarfile.SYMTYPE, "../../x"),
        "symbolic link to '../../x" + OUT,
    ),
    "hardlink-up": (
        "base/hard",
        lambda t: tar_special(t, "base/hard", tarfile.LNKTYPE, "../outside"),
        "hard link to '../outside" + OUT,
    ),
    "hardlink-absolute": (
        "base/hard",
        lambda t: tar_special(t, "base/hard", tarfile.LNKTYPE, "/etc/passwd"),
        "hard link to '/etc/passwd" + OUT,
    ),
    "hardlink-to-later": (
        "base/hard",
        lambda t: tar_special(t, "base/hard", tarfile.LNKTYPE, "base/later"),
        "hard link to 'base/later', which is not an earlier file",
    ),
    "symlink-empty": (
        "base/l",
        lambda t: tar_special(t, "base/l", tarfile.SYMTYPE, ""),
        "symbolic link without a target",
    ),
    "chardev": (
        "base/tty",
        lambda t: tar_special(t, "base/tty", tarfile.CHRTYPE),
        "is a character device",
    ),
    "blockdev": (
        "base/disk",
        lambda t: tar_special(t, "base/disk", tarfile.BLKTYPE),
        "is a block device",
    ),
    "fifo": ("base/pipe", lambda t: tar_special(t, "base/pipe", tarfile.FIFOTYPE), "is a FIFO"),
}


@pytest.mark.parametrize("case", list(HOSTILE_TAR))
def test_hostile_tar_members_are_refused(tmp_path, case):
    member, add, words = HOSTILE_TAR[case]
    archive = _hostile_tar(tmp_path / "hostile.tar", add)
    refused(tmp_path, archive, words, member=member)


@pytest.mark.parametrize("reverse", [False, True], ids=["link-first", "link-last"])
def test_symlink_chain_escaping_is_refused(tmp_path, reverse):
    # d/l1 -> .. is inside, and l2 -> d/l1/../.. looks inside lexically but is really outside,
    # whichever of the two comes first.
    def add(tar):
        links = [("base/d/l1", ".."), ("base/l2", "d/l1/../..")]
        for name, target in reversed(links) if reverse else links:
            tar_special(tar, name, tarfile.SYMTYPE, target)

    archive = _hostile_tar(tmp_path / "chain.tar", add)
    refused(tmp_path, archive, "goes through symbolic link member 'base/d/l1'", member="base/l2")


def test_member_written_through_a_symlink_is_refused(tmp_path):
    def add(tar):
        tar_special(tar, "base/link", tarfile.SYMTYPE, "Images")
        tar_file(tar, "base/link/x.jpg", JPEG)

    archive = _hostile_tar(tmp_path / "through.tar", add)
    refused(
        tmp_path, archive, "goes through symbolic link member 'base/link'", member="base/link/x.jpg"
    )


def test_tar_data_filter_is_a_second_line_of_defence(tmp_path, monkeypatch):
    def refuse(member, path):
        raise tarfile.OutsideDestinationError(member, path)

    monkeypatch.setattr(tarfile, "data_filter", refuse)
    archive = make_tar(tmp_path / "a.tar", GOOD)
    refused(tmp_path, archive, "data filter", member="base/Annotations/label.csv")


@pytest.mark.parametrize("field", ["path", "linkpath"])
def test_nul_in_a_pax_name_is_refused(tmp_path, field):
    archive = tmp_path / "nul.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("base/x.jpg")
        info.type = tarfile.SYMTYPE
        info.pax_headers = {field: "base/a\0b"}
        tar.addfile(info)
    member = "base/a\0b" if field == "path" else "base/x.jpg"
    refused(tmp_path, archive, "a NUL character", member=member)


# ----------------------------------------------------------------------------------------------
# Hostile zip members


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
        ("../evil", "../evil", "'..' leads outside"),
        ("train/../../evil", "train/../../evil", "'..' leads outside"),
        ("/abs/evil", "/abs/evil", "has an absolute path"),
        ("..\\evil", "..\\evil", "'..' leads outside"),
        ("C:/evil", "C:/evil", "has an absolute path"),
        ("train/link", _zip_info("train/link", stat.S_IFLNK | 0o777), "zip links are refused"),
        ("train/tty", _zip_info("train/tty", stat.S_IFCHR | 0o644), "special file (mode 20644)"),
        ("train/pipe", _zip_info("train/pipe", stat.S_IFIFO | 0o644), "special file (mode 10644)"),
    ],
)
def test_hostile_zip_members_are_refused(tmp_path, member, entry, words):
    archive = _hostile_zip(tmp_path / "hostile.zip", entry, b"/etc/passwd")
    refused(tmp_path, archive, words, member=member)


def test_zip_bomb_by_declared_ratio_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr("train/zeros.bin", bytes(2_000_000))
    size = archive.stat().st_size
    refused(
        tmp_path,
        archive,
        f"declared uncompressed size {2_000_000 + len(CSV):,} bytes",
        f"limit of {10 * size:,} bytes",
        member="train/zeros.bin",
    )
    # The same archive passes with a generous ratio, and max_bytes caps it again.
    extract_archive(archive, tmp_path / "ok", max_ratio=10_000, log=quiet)
    refused(tmp_path, archive, "limit of 1,000 bytes", max_ratio=10_000, max_bytes=1000)


@pytest.mark.parametrize(
    ("declared", "words"), [(10, "Bad CRC-32"), (3000, "ends after 1,060 of its declared 3,000")]
)
def test_zip_member_whose_declared_size_lies_is_refused(tmp_path, declared, words):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("train/Annotations/label.csv", CSV)
        zf.writestr("train/Images/big.jpg", JPEG * 10)
    patch_zip_size(archive, "train/Images/big.jpg", declared)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("train/Images/big.jpg").file_size == declared
    # The good member is written first; the failure must remove it with the partial folder.
    refused(tmp_path, archive, words, member="train/Images/big.jpg")


# ----------------------------------------------------------------------------------------------
# Member count (extract.max_members) and names that are not UTF-8


def _many_members(path: Path, count: int) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for i in range(count):
            tar_file(tar, f"base/Images/{i}.jpg", b"")
    return path


def test_too_many_members_are_refused_before_extraction(tmp_path):
    archive = _many_members(tmp_path / "many.tar.gz", 300)
    assert archive.stat().st_size < 10_000
    refused(tmp_path, archive, "at least 101 members", "limit of 100", max_members=100)
    summary = extract_archive(archive, tmp_path / "ok", max_members=300, log=quiet)
    assert summary.files == 300


def test_too_many_zip_members_are_refused(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"train/{i}.jpg": b"" for i in range(20)})
    refused(tmp_path, archive, "at least 20 members", "limit of 19", max_members=19)


def test_tar_name_not_utf8_is_refused_naming_the_raw_bytes(tmp_path):
    archive = tmp_path / "latin1.tar"
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        tar_file(tar, "base/caf\u00e9.jpg", JPEG)
    message = refused(tmp_path, archive, "is not valid UTF-8")
    assert repr(b"base/caf\xe9.jpg") in message


def test_tar_link_target_not_utf8_is_refused(tmp_path):
    archive = tmp_path / "latin1.tar"
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        tar_special(tar, "base/link.jpg", tarfile.SYMTYPE, "caf\u00e9.jpg")
    refused(tmp_path, archive, "member b'base/link.jpg'", "link target is not valid UTF-8")


def test_zip_names_in_utf8_and_cp437_are_extracted(tmp_path):
    archive = tmp_path / "names.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train/caf\u00e9.jpg", JPEG)  # non-ASCII: zipfile sets the UTF-8 flag
        zf.writestr("train/old?.jpg", CSV)  # patched below to a cp437 byte, no flag
    data = archive.read_bytes().replace(b"old?", b"old\x82")
    archive.write_bytes(data)
    dest = tmp_path / "names"
    extract_archive(archive, dest, log=quiet)
    assert (dest / "train/caf\u00e9.jpg").read_bytes() == JPEG
    assert (dest / "train/old\u00e9.jpg").read_bytes() == CSV  # 0x82 is é in cp437


def test_zip_name_flagged_utf8_but_invalid_is_refused(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train/caf\u00e9.jpg", JPEG)
    archive.write_bytes(archive.read_bytes().replace("\u00e9".encode(), b"\xff\xfe"))
    message = refused(tmp_path, archive, "flagged as UTF-8", error=ValueError)
    assert repr(b"train/caf\xff\xfe.jpg") in message


# ----------------------------------------------------------------------------------------------
# An archive that changes between the check and the writing (a download still running)


def _cut_after_check(monkeypatch, archive: Path, at: int) -> None:
    """Truncate ``archive`` at byte ``at`` once its members are checked, before writing."""
    check = archives._check_members

    def check_then_cut(*args, **kwargs):
        check(*args, **kwargs)
        with open(archive, "r+b") as handle:
            handle.truncate(at)

    monkeypatch.setattr(archives, "_check_members", check_then_cut)


@pytest.mark.parametrize("name", ["a.tar", "a.tar.gz", "a.zip"])
def test_member_cut_short_while_writing_is_refused(tmp_path, monkeypatch, name):
    files = {"base/Annotations/label.csv": CSV, "base/Images/big.jpg": BIG}
    if name.endswith(".zip"):
        archive = make_zip(tmp_path / name, files)
    else:
        archive = make_tar(tmp_path / name, files, "w:gz" if name.endswith(".gz") else "w")
    _cut_after_check(monkeypatch, archive, archive.stat().st_size // 2)
    refused(tmp_path, archive, "corrupt or tampered archive", member="base/Images/big.jpg")


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs a tar that writes sparse files")
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_tar_members(tmp_path, fmt):
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
    extract_archive(archive, tmp_path / "s", log=quiet, max_ratio=10_000)
    assert (tmp_path / "s/base/sparse.bin").read_bytes() == sparse.read_bytes()
    assert (tmp_path / "s/base/plain.jpg").read_bytes() == JPEG
