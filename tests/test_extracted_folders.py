"""Already-extracted folders as `archives:` entries: linked in with the archive path's checks.

A folder in the real layout decodes exactly like its tar twin; a hostile folder (a symbolic link
leading out, a special file, a name that is not UTF-8) is refused before anything is written,
like a hostile archive; the configuration accepts folders and names what it accepts otherwise;
extraction and the image check log a percentage.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fashionai import decoding
from fashionai.annotations import merge_annotations
from fashionai.archives import NOT_AN_ARCHIVE, UnsafeArchiveError, archive_id, extract_archive
from fashionai.config import ConfigError, validate_config
from tests.archive_helpers import DEST, quiet, refused, tar_file, tar_special
from tests.workflow_helpers import run_snakemake, tiny_config, workflow_config

SKIRT = "skirt_length_labels"
SIDECAR = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 60)).save(buffer, fmt)
    return buffer.getvalue()


# The real layout (docs: fashionai-format.md): labels and images below base/, a PNG named .jpg,
# an unreadable image, a row whose image is missing, a bad code, macOS sidecars.
LABELS = "".join(
    f"Images/{SKIRT}/{name},{SKIRT},{code}\n"
    for name, code in [
        ("a.jpg", "nynnnn"),
        ("b.jpg", "nnymnn"),
        ("broken.jpg", "ynnnnn"),
        ("gone.jpg", "nnnnyn"),
        ("linked.jpg", "nnnnny"),
        ("a.jpg", "nyyynn"),
    ]
)
MEMBERS = {
    "base/Annotations/label.csv": LABELS.encode(),
    f"base/Images/{SKIRT}/a.jpg": _image("JPEG"),
    f"base/Images/{SKIRT}/b.jpg": _image("PNG"),
    f"base/Images/{SKIRT}/broken.jpg": b"\xff\xd8\xff\xe0 not really",
    f"base/Images/{SKIRT}/._a.jpg": SIDECAR,
    "__MACOSX/base/._label.csv": SIDECAR,
}
LINK = (f"base/Images/{SKIRT}/linked.jpg", "a.jpg")  # a symbolic link that stays inside


def write_folder(root: Path, members: dict[str, bytes]) -> Path:
    """The members of an archive as they are after unpacking it by hand."""
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """The members as a tar archive, then symbolic links ``name: target``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            tar_file(tar, name, data)
        for name, target in (links or {}).items():
            tar_special(tar, name, tarfile.SYMTYPE, target)
    return path


def _decoded(folder: Path) -> tuple[pd.DataFrame, ...]:
    """Merged, decoded and rejected rows of an extracted folder, its own path cut from them."""
    merged = merge_annotations([("round1", folder)])
    tables = (merged, *decoding.decode_labels(merged, workers=1, log=quiet))
    prefix = folder.as_posix()
    return tuple(t.assign(image=t["image"].str.replace(prefix, "<folder>")) for t in tables)


def test_a_folder_decodes_like_its_tar_twin_and_shares_its_files(tmp_path):
    folder = write_folder(tmp_path / "raw" / "round1", MEMBERS)
    os.symlink(LINK[1], folder / LINK[0])
    tar = write_tar(tmp_path / "raw" / "round1.tar", MEMBERS, dict([LINK]))
    from_tar, from_folder = tmp_path / "tar" / "round1", tmp_path / "folder" / "round1"
    tar_summary = extract_archive(tar, from_tar, log=quiet)
    messages: list[str] = []
    summary = extract_archive(folder, from_folder, log=messages.append)

    assert (summary.files, summary.bytes) == (tar_summary.files, tar_summary.bytes)
    assert summary.files == 5  # 4 files and the link
    for twin, table in zip(_decoded(from_tar), _decoded(from_folder), strict=True):
        pd.testing.assert_frame_equal(twin, table)
    decoded, rejected = _decoded(from_folder)[1:]
    assert sorted(decoded["image_name"]) == ["a.jpg", "b.jpg", "linked.jpg"]
    reasons = {decoding.MULTIPLE_Y, decoding.IMAGE_UNREADABLE, decoding.IMAGE_MISSING}
    assert set(rejected["reason"].str.split(":").str[0]) == reasons
    image = f"base/Images/{SKIRT}/a.jpg"
    assert (from_folder / image).stat().st_ino == (folder / image).stat().st_ino  # a hard link
    assert os.readlink(from_folder / LINK[0]) == LINK[1]
    assert not (from_folder / "__MACOSX").exists()
    assert not (from_folder / f"base/Images/{SKIRT}/._a.jpg").exists()
    assert summary.skipped == 4  # the sidecar, and __MACOSX/, __MACOSX/base/, its file
    assert "linked 5 and copied 0 files" in messages[-1]
    assert sorted(os.listdir(from_folder.parent)) == ["round1"]  # no partial folder left


