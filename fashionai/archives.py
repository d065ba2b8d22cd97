"""Safe extraction of untrusted tar, tar.gz and zip archives: :func:`extract_archive`.

Every member is checked before a byte is written (names, links, special files, member count,
declared size); a tar must reach its end-of-archive marker (``tarfile`` alone stops quietly at a
bad header). Members are streamed and counted, tar members also pass tarfile's ``data`` filter,
and the folder is published atomically. An extracted folder may stand in (:func:`link_folder`):
same checks, no size or member limits (a folder is no archive bomb).
"""

from __future__ import annotations

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

from fashionai.atomic import atomic_folder, partial_path, remove
from fashionai.trees import link_or_copy

ARCHIVE_SUFFIXES: tuple[str, ...] = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20
_FILE, _DIR, _SYMLINK, _HARDLINK = "file", "directory", "symbolic link", "hard link"
_TAR_KINDS = {
    **dict.fromkeys(tarfile.REGULAR_TYPES, _FILE),
    tarfile.DIRTYPE: _DIR,
    tarfile.SYMTYPE: _SYMLINK,
    tarfile.LNKTYPE: _HARDLINK,
}
_SPECIAL = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}
_TAR_SPECIAL = {
    tarfile.CHRTYPE: _SPECIAL[stat.S_IFCHR],
    tarfile.BLKTYPE: _SPECIAL[stat.S_IFBLK],
    tarfile.FIFOTYPE: _SPECIAL[stat.S_IFIFO],
}
_DRIVE = re.compile(r"^[A-Za-z]:")
# Errors of the archive libraries while reading: a truncated, corrupt or tampered archive.
_DATA_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
# What a file that neither tarfile nor zipfile opens is, by its first bytes.
_KINDS = (
    (b"PK\x03\x04", "a zip archive without a readable central directory"),
    (b"\x1f\x8b", "gzip data that does not start with a readable tar"),
    (b"", "neither a tar (plain or gzip) nor a zip archive"),
)


class UnsafeArchiveError(ValueError):
    """An archive member that would be written outside its folder, or is not plain data."""


class CorruptArchiveError(ValueError):
    """An archive that is truncated or damaged (an incomplete download, a bad disk)."""


@dataclass
class ExtractionSummary:
    """Files (incl. links) written, their bytes, sidecars skipped, folder files copied."""

    files: int = 0
    bytes: int = 0
    skipped: int = 0
    copied: int = 0


NOT_AN_ARCHIVE = (
    f"neither an archive ({', '.join(ARCHIVE_SUFFIXES)}) nor an existing folder of an "
    "archive's extracted contents"
)


def archive_id(path: str | Path) -> str:
    """The extraction folder's name: the file name without its archive suffix, or a folder's."""
    if os.path.isdir(path):
        return os.path.basename(os.path.abspath(path))
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    raise ValueError(f"{path}: {NOT_AN_ARCHIVE}")


@dataclass(slots=True)
class _Member:
    """One archive member (or entry of an extracted folder), in archive-neutral form."""

    name: str  # as in the archive (zip: backslashes turned into slashes)
    kind: str  # _FILE, _DIR, _SYMLINK or _HARDLINK
    size: int  # declared bytes (only a file's count)
    link: str  # target of a link as stored, else ""
    info: tarfile.TarInfo | zipfile.ZipInfo | None  # None: an entry of a folder
    parts: tuple[str, ...] = ()  # the normalised path inside the destination
    target: tuple[str, ...] = ()  # a hard link's normalised target
    skip: bool = False  # macOS metadata: checked but not written

    def where(self, archive: Path) -> str:
        """The archive and the member's name as stored (a folder's entry), for messages."""
        if self.info is None:
            return f"{archive}: entry {self.name!r}"
        stored = self.info.filename if isinstance(self.info, zipfile.ZipInfo) else self.name
        return f"{archive}: member {stored!r}"


