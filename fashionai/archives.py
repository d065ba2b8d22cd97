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

Speed (about 20 us per member in tarfile and zipfile is most of the time for small files): tar
headers are read by ``_scan_tar``, a strict reader of ordinary ustar/GNU headers that gives
exactly what ``tarfile`` would and hands anything else (PAX or GNU long-name headers, sparse
files, base-256 numbers, signed checksums, damage) back to ``tarfile``, which then lists the
whole archive itself. A plain tar's member data is copied from the archive file by offset, in
the kernel (``os.copy_file_range``) where it can; a tar.gz is read forward from its
decompressed stream; a stored zip member is copied from behind its local header, which must
agree with the central directory, and its CRC is checked as ``zipfile`` checks it. The rest
(deflated zip members, sparse tar members) goes through ``zipfile``/``tarfile``.

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

import errno
import gzip
import io
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ARCHIVE_SUFFIXES: tuple[str, ...] = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20
_RANGE = 1 << 30  # at most this many bytes per copy_file_range call
_FILE, _DIR, _SYMLINK, _HARDLINK = "file", "directory", "symbolic link", "hard link"
_DRIVE = re.compile(r"^[A-Za-z]:")
# Errors of the archive libraries while reading member data: corrupt or tampered archives.
_DATA_ERRORS = (
    tarfile.TarError, zipfile.BadZipFile, zlib.error, gzip.BadGzipFile, lzma.LZMAError, EOFError,
    NotImplementedError,
)  # fmt: skip
# copy_file_range failures that only mean "not here" (old kernel, other file system, seccomp):
# the copy falls back to pread/write, which raises a real error if there is one.
_NO_KERNEL_COPY = {
    getattr(errno, name) for name in ("ENOSYS", "EXDEV", "EINVAL", "EOPNOTSUPP", "ENOTSUP",
                                      "EPERM", "EACCES") if hasattr(errno, name)
}  # fmt: skip


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


@dataclass(slots=True)
class _Entry:
    """One archive member, in archive-neutral form."""

    name: str  # as in the archive (zip: backslashes turned into slashes)
    kind: str  # _FILE, _DIR, _SYMLINK or _HARDLINK
    size: int  # declared bytes of a file, else 0
    link: str  # target of a link as stored, else ""
    member: tarfile.TarInfo | zipfile.ZipInfo | None  # None: listed by _scan_tar, see header
    parts: tuple[str, ...] = ()  # the normalised path inside the destination
    skip: bool = False  # macOS metadata: checked but not written
    offset: int = -1  # tar file: where its data starts in the tar stream (-1: use tarfile)
    header: bytes = b""  # the 512-byte tar header, when listed by _scan_tar

    def where(self, archive: Path) -> str:
        """The archive and the member's name as stored, for messages."""
        stored = self.member.filename if isinstance(self.member, zipfile.ZipInfo) else self.name
        return f"{archive}: member {stored!r}"


def _normalise(name: str, base: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """``name`` resolved lexically below ``base``; None if a ``..`` climbs out of the root."""
    split = name.split("/")
    if not base and "" not in split and "." not in split and ".." not in split:
        return tuple(split)  # the common case: nothing to resolve
    parts = list(base)
    for component in split:
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


# _scan_tar: the header types it reads itself, and the fields of a header block.
_TAR_KINDS = {b"0": _FILE, b"\0": _FILE, b"1": _HARDLINK, b"2": _SYMLINK, b"5": _DIR}
_TAR_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8x32s32s8s8s155s12x")
# A numeric field tarfile's nti() reads as int(digits, 8): no base-256, nothing unusual.
_TAR_NUMBER = re.compile(rb" *([0-7]*)[ \0]*").fullmatch
_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)
_WINDOW = 1 << 16