def test_files_that_cannot_be_hard_linked_are_copied_and_logged(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "round1", MEMBERS)

    def other_file_system(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", other_file_system)
    messages: list[str] = []
    summary = extract_archive(folder, tmp_path / "out" / "round1", log=messages.append)
    image = f"base/Images/{SKIRT}/a.jpg"
    assert summary.copied == summary.files == 4
    assert (tmp_path / "out/round1" / image).read_bytes() == MEMBERS[image]
    assert (folder / image).stat().st_nlink == 1
    assert "linked 0 and copied 4 files" in messages[-2]
    assert "4 files copied, not hard-linked: the folder is on another file system" in messages[-1]


# ----------------------------------------------------------------------------------------------
# Hostile folders: refused like hostile archives (tests/test_hardening_archives.py), naming the
# folder and the entry, with nothing written (tests.archive_helpers.refused).


def _socket(path: Path) -> None:
    cwd = Path.cwd()  # a socket's path is limited to about 100 bytes: bind by its name
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path.name)
    finally:
        os.chdir(cwd)


def _device(kind: int) -> Callable[[Path, Path], None]:
    def make(path: Path, _: Path) -> None:
        try:
            os.mknod(path, kind | 0o600, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")

    return make


OUTSIDE = "leads outside the folder"
Make = Callable[[Path, Path], None]  # (the entry's path, the test's root)
# case: (the entry's name below the folder, how to make it, words of the message)
HOSTILE: dict[str, tuple[str, Make, str]] = {
    "absolute symlink out": (
        "base/x.jpg",
        lambda p, root: p.symlink_to(root / "victim.txt"),
        OUTSIDE,
    ),
    "relative symlink out": (
        "base/x.jpg",
        lambda p, _: p.symlink_to("../../../../victim.txt"),
        OUTSIDE,
    ),
    "symlink to a folder out": ("base/out", lambda p, root: p.symlink_to(root), OUTSIDE),
    # base/exit -> the folder (inside); base/a/hop -> ../exit/.. stays inside if read lexically
    "chain of links out": ("base/a/hop", lambda p, _: _chain(p), OUTSIDE),
    "sidecar symlink out": ("base/._x.jpg", lambda p, _: p.symlink_to("/etc/passwd"), OUTSIDE),
    "dangling symlink out": (
        "base/x.jpg",
        lambda p, _: p.symlink_to("/nonexistent/x.jpg"),
        OUTSIDE,
    ),
    "FIFO": ("base/Images/pipe.jpg", lambda p, _: os.mkfifo(p), "is a FIFO; refused"),
    "socket": ("base/s", lambda p, _: _socket(p), "is a socket; refused"),
    "character device": ("base/c", _device(stat.S_IFCHR), "is a character device; refused"),
    "block device": ("base/b", _device(stat.S_IFBLK), "is a block device; refused"),
}


def _chain(path: Path) -> None:
    (path.parents[1] / "exit").symlink_to("..")
    path.symlink_to("../exit/..")


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_folder_is_refused_and_nothing_written(tmp_path, case):
    name, make, words = HOSTILE[case]
    (tmp_path / "victim.txt").write_text("precious")
    folder = write_folder(tmp_path / "raw" / "in" / "round1", MEMBERS)
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    make(folder / name, tmp_path)
    refused(tmp_path, folder, words, member=name)
    assert (tmp_path / "victim.txt").read_text() == "precious"


def test_folder_entry_named_in_other_bytes_than_utf8_is_refused(tmp_path):
    folder = write_folder(tmp_path / "round1", MEMBERS)
    with open(os.path.join(os.fsencode(folder / "base"), b"caf\xe9.jpg"), "wb"):
        pass
    refused(tmp_path, folder, "entry b'base/caf\\xe9.jpg': its name is not valid UTF-8")


def test_folder_holding_its_own_extraction_folder_is_refused(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="holds its extraction folder"):
        extract_archive(tmp_path, tmp_path.joinpath(*DEST), log=quiet)
    assert not (tmp_path / DEST[0]).exists()


# ----------------------------------------------------------------------------------------------
# Progress


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("make", [write_tar, _zip, write_folder], ids=["tar", "zip", "folder"])
def test_extraction_progress_gives_a_percentage(tmp_path, make):
    members = {f"base/Images/{i}.jpg": b"x" * 10 for i in range(6)}
    members["base/Images/._0.jpg"] = SIDECAR  # skipped, not counted
    source = make(tmp_path / "round1.src", members)
    messages: list[str] = []
    extract_archive(source, tmp_path / "out", log=messages.append, progress_every=2)
    assert [m for m in messages if "so far" in m] == [
        f"round1.src: {n} of 6 files ({n / 6:.0%}), {10 * n} bytes so far" for n in (2, 4, 6)
    ]


def test_image_check_progress_gives_a_percentage(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "round1", MEMBERS)
    monkeypatch.setattr(decoding, "_CHECK_CHUNK", 2)
    messages: list[str] = []
    decoding.decode_labels(merge_annotations([("round1", folder)]), workers=1, log=messages.append)
    # the images of the 5 rows that pass the code checks (the second a.jpg row has two y)
    expected = [f"checked {n} of 5 images ({n / 5:.0%})" for n in (2, 4, 5)]
    assert messages == expected


# ----------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    "path", ["resources/raw/round1", "resources/raw/round1/", "resources/raw/round.2.d"]
)
def test_config_accepts_a_folder_under_any_name(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    questions = path.replace("round", "test")
    for folder in (path, questions):
        Path(folder).mkdir(parents=True)
    validate_config(workflow_config(archives=[path], questions=questions))
    assert archive_id(path) == Path(path).name


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("archives", "resources/raw/labels.rar"),
        ("archives", "resources/raw/round1"),  # a folder that does not exist
        ("archives", ""),
        ("questions", "resources/raw/test_a.7z"),
    ],
)
def test_config_names_what_it_accepts_without_a_regular_expression(
    tmp_path, monkeypatch, key, value
):
    monkeypatch.chdir(tmp_path)
    write_tar(tmp_path / "resources/raw/round1.tar", MEMBERS)
    where = "archives[0]" if key == "archives" else "questions"
    config = workflow_config(**{key: [value] if key == "archives" else value})
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert str(error.value) == f"{where} = {value!r}: {NOT_AN_ARCHIVE}"
    assert "tar.gz" in NOT_AN_ARCHIVE and "folder" in NOT_AN_ARCHIVE
    assert not any(c in str(error.value) for c in "|$^\\")


def test_a_folder_and_an_archive_of_one_name_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_folder(tmp_path / "raw/round1", MEMBERS)
    write_tar(tmp_path / "raw/round1.tar", MEMBERS)
    with pytest.raises(ConfigError, match="same folder results/extracted/round1"):
        validate_config(workflow_config(archives=["raw/round1.tar", "raw/round1"]))


# ----------------------------------------------------------------------------------------------
# Through Snakemake: the rule takes the folder as its input


def test_the_workflow_links_a_folder_in(tmp_path):
    folder = write_folder(tmp_path / "resources/raw/round1", MEMBERS)
    config = tiny_config(archives=["resources/raw/round1"])
    result = run_snakemake(tmp_path, config, "results/extracted/round1")
    assert result.returncode == 0, result.stderr[-3000:]
    image = f"base/Images/{SKIRT}/a.jpg"
    extracted = tmp_path / "results/extracted/round1" / image
    assert extracted.stat().st_ino == (folder / image).stat().st_ino
    log = (tmp_path / "logs/extract/round1.log").read_text()
    assert "linked 4 and copied 0 files" in log, log
