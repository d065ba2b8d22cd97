"""Safe extraction of untrusted tar, tar.gz and zip archives.

``extract_archive`` reads the member list once and checks every member before it writes a
single byte: no absolute names, no ``..`` that leaves the folder, no links that point outside
it (or through another link), no device files or FIFOs, no zip symlinks, and a declared total
size within a ratio of the archive's size (zip bombs). Only then does it write, into a sibling
``<destination>.partial`` folder that is renamed to ``destination`` at the end, so an
interrupted run never leaves a folder that looks complete. While writing, each member is copied
in chunks and may not yield more bytes than it declared; tar members also pass tarfile's
``data`` filter as a second line of defence. macOS ``._*`` sidecars and ``__MACOSX/`` entries
are checked like the rest but not written.

A damaged download is refused as a whole, never extracted in part: a tar must end with its
end-of-archive marker (tarfile itself stops quietly at a truncated or unreadable header, which
would lose every member after it), and a ``.tar.gz`` is read to the end of its gzip stream so
that its CRC and length are checked. A truncated zip has no central directory and is refused at
once; a zip member whose data does not match its CRC fails while it is written. Either way the
error names the archive (and the member where there is one) and no ``.partial`` folder is left.

A ``.tar.gz`` is decompressed twice (once to list and check, once to write): the price of
refusing a hostile archive before anything lands on disk.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ARCHIVE_SUFFIXES: tuple[str, ...] = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20
_FILE, _DIR, _SYMLINK, _HARDLINK = "file", "directory", "symbolic link", "hard link"
_DRIVE = re.compile(r"^[A-Za-z]:")
# Errors of the archive libraries while reading member data: corrupt or tampered archives.
_DATA_ERRORS = (
    tarfile.TarError, zipfile.BadZipFile, zlib.error, gzip.BadGzipFile, lzma.LZMAError, EOFError,
    NotImplementedError,
)  # fmt: skip


class UnsafeArchiveError(ValueError):
    """An archive member that would be written outside its folder, or is not plain data."""


class CorruptArchiveError(ValueError):
    """An archive that is truncated or damaged (an incomplete download, a bad disk)."""


@dataclass
class ExtractionSummary:
    """What ``extract_archive`` wrote: files (incl. links), their bytes, sidecars skipped."""

    files: int
    bytes: int
    skipped: int


def archive_id(path: str | Path) -> str:
    """The archive's file name without its archive suffix: ``warm_up_train_20180201``."""
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    raise ValueError(f"{path}: not an archive name; expected one of {', '.join(ARCHIVE_SUFFIXES)}")


@dataclass
class _Entry:
    """One archive member, in archive-neutral form."""

    name: str  # as in the archive (zip: backslashes turned into slashes)
    kind: str  # _FILE, _DIR, _SYMLINK or _HARDLINK
    size: int  # declared bytes of a file, else 0
    link: str  # target of a link as stored, else ""
    member: tarfile.TarInfo | zipfile.ZipInfo
    parts: tuple[str, ...] = ()  # the normalised path inside the destination
    skip: bool = False  # macOS metadata: checked but not written

    def where(self, archive: Path) -> str:
        """The archive and the member's name as stored, for messages."""
        stored = self.member.filename if isinstance(self.member, zipfile.ZipInfo) else self.name
        return f"{archive}: member {stored!r}"