def _resolve(name: str, base: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths ``name`` leads through from ``base`` (lexically: ``base`` first, then one per
    component), the last its own; empty if a ``..`` climbs out of the root."""
    steps = [base]
    for component in name.split("/"):
        if component == "..":
            if not steps[-1]:
                return []
            steps.append(steps[-1][:-1])
        elif component not in ("", "."):
            steps.append((*steps[-1], component))
    return steps


def _is_absolute(name: str) -> bool:
    return name.startswith("/") or bool(_DRIVE.match(name))


def _check_count(count: int, archive: Path, max_members: int) -> None:
    if count > max_members:
        raise UnsafeArchiveError(
            f"{archive}: at least {count:,} members, over the limit of {max_members:,} "
            "(extract.max_members); refused as a possible archive bomb"
        )


def _tar_members(tar: tarfile.TarFile, archive: Path, max_members: int) -> list[_Member]:
    """The members of ``tar`` up to its end-of-archive marker, stopping beyond ``max_members``."""
    members = []
    for info in tar:
        _check_count(len(members) + 1, archive, max_members)
        try:
            (info.name + info.linkname).encode("utf-8")
        except UnicodeEncodeError:
            raw = info.name.encode("utf-8", "surrogateescape")
            raise UnsafeArchiveError(
                f"{archive}: member {raw!r}: its name or link target is not valid UTF-8; refused"
            ) from None
        kind = _TAR_KINDS.get(info.type)
        if kind is None:
            what = _TAR_SPECIAL.get(info.type, f"of unsupported type {info.type!r}")
            raise UnsafeArchiveError(f"{archive}: member {info.name!r} is {what}; refused")
        members.append(_Member(info.name, kind, info.size, info.linkname, info))
    _check_tar_end(tar, archive, members)
    return members


def _check_tar_end(tar: tarfile.TarFile, archive: Path, members: list[_Member]) -> None:
    """Refuse a tar whose listing did not stop at a zero block followed by zeros only (reading to
    the end also makes gzip check its CRC and length)."""
    fileobj, end = tar.fileobj, tar.offset
    assert fileobj is not None
    after = f"after member {members[-1].name!r}" if members else "before its first member"
    fileobj.seek(end)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        raise CorruptArchiveError(
            f"{archive}: truncated archive: it ends {after} (byte {end:,} of the tar "
            "stream) without tar's end-of-archive marker; download it again"
        )
    position = end
    while block:
        if block.strip(b"\0"):
            position += len(block) - len(block.lstrip(b"\0"))
            raise CorruptArchiveError(
                f"{archive}: corrupt archive: unreadable data at byte {position:,} of the tar "
                f"stream, {after}: a damaged or zeroed header hides the members after it "
                "(concatenated tars are not supported either)"
            )
        position += len(block)
        block = fileobj.read(_CHUNK)


def _zip_members(zip_file: zipfile.ZipFile, archive: Path, max_members: int) -> list[_Member]:
    infos = zip_file.infolist()
    _check_count(len(infos), archive, max_members)
    members = []
    for info in infos:
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
        name = info.filename.replace("\\", "/")
        kind = _DIR if name.endswith("/") else _FILE
        members.append(_Member(name, kind, info.file_size, "", info))
    return members


def _check_members(members: list[_Member], archive: Path, limit: float, size: int) -> None:
    """Refuse the whole archive if any member is unsafe; fill in ``parts`` and ``skip``."""
    links: set[tuple[str, ...]] = set()
    for member in members:
        where = member.where(archive)
        if "\0" in member.name + member.link:
            raise UnsafeArchiveError(f"{where}: a NUL character in its name or link; refused")
        if _is_absolute(member.name):
            raise UnsafeArchiveError(f"{where} has an absolute path; refused")
        steps = _resolve(member.name)
        if not steps:
            raise UnsafeArchiveError(f"{where}: '..' leads outside the extraction folder; refused")
        parts = member.parts = steps[-1]
        if not parts and member.kind != _DIR:
            raise UnsafeArchiveError(f"{where}: a {member.kind} without a name; refused")
        member.skip = bool(parts) and (parts[-1].startswith("._") or "__MACOSX" in parts)
        if member.kind in (_SYMLINK, _HARDLINK):
            if not member.link:
                raise UnsafeArchiveError(f"{where}: {member.kind} without a target; refused")
            base = parts[:-1] if member.kind == _SYMLINK else ()
            target = [] if _is_absolute(member.link) else _resolve(member.link, base)
            if not target:
                raise UnsafeArchiveError(
                    f"{where}: {member.kind} to {member.link!r} leads outside the extraction "
                    "folder; refused"
                )
            member.target = target[-1]
        if member.kind == _SYMLINK:
            links.add(parts)

    # With every symlink known: nothing may be written, or point, through one (a chain of
    # links that each stay inside can lead out, in whatever order they come).
    written: set[tuple[str, ...]] = set()  # files and hard links written so far
    for member in members:
        if links:
            base = member.parts[:-1] if member.kind == _SYMLINK else ()  # of the link's target
            via = _resolve(member.name)[:-1] + _resolve(member.link, base)[:-1]
            through = next((folder for folder in via if folder in links), None)
            if through:
                raise UnsafeArchiveError(
                    f"{member.where(archive)} goes through symbolic link member "
                    f"{'/'.join(through)!r}; refused"
                )
        if member.kind == _HARDLINK and not member.skip and member.target not in written:
            raise UnsafeArchiveError(
                f"{member.where(archive)}: hard link to {member.link!r}, which is not an earlier "
                "file of the archive; refused"
            )
        if member.kind in (_FILE, _HARDLINK) and not member.skip:
            written.add(member.parts)

    files = [m for m in members if m.kind == _FILE and not m.skip]
    declared = sum(m.size for m in files)
    if files and declared > limit:
        largest = max(files, key=lambda m: m.size)
        raise UnsafeArchiveError(
            f"{archive}: declared uncompressed size {declared:,} bytes exceeds the limit of "
            f"{int(limit):,} bytes (the smaller of max_ratio x archive size {size:,} and "
            f"max_bytes); largest member {largest.name!r} declares {largest.size:,} bytes; "
            "refused as a possible archive bomb"
        )


def _open(archive: Path) -> tarfile.TarFile | zipfile.ZipFile:
    """The archive opened as a tar or a zip by its content; CorruptArchiveError if neither."""
    zip_name = archive.name.lower().endswith(".zip")  # the name says which to try first
    is_zip = zipfile.is_zipfile(archive) if zip_name else not tarfile.is_tarfile(archive)
    try:
        if is_zip:
            return zipfile.ZipFile(archive)
        return tarfile.open(archive, "r:*", encoding="utf-8", errors="surrogateescape")
    except UnicodeDecodeError as error:  # zipfile: a name flagged as UTF-8 that is not
        raise CorruptArchiveError(
            f"{archive}: member {error.object!r}: its name is flagged as UTF-8 but is not "
            "valid UTF-8; refused"
        ) from None
    except (*_DATA_ERRORS, OSError) as error:
        with open(archive, "rb") as handle:
            head = handle.read(4)
        what = next(k for magic, k in _KINDS if head.startswith(magic)) if head else "an empty file"
        raise CorruptArchiveError(
            f"{archive}: {what}; cannot extract it (truncated or corrupt?): {error}"
        ) from error


def extract_archive(
    archive: Path,
    destination: Path,
    *,
    max_ratio: float = 10.0,
    max_bytes: int = 100 * 10**9,
    max_members: int = 2_000_000,
    log: Callable[[str], None] = print,
    progress_every: int = 10000,
) -> ExtractionSummary:
    """Extract ``archive`` (or link in a folder, :func:`link_folder`) into ``destination``.

    UnsafeArchiveError for an unsafe member, more than ``max_members`` members or a declared
    total above ``min(max_ratio * archive size, max_bytes)``; CorruptArchiveError if damaged.
    """
    archive, destination = Path(archive), Path(destination)
    remove(partial_path(destination))  # left by a killed run; removed even if this run fails
    if archive.is_dir():
        return link_folder(archive, destination, log=log, progress_every=progress_every)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    size = archive.stat().st_size
    with _open(archive) as handle:
        try:
            list_members = _zip_members if isinstance(handle, zipfile.ZipFile) else _tar_members
            members = list_members(handle, archive, max_members)  # type: ignore[arg-type]
        except (*_DATA_ERRORS, OSError) as error:
            raise CorruptArchiveError(
                f"{archive}: truncated or corrupt archive, cannot read its member list: {error}"
            ) from error
        _check_members(members, archive, min(max_ratio * size, max_bytes), size)
        log(f"{archive}: {len(members):,} members checked; extracting to {destination}")
        with atomic_folder(destination) as partial:
            summary = _write(handle, members, archive, partial, log, progress_every)
    log(
        f"{archive}: extracted {summary.files:,} files ({summary.bytes:,} bytes), "
        f"skipped {summary.skipped:,} macOS metadata entries -> {destination}"
    )
    return summary


def _write(
    handle: tarfile.TarFile | zipfile.ZipFile | str,
    members: list[_Member],
    archive: Path,
    root: Path,
    log: Callable[[str], None],
    progress_every: int,
) -> ExtractionSummary:
    """Write the checked ``members`` below ``root`` in order: files read from the archive
    ``handle``, or hard-linked (copied where impossible) from the folder ``handle``."""
    root_str = str(root)
    made: set[tuple[str, ...]] = {()}  # folders that exist
    filtered: set[tuple[str, ...]] = set()  # folders whose files passed the data filter
    summary = ExtractionSummary()
    total = sum(not member.skip and member.kind != _DIR for member in members)
    tar = handle if isinstance(handle, tarfile.TarFile) else None
    read = handle.open if isinstance(handle, zipfile.ZipFile) else tar.extractfile if tar else None
    for member in members:
        if member.skip:
            summary.skipped += 1
            continue
        kind, parts, folder = member.kind, member.parts, member.parts[:-1]
        # Defence in depth: tarfile's own check against the real file system; for a file it
        # depends only on its folder's real path (O_EXCL, folders never replaced): once a folder.
        if tar is not None and (kind != _FILE or folder not in filtered):
            if kind == _FILE:
                filtered.add(folder)
            try:
                tarfile.data_filter(member.info, root_str)  # type: ignore[arg-type]
            except tarfile.FilterError as error:
                raise UnsafeArchiveError(
                    f"{member.where(archive)} refused by tarfile's data filter: {error}"
                ) from error
        path = os.path.join(root_str, *parts)
        try:
            if (needed := parts if kind == _DIR else folder) not in made:
                os.makedirs(os.path.join(root_str, *needed), exist_ok=True)
                made.add(needed)
            if kind == _DIR:
                continue
            if os.path.lexists(path):  # an earlier member of that name: replaced, not followed
                os.unlink(path)
            if kind == _FILE and isinstance(handle, str):
                summary.copied += not link_or_copy(os.path.join(handle, *parts), path)
                summary.bytes += member.size
            elif kind == _FILE:
                with read(member.info) as source, open(path, "xb") as target:  # O_EXCL: no links
                    shutil.copyfileobj(source, target, _CHUNK)
                    copied = target.tell()
                if copied != member.size:
                    raise UnsafeArchiveError(
                        f"{member.where(archive)} ends after {copied:,} of its declared "
                        f"{member.size:,} bytes (corrupt or tampered archive)"
                    )
                summary.bytes += copied
            elif kind == _HARDLINK:
                os.link(os.path.join(root_str, *member.target), path, follow_symlinks=False)
            else:
                os.symlink(member.link, path)
        except _DATA_ERRORS as error:
            raise UnsafeArchiveError(
                f"{member.where(archive)}: data does not match its header (corrupt or tampered "
                f"archive): {error}"
            ) from error
        except OSError as error:
            raise OSError(
                error.errno, f"{member.where(archive)}: cannot write {path}: {error.strerror}"
            ) from error
        summary.files += 1
        if progress_every and summary.files % progress_every == 0:
            log(
                f"{archive.name}: {summary.files:,} of {total:,} files "
                f"({summary.files / total:.0%}), {summary.bytes:,} bytes so far"
            )
    return summary


def _folder_entries(folder: Path, root: str) -> list[_Member]:
    """Every entry below ``root`` (``folder``'s real path), each folder before its contents;
    UnsafeArchiveError for a name that is not UTF-8, a special file, or a symbolic link whose
    target (its chain followed to the end) is outside ``root``. A link's target is kept relative
    to its folder."""
    entries, pending = [], [()]
    while pending:
        parent = pending.pop()
        base = os.path.join(root, *parent)
        with os.scandir(base) as scan:
            items = sorted(scan, key=lambda item: item.name)
        for item in items:
            parts = (*parent, item.name)
            try:
                item.name.encode("utf-8")
            except UnicodeEncodeError:
                raw = "/".join(parts).encode("utf-8", "surrogateescape")
                raise UnsafeArchiveError(
                    f"{folder}: entry {raw!r}: its name is not valid UTF-8; refused"
                ) from None
            info = item.stat(follow_symlinks=False)
            entry = _Member("/".join(parts), _FILE, info.st_size, "", None, parts)
            entry.skip = item.name.startswith("._") or "__MACOSX" in parts
            if stat.S_ISDIR(info.st_mode):
                entry.kind = _DIR
                pending.append(parts)
            elif stat.S_ISLNK(info.st_mode):
                target = os.path.realpath(item.path)
                if os.path.commonpath([root, target]) != root:
                    raise UnsafeArchiveError(
                        f"{entry.where(folder)}: symbolic link to {os.readlink(item.path)!r} "
                        f"leads outside the folder (to {target}); refused"
                    )
                entry.kind, entry.link = _SYMLINK, os.path.relpath(target, base)
            elif not stat.S_ISREG(info.st_mode):
                what = _SPECIAL.get(stat.S_IFMT(info.st_mode), "a special file")
                raise UnsafeArchiveError(f"{entry.where(folder)} is {what}; refused")
            entries.append(entry)
    return entries


def link_folder(
    folder: Path,
    destination: Path,
    *,
    log: Callable[[str], None] = print,
    progress_every: int = 10000,
) -> ExtractionSummary:
    """Rebuild the already-extracted ``folder`` in ``destination`` atomically once every entry
    passed :func:`_folder_entries`: files hard-linked (copied where impossible), symbolic links
    made again, ``._*`` and ``__MACOSX`` left out."""
    folder, destination = Path(folder), Path(destination)
    root = os.path.realpath(folder)
    if os.path.commonpath([root, os.path.realpath(destination.parent)]) == root:
        raise UnsafeArchiveError(f"{folder}: holds its extraction folder {destination}; refused")
    entries = _folder_entries(folder, root)
    total = sum(not entry.skip and entry.kind != _DIR for entry in entries)
    log(f"{folder}: {len(entries):,} entries checked; linking {total:,} files into {destination}")
    with atomic_folder(destination) as partial:
        summary = _write(root, entries, folder, partial, log, progress_every)
    log(
        f"{folder}: linked {summary.files - summary.copied:,} and copied {summary.copied:,} "
        f"files ({summary.bytes:,} bytes), skipped {summary.skipped:,} macOS metadata entries "
        f"-> {destination}"
    )
    if summary.copied:
        log(
            f"{folder}: {summary.copied:,} files copied, not hard-linked: the folder is on "
            "another file system than results/, or its files may not be linked by this user"
        )
    return summary
