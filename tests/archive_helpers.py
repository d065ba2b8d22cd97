"""Building test archives member by member (shared by the archive unit and hardening tests)."""

from __future__ import annotations

import io
import struct
import tarfile
from pathlib import Path


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
    for signature, name_len_at, size_at, header in ((b"PK\x03\x04", 26, 22, 30),
                                                    (b"PK\x01\x02", 28, 24, 46)):  # fmt: skip
        at = data.find(signature)
        while at != -1:
            length = struct.unpack_from("<H", data, at + name_len_at)[0]
            if data[at + header : at + header + length] == name:
                struct.pack_into("<I", data, at + size_at, new_size)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