def _normalise(name: str, base: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """``name`` resolved lexically below ``base``; None if a ``..`` climbs out of the root."""
    parts = list(base)
    for component in name.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(component)
    return tuple(parts)


def _passes_through(
    name: str, base: tuple[str, ...], links: set[tuple[str, ...]]
) -> tuple[str, ...] | None:
    """The first symlink member that ``name`` (relative to ``base``) would have to go through."""
    parts = list(base)
    for component in name.split("/"):
        if component in ("", "."):
            continue
        if parts and tuple(parts) in links:
            return tuple(parts)
        if component == "..":
            if parts:
                parts.pop()
        else:
            parts.append(component)
    return None


def _is_absolute(name: str) -> bool:
    return name.startswith("/") or bool(_DRIVE.match(name))


def _is_macos_metadata(parts: tuple[str, ...]) -> bool:
    return bool(parts) and (parts[-1].startswith("._") or "__MACOSX" in parts)


def _tar_entries(tar: tarfile.TarFile, archive: Path) -> list[_Entry]:
    entries = []
    for member in tar.getmembers():
        if member.isreg():
            entries.append(_Entry(member.name, _FILE, member.size, "", member))
        elif member.isdir():
            entries.append(_Entry(member.name, _DIR, 0, "", member))
        elif member.issym():
            entries.append(_Entry(member.name, _SYMLINK, 0, member.linkname, member))
        elif member.islnk():
            entries.append(_Entry(member.name, _HARDLINK, 0, member.linkname, member))
        else:
            kind = (
                "a character device" if member.ischr()
                else "a block device" if member.isblk()
                else "a FIFO" if member.isfifo()
                else f"of unsupported type {member.type!r}"
            )  # fmt: skip
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is {kind}; refused")
    return entries


def _check_tar_end(tar: tarfile.TarFile, archive: Path, entries: list[_Entry]) -> None:
    """Refuse a tar whose member list did not end at its end-of-archive marker.

    ``tarfile`` stops listing without an error at a header it cannot read or at the end of the
    file, so a cut or damaged archive would look complete with members missing. Here the block
    where listing stopped must be a zero block, and the rest of the stream zeros too; reading to
    the end also makes gzip check its CRC and length.
    """
    fileobj = tar.fileobj
    assert fileobj is not None
    after = f"after member {entries[-1].name!r}" if entries else "before its first member"
    fileobj.seek(tar.offset)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        raise CorruptArchiveError(
            f"{archive}: truncated archive: it ends {after} (byte {tar.offset:,} of the tar "
            "stream) without tar's end-of-archive marker; download it again"
        )
    if block.strip(b"\0"):
        raise CorruptArchiveError(
            f"{archive}: corrupt archive: unreadable tar header at byte {tar.offset:,} of the "
            f"tar stream, {after}; the members after it cannot be listed"
        )
    position = tar.offset + len(block)
    while chunk := fileobj.read(_CHUNK):
        if chunk.strip(b"\0"):
            position += len(chunk) - len(chunk.lstrip(b"\0"))
            raise CorruptArchiveError(
                f"{archive}: corrupt archive: data at byte {position:,} of the tar stream after "
                f"an end-of-archive marker at byte {tar.offset:,} ({after}): a zeroed header "
                "would hide the members after it (concatenated tars are not supported either)"
            )
        position += len(chunk)


def _zip_entries(zip_file: zipfile.ZipFile, archive: Path) -> list[_Entry]:
    entries = []
    for info in zip_file.infolist():
        name = info.filename.replace("\\", "/")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(
                f"{archive}: member {info.filename!r} is a symbolic link; zip links are refused"
            )
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchiveError(
                f"{archive}: member {info.filename!r} is a special file (mode {mode:o}); refused"
            )
        if info.flag_bits & 0x1:
            raise ValueError(f"{archive}: member {info.filename!r} is encrypted; cannot extract")
        if name.endswith("/"):
            entries.append(_Entry(name, _DIR, 0, "", info))
        else:
            entries.append(_Entry(name, _FILE, info.file_size, "", info))
    return entries


def _check_entries(entries: list[_Entry], archive: Path, limit: float, size: int) -> None:
    """Refuse the whole archive if any member is unsafe; fill in ``parts`` and ``skip``."""
    links: set[tuple[str, ...]] = set()
    for entry in entries:
        where = entry.where(archive)
        if _is_absolute(entry.name):
            raise UnsafeArchiveError(f"{where} has an absolute path; refused")
        parts = _normalise(entry.name)
        if parts is None:
            raise UnsafeArchiveError(f"{where}: '..' leads outside the extraction folder; refused")
        if not parts and entry.kind != _DIR:
            raise UnsafeArchiveError(f"{where}: a {entry.kind} without a name; refused")
        entry.parts, entry.skip = parts, _is_macos_metadata(parts)
        if entry.kind in (_SYMLINK, _HARDLINK):
            if not entry.link:
                raise UnsafeArchiveError(f"{where}: {entry.kind} without a target; refused")
            if _is_absolute(entry.link):
                raise UnsafeArchiveError(
                    f"{where}: {entry.kind} to absolute path {entry.link!r}; refused"
                )
            base = parts[:-1] if entry.kind == _SYMLINK else ()
            if _normalise(entry.link, base) is None:
                raise UnsafeArchiveError(
                    f"{where}: {entry.kind} to {entry.link!r} leads outside the extraction "
                    "folder; refused"
                )
        if entry.kind == _SYMLINK:
            links.add(parts)

    written: set[tuple[str, ...]] = set()  # files and hard links written so far
    for entry in entries:
        where = entry.where(archive)
        if links:
            through = _passes_through(entry.name, (), links)
            if through is None and entry.kind == _SYMLINK:
                through = _passes_through(entry.link, entry.parts[:-1], links)
            if through is None and entry.kind == _HARDLINK:
                through = _passes_through(entry.link, (), links)
            if through is not None:
                raise UnsafeArchiveError(
                    f"{where} goes through symbolic link member {'/'.join(through)!r}; refused"
                )
        linked = _normalise(entry.link) if entry.kind == _HARDLINK else None
        if entry.kind == _HARDLINK and not entry.skip and linked not in written:
            raise UnsafeArchiveError(
                f"{where}: hard link to {entry.link!r}, which is not an earlier file of "
                "the archive; refused"
            )
        if entry.kind in (_FILE, _HARDLINK) and not entry.skip:
            written.add(entry.parts)

    files = [e for e in entries if e.kind == _FILE and not e.skip]
    declared = sum(e.size for e in files)
    if files and declared > limit:
        largest = max(files, key=lambda e: e.size)
        raise UnsafeArchiveError(
            f"{archive}: declared uncompressed size {declared:,} bytes exceeds the limit of "
            f"{int(limit):,} bytes (the smaller of max_ratio x archive size {size:,} and "
            f"max_bytes); largest member {largest.name!r} declares {largest.size:,} bytes; "
            "refused as a possible archive bomb"
        )


def _create(path: str) -> int:
    """Open ``path`` for writing without following a symlink; replace what is there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError:
        os.unlink(path)  # an earlier member of the same name (IsADirectoryError for a folder)
        return os.open(path, flags, 0o644)


def _copy(source: IO[bytes], path: str, declared: int, where: str) -> None:
    """Copy exactly ``declared`` bytes in chunks; more or fewer is an error."""
    with os.fdopen(_create(path), "wb") as target:
        remaining = declared
        while remaining > 0:
            chunk = source.read(min(_CHUNK, remaining))
            if not chunk:
                raise UnsafeArchiveError(
                    f"{where} ends after {declared - remaining:,} of its declared "
                    f"{declared:,} bytes (corrupt or tampered archive)"
                )
            target.write(chunk)
            remaining -= len(chunk)
        if source.read(1):
            raise UnsafeArchiveError(
                f"{where} holds more bytes than its declared size of {declared:,}; refused"
            )


def _replace(path: str) -> None:
    """Remove whatever is at ``path`` (not following a symlink) so a link can be made there."""
    if os.path.lexists(path):
        os.unlink(path)


def _detect(archive: Path) -> str:
    """``"tar"`` or ``"zip"`` by content; the file name only decides which is tried first."""
    order = ("zip", "tar") if archive.name.lower().endswith(".zip") else ("tar", "zip")
    for kind in order:
        if (zipfile.is_zipfile if kind == "zip" else tarfile.is_tarfile)(archive):
            return kind
    with open(archive, "rb") as handle:
        head = handle.read(4)
    if not head:
        raise CorruptArchiveError(f"{archive}: empty file, not an archive")
    if head.startswith(b"PK\x03\x04"):
        raise CorruptArchiveError(
            f"{archive}: starts like a zip archive but has no readable central directory at its "
            "end: truncated or corrupt (an incomplete download?)"
        )
    if head.startswith(b"\x1f\x8b"):
        raise CorruptArchiveError(
            f"{archive}: gzip-compressed, but its start is not a readable tar: corrupt "
            "(an incomplete or damaged download?)"
        )
    raise ValueError(f"{archive}: neither a tar (plain or gzip) nor a zip archive")


def _open_checked(archive: Path, kind: str) -> tarfile.TarFile | zipfile.ZipFile:
    """The opened archive; a damaged one raises CorruptArchiveError naming it."""
    try:
        if kind == "zip":
            return zipfile.ZipFile(archive)
        return tarfile.open(archive, "r:*")
    except (*_DATA_ERRORS, OSError) as error:
        raise CorruptArchiveError(
            f"{archive}: cannot open it as a {kind} archive (truncated or corrupt?): {error}"
        ) from error


def publish_directory(partial: Path, destination: Path) -> None:
    """Rename the finished ``partial`` folder to ``destination``, replacing an old one.

    An old ``destination`` is first moved aside to ``<destination>.old`` and removed at the end;
    one left behind by a run killed in between is removed by the next publication.
    """
    old = destination.parent / (destination.name + ".old")
    _remove(old)
    if os.path.lexists(destination):
        os.rename(destination, old)
        os.rename(partial, destination)
        _remove(old)
    else:
        os.rename(partial, destination)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def extract_archive(
    archive: Path,
    destination: Path,
    *,
    max_ratio: float = 10.0,
    max_bytes: int = 100 * 10**9,
    log: Callable[[str], None] = print,
    progress_every: int = 10000,
) -> ExtractionSummary:
    """Extract a tar, tar.gz or zip ``archive`` into ``destination`` safely and atomically.

    Raises UnsafeArchiveError (naming the archive and the member) before writing anything if a
    member is unsafe or the declared total exceeds ``min(max_ratio * archive size, max_bytes)``,
    and CorruptArchiveError (naming the archive) if it is truncated or damaged. On any error
    neither ``destination`` nor ``<destination>.partial`` is left behind.
    """
    archive, destination = Path(archive), Path(destination)
    partial = destination.parent / (destination.name + ".partial")
    _remove(partial)  # left by a killed run; removed even if this run fails too
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    kind = _detect(archive)
    size = archive.stat().st_size
    limit = min(max_ratio * size, max_bytes)
    with _open_checked(archive, kind) as handle:
        try:
            if isinstance(handle, zipfile.ZipFile):
                entries = _zip_entries(handle, archive)
            else:
                entries = _tar_entries(handle, archive)
                _check_tar_end(handle, archive, entries)
        except (*_DATA_ERRORS, OSError) as error:
            raise CorruptArchiveError(
                f"{archive}: truncated or corrupt archive, cannot read its member list: {error}"
            ) from error
        _check_entries(entries, archive, limit, size)
        log(f"{archive}: {len(entries):,} members checked ({kind}); extracting to {destination}")
        partial.mkdir(parents=True)
        try:
            summary = _write(handle, entries, archive, partial, log, progress_every)
            publish_directory(partial, destination)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    log(
        f"{archive}: extracted {summary.files:,} files ({summary.bytes:,} bytes), "
        f"skipped {summary.skipped:,} macOS metadata entries -> {destination}"
    )
    return summary


def _write(
    handle: tarfile.TarFile | zipfile.ZipFile,
    entries: list[_Entry],
    archive: Path,
    root: Path,
    log: Callable[[str], None],
    progress_every: int,
) -> ExtractionSummary:
    """Write the checked ``entries`` below ``root``."""
    root_str = str(root)
    made: set[tuple[str, ...]] = {()}
    filtered: set[tuple[str, ...]] = set()  # folders whose files passed the data filter
    summary = ExtractionSummary(files=0, bytes=0, skipped=0)

    def make_dirs(parts: tuple[str, ...]) -> None:
        if parts not in made:
            os.makedirs(os.path.join(root_str, *parts), exist_ok=True)
            made.add(parts)

    for entry in entries:
        if entry.skip:
            summary.skipped += 1
            continue
        where = entry.where(archive)
        member = entry.member
        # Defence in depth: tarfile's own check against the real file system. For a regular
        # file it depends only on the real path of its folder and its name (the file itself is
        # opened with O_NOFOLLOW, and a folder is never replaced), so once per folder is enough.
        if isinstance(member, tarfile.TarInfo) and (
            entry.kind != _FILE or entry.parts[:-1] not in filtered
        ):
            if entry.kind == _FILE:
                filtered.add(entry.parts[:-1])
            try:
                tarfile.data_filter(member, root_str)
            except tarfile.FilterError as error:
                raise UnsafeArchiveError(
                    f"{where} refused by tarfile's data filter: {error}"
                ) from error
        path = os.path.join(root_str, *entry.parts)
        try:
            if entry.kind == _DIR:
                make_dirs(entry.parts)
                continue
            make_dirs(entry.parts[:-1])
            if entry.kind == _FILE:
                if isinstance(member, zipfile.ZipInfo):
                    assert isinstance(handle, zipfile.ZipFile)
                    with handle.open(member) as source:
                        _copy(source, path, entry.size, where)
                else:
                    assert isinstance(handle, tarfile.TarFile)
                    source = handle.extractfile(member)
                    assert source is not None
                    with source:
                        _copy(source, path, entry.size, where)
                summary.bytes += entry.size
            elif entry.kind == _HARDLINK:
                _replace(path)
                target = _normalise(entry.link)
                assert target is not None
                os.link(os.path.join(root_str, *target), path, follow_symlinks=False)
            else:
                _replace(path)
                os.symlink(entry.link, path)
        except _DATA_ERRORS as error:
            raise UnsafeArchiveError(
                f"{where}: data does not match its header (corrupt or tampered archive): {error}"
            ) from error
        except OSError as error:
            raise OSError(error.errno, f"{where}: cannot write {path}: {error.strerror}") from error
        summary.files += 1
        if progress_every and summary.files % progress_every == 0:
            log(f"{archive.name}: {summary.files:,} files ({summary.bytes:,} bytes) so far")
    return summary
