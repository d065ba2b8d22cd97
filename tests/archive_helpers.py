"""Building test archives member by member, and checking that a refused archive wrote nothing
(shared by the archive unit and hardening tests)."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
from pathlib import Path

import pytest

from fashionai.archives import UnsafeArchiveError, extract_archive
from fashionai.atomic import partial_path

# The destination is four folders below the test's root, so "../../../../x" lands in the root
# itself, where the before/after listing sees it.
DEST = ("work", "results", "extracted", "round1")
UP_TO_ROOT = "../" * 4


def quiet(_: str) -> None:
    pass


def tar_file(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    """Add a regular file ``name`` holding ``data``."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def tar_special(tar: tarfile.TarFile, name: str, kind: bytes, link: str = "") -> None:
    """Add a member of type ``kind`` (a link, device, FIFO ...) pointing at ``link``."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    tar.addfile(info)


def patch_zip_size(path: Path, member: str, new_size: int) -> None:
    """Make the local and central headers of ``member`` declare ``new_size`` bytes."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    headers = ((b"PK\x03\x04", 26, 22, 30), (b"PK\x01\x02", 28, 24, 46))
    for signature, name_len_at, size_at, header in headers:
        at = data.find(signature)
        while at != -1:
            length = struct.unpack_from("<H", data, at + name_len_at)[0]
            if data[at + header : at + header + length] == name:
                struct.pack_into("<I", data, at + size_at, new_size)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``root``: its type and, for a file, its link count (links not followed)."""
    out = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        links = 0 if stat.S_ISDIR(info.st_mode) else info.st_nlink
        out[path.relative_to(root).as_posix()] = (stat.S_IFMT(info.st_mode), links)
    return out


def refused(
    root: Path,
    archive: Path,
    *words: str,
    member: str | None = None,
    error: type[Exception] = UnsafeArchiveError,
    **limits: float,
) -> str:
    """Extraction into ``root/DEST`` fails naming the archive, the member and ``words``, and
    nothing was written: no destination, no partial or old folder (a stale partial folder of
    a killed run is removed), nothing anywhere else below ``root``, no new hard link to a file.
    """
    dest = root.joinpath(*DEST)
    stale = partial_path(dest)
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "old.jpg").write_bytes(b"from a killed run")
    before = {
        path: kind
        for path, kind in listing(root).items()
        if not path.startswith(stale.relative_to(root).as_posix())
    }
    with pytest.raises(error) as info:
        extract_archive(archive, dest, log=quiet, **limits)
    message = str(info.value)
    assert str(archive) in message, message
    if member is not None:
        assert repr(member) in message, message
    for word in words:
        assert word in message, message
    after = listing(root)
    assert not os.path.lexists(dest)
    assert after == before, set(after.items()) ^ set(before.items())
    return message
