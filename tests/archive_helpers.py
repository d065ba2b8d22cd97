"""Building test archives member by member (shared by the archive unit and hardening tests)."""

from __future__ import annotations

import io
import tarfile


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