def _scan_tar(tar: tarfile.TarFile) -> tuple[list[_Entry], int] | None:
    """The members of ``tar`` and the offset of its end marker, read fast, or None.

    Reads only ordinary headers (types 0, NUL, 1, 2, 5 with octal numbers and an unsigned
    checksum) and computes name, type, size, link and data offset exactly as
    ``tarfile.TarInfo.frombuf`` and ``_proc_builtin`` do; it stops at the first all-zero block,
    where tarfile stops too. At anything else (a PAX, GNU long-name or sparse header, a field
    tarfile reads differently, a short or damaged block, a read error) it returns None and the
    caller lists the archive with tarfile, so damaged archives fail exactly as before.
    """
    fileobj = tar.fileobj
    if fileobj is None or tar.pax_headers:
        return None
    encoding, errors = tar.encoding, tar.errors
    fd = _plain_fd(fileobj)
    stream = _Forward(fileobj)

    def read(offset: int) -> bytes:
        if fd is not None:
            return os.pread(fd, tarfile.BLOCKSIZE, offset)
        return stream.read(offset, tarfile.BLOCKSIZE)

    entries = []
    offset = 0
    number = _TAR_NUMBER
    try:
        while True:
            block = read(offset)
            if block == _ZERO_BLOCK:
                return entries, offset
            if len(block) != tarfile.BLOCKSIZE:
                return None
            (name, mode, uid, gid, size, mtime, chksum, kind, link,
             uname, gname, major, minor, prefix) = _TAR_HEADER.unpack(block)  # fmt: skip
            kind = _TAR_KINDS.get(kind)
            checksum = number(chksum)
            sizes = number(size)
            if (
                kind is None or checksum is None or sizes is None or number(mode) is None
                or number(uid) is None or number(gid) is None or number(mtime) is None
                or number(major) is None or number(minor) is None
                # the unsigned sum of the block with the checksum field as spaces (NULs add 0)
                or int(checksum[1] or b"0", 8)
                != sum(block.translate(None, b"\0")) - sum(chksum) + 256
            ):  # fmt: skip
                return None
            name = name.partition(b"\0")[0].decode(encoding, errors)
            link = link.partition(b"\0")[0].decode(encoding, errors)
            prefix = prefix.partition(b"\0")[0].decode(encoding, errors)
            uname.partition(b"\0")[0].decode(encoding, errors)  # as tarfile decodes them
            gname.partition(b"\0")[0].decode(encoding, errors)
            if kind == _FILE and block[156:157] == b"\0" and name.endswith("/"):
                kind = _DIR  # an old V7 directory
            if kind == _DIR:
                name = name.rstrip("/")
            if prefix:
                name = prefix + "/" + name
                if kind == _DIR:  # as _proc_builtin does again
                    name = name.rstrip("/")
            data = offset + tarfile.BLOCKSIZE
            if kind == _FILE:
                count = int(sizes[1] or b"0", 8)
                entries.append(_Entry(name, kind, count, "", None, offset=data, header=block))
                offset = data + -(-count // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            else:
                entries.append(_Entry(name, kind, 0, link, None, header=block))
                offset = data
    except (*_DATA_ERRORS, OSError, ValueError):
        return None


class _Forward:
    """Reads a (compressed) stream at increasing offsets, in big pieces: seeking and reading a
    ``GzipFile`` is slow per call. Seeks where an offset is not in the piece at hand."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self.fileobj = fileobj
        # The piece at hand and its offset in the stream, which is read up to its end: none
        # yet, and -1 so that the first read seeks.
        self.window, self.start = b"", -1

    def read(self, offset: int, count: int) -> bytes:
        """``count`` bytes at ``offset``; fewer only where the stream ends."""
        at = offset - self.start
        if at < 0 or at > len(self.window):
            self.fileobj.seek(offset)
            self.window, self.start, at = b"", offset, 0
        if at + count > len(self.window):
            more = max(count - (len(self.window) - at), _WINDOW)
            self.window, self.start, at = self.window[at:] + self.fileobj.read(more), offset, 0
        return self.window[at : at + count]


def _plain_fd(fileobj: IO[bytes] | None) -> int | None:
    """The descriptor of an uncompressed archive file to ``pread``, or None (a compressed
    stream, no real file, no ``pread`` on this platform)."""
    # gzip, bz2 and lzma files are no BufferedReader, but have a fileno() too: the compressed one
    if type(fileobj) is not io.BufferedReader or not hasattr(os, "pread"):
        return None
    try:
        return fileobj.fileno()
    except (OSError, ValueError):
        return None


def _tar_entries(tar: tarfile.TarFile, archive: Path) -> tuple[list[_Entry], int]:
    """The members of ``tar`` and the offset where listing stopped (for ``_check_tar_end``)."""
    scanned = _scan_tar(tar)
    if scanned is not None:
        return scanned
    entries = []
    for member in tar.getmembers():
        if member.isreg():
            offset = member.offset_data if member.sparse is None else -1
            entries.append(_Entry(member.name, _FILE, member.size, "", member, offset=offset))
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
    return entries, tar.offset


def _check_tar_end(tar: tarfile.TarFile, archive: Path, entries: list[_Entry], end: int) -> None:
    """Refuse a tar whose member list did not end at its end-of-archive marker.

    ``tarfile`` stops listing without an error at a header it cannot read or at the end of the
    file, so a cut or damaged archive would look complete with members missing. Here the block
    where listing stopped (``end``) must be a zero block, and the rest of the stream zeros too;
    reading to the end also makes gzip check its CRC and length.
    """
    fileobj = tar.fileobj
    assert fileobj is not None
    after = f"after member {entries[-1].name!r}" if entries else "before its first member"
    fileobj.seek(end)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        raise CorruptArchiveError(
            f"{archive}: truncated archive: it ends {after} (byte {end:,} of the tar "
            "stream) without tar's end-of-archive marker; download it again"
        )
    if block.strip(b"\0"):
        raise CorruptArchiveError(
            f"{archive}: corrupt archive: unreadable tar header at byte {end:,} of the "
            f"tar stream, {after}; the members after it cannot be listed"
        )
    position = end + len(block)
    while chunk := fileobj.read(_CHUNK):
        if chunk.strip(b"\0"):
            position += len(chunk) - len(chunk.lstrip(b"\0"))
            raise CorruptArchiveError(
                f"{archive}: corrupt archive: data at byte {position:,} of the tar stream after "
                f"an end-of-archive marker at byte {end:,} ({after}): a zeroed header "
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
        if _is_absolute(entry.name):
            raise UnsafeArchiveError(f"{entry.where(archive)} has an absolute path; refused")
        parts = _normalise(entry.name)
        if parts is None:
            raise UnsafeArchiveError(
                f"{entry.where(archive)}: '..' leads outside the extraction folder; refused"
            )
        if not parts and entry.kind != _DIR:
            raise UnsafeArchiveError(
                f"{entry.where(archive)}: a {entry.kind} without a name; refused"
            )
        entry.parts, entry.skip = parts, _is_macos_metadata(parts)
        if entry.kind in (_SYMLINK, _HARDLINK):
            where = entry.where(archive)
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
        if links:
            through = _passes_through(entry.name, (), links)
            if through is None and entry.kind == _SYMLINK:
                through = _passes_through(entry.link, entry.parts[:-1], links)
            if through is None and entry.kind == _HARDLINK:
                through = _passes_through(entry.link, (), links)
            if through is not None:
                raise UnsafeArchiveError(
                    f"{entry.where(archive)} goes through symbolic link member "
                    f"{'/'.join(through)!r}; refused"
                )
        if entry.kind == _HARDLINK and not entry.skip and _normalise(entry.link) not in written:
            raise UnsafeArchiveError(
                f"{entry.where(archive)}: hard link to {entry.link!r}, which is not an earlier "
                "file of the archive; refused"
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


def _short(where: str, copied: int, declared: int) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{where} ends after {copied:,} of its declared {declared:,} bytes "
        "(corrupt or tampered archive)"
    )


def _write_all(target: int, data: bytes) -> None:
    written = os.write(target, data)
    if written < len(data):  # only on odd file systems or signals
        view = memoryview(data)
        while written < len(data):
            written += os.write(target, view[written:])


def _copy(source: IO[bytes], path: str, declared: int, where: str) -> None:
    """Copy exactly ``declared`` bytes in chunks; more or fewer is an error."""
    target = _create(path)
    try:
        remaining = declared
        while remaining > 0:
            chunk = source.read(min(_CHUNK, remaining))
            if not chunk:
                raise _short(where, declared - remaining, declared)
            _write_all(target, chunk)
            remaining -= len(chunk)
        if source.read(1):
            raise UnsafeArchiveError(
                f"{where} holds more bytes than its declared size of {declared:,}; refused"
            )
    finally:
        os.close(target)


class _RangeCopier:
    """Copies byte ranges of an archive file, given by descriptor, into new files.

    In the kernel with ``os.copy_file_range`` where it works, else with ``pread``/``write``. A
    call returns the bytes copied: fewer than asked only where the archive file ends.
    """

    def __init__(self, source: int) -> None:
        self.source = source
        self.in_kernel = hasattr(os, "copy_file_range")

    def __call__(self, offset: int, count: int, path: str) -> int:
        target = _create(path)
        try:
            copied = 0
            while copied < count:
                done = self._copy(target, offset + copied, count - copied)
                if not done:
                    break
                copied += done
        finally:
            os.close(target)
        return copied

    def _copy(self, target: int, offset: int, count: int) -> int:
        if self.in_kernel:
            try:
                done = os.copy_file_range(self.source, target, min(count, _RANGE), offset)
            except OSError as error:
                if error.errno not in _NO_KERNEL_COPY:
                    raise
                done = 0
            if done:
                return done
            # Not supported here, or 0 = end of file, which some file systems report wrongly:
            # pread decides, from now on.
            self.in_kernel = False
        data = os.pread(self.source, min(count, _CHUNK), offset)
        _write_all(target, data)
        return len(data)


# A zip local file header (zipfile.structFileHeader) and the flags zipfile refuses to read.
_ZIP_LOCAL = struct.Struct("<4s2B4HL2L2H")
_ZIP_UNSUPPORTED = 0x1 | 0x20 | 0x40  # encrypted, compressed patched data, strong encryption


def _copy_stored(fd: int, info: zipfile.ZipInfo, encoding: str | None, path: str) -> int | None:
    """Copy stored member ``info`` from the zip file ``fd``; None: leave it to ``zipfile``.

    Checks what ``ZipFile.open`` checks of the local header (its signature, that its name is
    the central directory's and, in newer Pythons, that the data does not overlap the next
    member) and the CRC as ``ZipExtFile`` does, raising what they raise.
    Anything unusual (compression, flags, a compressed size other than the size) is left to
    ``zipfile``, before a file is created. Returns the bytes copied, fewer if the file ends.
    """
    size = info.file_size
    if (
        info.compress_type != zipfile.ZIP_STORED
        or info.compress_size != size
        or info.flag_bits & _ZIP_UNSUPPORTED
    ):
        return None
    # One read for the header, the name and the extra field (assumed as long as in the central
    # directory, as they usually are) and the data of a small member.
    guess = len(info.orig_filename) + len(info.extra)
    head = os.pread(fd, _ZIP_LOCAL.size + guess + min(size, _CHUNK), info.header_offset)
    if len(head) < _ZIP_LOCAL.size:
        return None
    fields = _ZIP_LOCAL.unpack_from(head)
    signature, flags, name_length, extra_length = fields[0], fields[3], fields[10], fields[11]
    if signature != b"PK\x03\x04":
        return None
    raw = head[_ZIP_LOCAL.size : _ZIP_LOCAL.size + name_length]
    if len(raw) < name_length:
        raw = os.pread(fd, name_length, info.header_offset + _ZIP_LOCAL.size)
    codec = "utf-8" if flags & 0x800 else encoding or "cp437"  # as zipfile decodes it
    if raw.isascii() and codec in ("utf-8", "cp437"):  # both read ASCII as ASCII, faster
        name = raw.decode("ascii")
    else:
        try:
            name = raw.decode(codec)
        except UnicodeDecodeError:
            return None
    if len(raw) != name_length or name != info.orig_filename:
        return None
    skip = _ZIP_LOCAL.size + name_length + extra_length
    start = info.header_offset + skip
    end = getattr(info, "_end_offset", None)  # newer zipfile refuses overlapping members
    if end is not None and start + size > end:
        return None
    data = head[skip : skip + size]
    target = _create(path)
    try:
        crc = copied = 0
        while True:
            crc = zlib.crc32(data, crc)
            _write_all(target, data)
            copied += len(data)
            if copied >= size:
                break
            data = os.pread(fd, min(_CHUNK, size - copied), start + copied)
            if not data:
                raise EOFError  # what zipfile raises when the archive ends inside a member
    finally:
        os.close(target)
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return copied


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
                entries, end = _tar_entries(handle, archive)
                _check_tar_end(handle, archive, entries, end)
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


def _tarinfo(entry: _Entry, tar: tarfile.TarFile) -> tarfile.TarInfo:
    """The member as tarfile sees it (built from its header block if _scan_tar listed it)."""
    if isinstance(entry.member, tarfile.TarInfo):
        return entry.member
    return tarfile.TarInfo.frombuf(entry.header, tar.encoding, tar.errors)


def _copier(
    handle: tarfile.TarFile | zipfile.ZipFile, archive: Path
) -> Callable[[_Entry, str], int]:
    """A function that writes a file member to a path and returns the bytes it copied.

    Fewer bytes than the member declares mean the archive ended early; a member that yields
    more, or data that fails a check of the archive library, raises.
    """
    if isinstance(handle, zipfile.ZipFile):
        zip_file = handle
        fd = _plain_fd(zip_file.fp)
        encoding = getattr(zip_file, "metadata_encoding", None)

        def copy_zip(entry: _Entry, path: str) -> int:
            info = entry.member
            assert isinstance(info, zipfile.ZipInfo)
            copied = None if fd is None else _copy_stored(fd, info, encoding, path)
            if copied is not None:
                return copied
            with zip_file.open(info) as source:
                _copy(source, path, entry.size, entry.where(archive))
            return entry.size

        return copy_zip

    tar = handle
    fileobj = tar.fileobj
    assert fileobj is not None
    fd = _plain_fd(fileobj)

    def copy_tar(entry: _Entry, path: str) -> int:
        if entry.offset < 0:  # a sparse file: tarfile puts it together
            member = _tarinfo(entry, tar)
            source = tar.extractfile(member)
            assert source is not None
            with source:
                _copy(source, path, entry.size, entry.where(archive))
            return entry.size
        if fd is not None:
            return ranges(entry.offset, entry.size, path)
        # A compressed stream: members come in order, so this only reads forward.
        target = _create(path)
        try:
            copied = 0
            while copied < entry.size:
                chunk = stream.read(entry.offset + copied, min(_CHUNK, entry.size - copied))
                if not chunk:
                    break
                _write_all(target, chunk)
                copied += len(chunk)
        finally:
            os.close(target)
        return copied

    ranges = _RangeCopier(fd) if fd is not None else None
    stream = _Forward(fileobj)
    return copy_tar


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
    tar = handle if isinstance(handle, tarfile.TarFile) else None
    copy = _copier(handle, archive)

    def make_dirs(parts: tuple[str, ...]) -> None:
        os.makedirs(os.path.join(root_str, *parts), exist_ok=True)
        made.add(parts)

    for entry in entries:
        if entry.skip:
            summary.skipped += 1
            continue
        kind, parts = entry.kind, entry.parts
        folder = parts[:-1]
        # Defence in depth: tarfile's own check against the real file system. For a regular
        # file it depends only on the real path of its folder and its name (the file itself is
        # opened with O_NOFOLLOW, and a folder is never replaced), so once per folder is enough.
        if tar is not None and (kind != _FILE or folder not in filtered):
            if kind == _FILE:
                filtered.add(folder)
            try:
                tarfile.data_filter(_tarinfo(entry, tar), root_str)
            except tarfile.FilterError as error:
                raise UnsafeArchiveError(
                    f"{entry.where(archive)} refused by tarfile's data filter: {error}"
                ) from error
        path = root_str + "/" + "/".join(parts)
        try:
            if kind == _DIR:
                if parts not in made:
                    make_dirs(parts)
                continue
            if folder not in made:
                make_dirs(folder)
            if kind == _FILE:
                copied = copy(entry, path)
                if copied != entry.size:
                    raise _short(entry.where(archive), copied, entry.size)
                summary.bytes += copied
            elif kind == _HARDLINK:
                _replace(path)
                target = _normalise(entry.link)
                assert target is not None
                os.link(os.path.join(root_str, *target), path, follow_symlinks=False)
            else:
                _replace(path)
                os.symlink(entry.link, path)
        except _DATA_ERRORS as error:
            raise UnsafeArchiveError(
                f"{entry.where(archive)}: data does not match its header (corrupt or tampered "
                f"archive): {error}"
            ) from error
        except OSError as error:
            raise OSError(
                error.errno, f"{entry.where(archive)}: cannot write {path}: {error.strerror}"
            ) from error
        summary.files += 1
        if progress_every and summary.files % progress_every == 0:
            log(f"{archive.name}: {summary.files:,} files ({summary.bytes:,} bytes) so far")
    return summary
