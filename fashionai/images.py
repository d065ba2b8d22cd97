"""A cheap check that an image file is there, complete and of a sane size, without decoding it.

Reads the start of the file (the format's signature and header) and the last kilobyte (JPEG's
end marker, PNG's IEND chunk): enough to catch missing, empty, non-image and truncated files
among 180k images in seconds. The formats are those Keras reads: JPEG, PNG, GIF, BMP,
recognised by content, so a PNG inside a file named ``.jpg`` is fine.

The header also declares the image's width and height: JPEG in its frame header (the SOFn
marker, found by walking the segment headers and seeking over their bodies), PNG in IHDR, GIF
in the logical screen descriptor, BMP in the DIB header. An image declaring more than
``MAX_PIXELS`` pixels (40 megapixels; FashionAI images are about 512 x 512 = 0.26 MP) is
rejected here, because decoding it at training time would try to allocate width x height x 3
bytes: a "decompression bomb" of a few hundred bytes can declare 100000 x 100000 pixels (30 GB).
An image declaring zero width or height is rejected too.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import struct
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

MAX_PIXELS = 40_000_000
"""The largest width x height ``check_image`` accepts (40 megapixels: 120 MB decoded as RGB)."""

MISSING = "missing"
EMPTY = "empty file"
UNKNOWN = "not an image (unknown header)"
TRUNCATED_JPEG = "truncated JPEG (no end marker)"
TRUNCATED_PNG = "truncated PNG (no IEND)"
NOT_A_FILE = "not a regular file"
NO_JPEG_FRAME = "corrupt JPEG (no frame header before the image data)"
CORRUPT_JPEG = "corrupt JPEG header"
CORRUPT_PNG = "corrupt PNG (no IHDR header)"
CORRUPT_BMP = "corrupt BMP header"
TRUNCATED_HEADER = "truncated image header"
TOO_LARGE = "image dimensions {width}x{height} exceed the limit of {limit:,} pixels"
NO_PIXELS = "image dimensions {width}x{height}: no pixels"

_SIGNATURE = 32  # enough for every format's signature and size fields but JPEG's
_HEAD = 4096
_TAIL = 1024
_CHUNK = 256  # the fewest paths per task of check_images' workers
_CHUNKS_PER_WORKER = 4
_PARALLEL_FROM = 4096  # fewer paths are checked in this process: a fork costs more
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()
_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG frame headers: SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-RST7, SOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_MAX_SEGMENTS = 1000  # real files have about 5-20 before the frame header
_JPEG_MAX_JUNK = 1 << 16  # stray bytes before a marker that a decoder would skip
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


class _Truncated(Exception):
    """The file ends inside its header."""


class _Bytes:
    """The bytes of an open file by offset: from its first ``_HEAD`` bytes, read once, where
    they hold the range, else with one ``pread``; a range past the end raises _Truncated."""

    __slots__ = ("fd", "head")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.head = os.pread(fd, min(size, _HEAD), 0)

    def read(self, offset: int, count: int) -> bytes:
        end = offset + count
        data = self.head[offset:end] if end <= len(self.head) else os.pread(self.fd, count, offset)
        if len(data) < count:
            raise _Truncated
        return data


def _jpeg_size(data: _Bytes) -> tuple[int, int] | str:
    """Width and height from the JPEG frame header, else a reason; _Truncated at the end."""
    head, known = data.head, len(data.head) - 9  # a marker, length and frame header fit below
    position = 2  # after SOI
    junk = 0
    for _ in range(_JPEG_MAX_SEGMENTS):
        fast = position < known
        byte = head[position] if fast else data.read(position, 1)[0]
        position += 1
        if byte != 0xFF:  # decoders skip stray bytes between segments, with a warning
            junk += 1
            if junk > _JPEG_MAX_JUNK:
                return CORRUPT_JPEG
            continue
        code = head[position] if fast else data.read(position, 1)[0]
        position += 1
        while code == 0xFF:  # fill bytes
            code = data.read(position, 1)[0]
            position += 1
        if code == 0x00 or code in _JPEG_STANDALONE:
            continue
        if code in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return NO_JPEG_FRAME
        length = struct.unpack(">H", data.read(position, 2))[0]
        if length < 2:
            return CORRUPT_JPEG
        if code in _JPEG_SOF:
            _precision, height, width = struct.unpack(">BHH", data.read(position + 2, 5))
            return width, height
        position += length  # the length counts its own two bytes
    return CORRUPT_JPEG


def _bmp_size(head: bytes) -> tuple[int, int] | str:
    if len(head) < 26:
        raise _Truncated
    dib = struct.unpack_from("<I", head, 14)[0]
    if dib not in _BMP_DIB_SIZES:
        return CORRUPT_BMP
    if dib == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit
        return struct.unpack_from("<HH", head, 18)
    width, height = struct.unpack_from("<ii", head, 18)
    return width, abs(height)  # negative height: rows stored top-down


def _size_problem(size: tuple[int, int] | str) -> str | None:
    if isinstance(size, str):
        return size
    width, height = size
    if width <= 0 or height <= 0:
        return NO_PIXELS.format(width=width, height=height)
    if width * height > MAX_PIXELS:
        return TOO_LARGE.format(width=width, height=height, limit=MAX_PIXELS)
    return None


def _check_open(fd: int, size: int) -> str | None:
    data = _Bytes(fd, size)
    head = data.head[:_SIGNATURE]
    tail = data.head[-_TAIL:] if size <= _HEAD else os.pread(fd, _TAIL, size - _TAIL)
    try:
        if head.startswith(_JPEG):
            if b"\xff\xd9" not in tail:
                return TRUNCATED_JPEG
            return _size_problem(_jpeg_size(data))
        if head.startswith(_PNG):
            if b"IEND" not in tail:
                return TRUNCATED_PNG
            if len(head) < 24:
                raise _Truncated
            if head[12:16] != b"IHDR":
                return CORRUPT_PNG
            return _size_problem(struct.unpack_from(">II", head, 16))
        if head[:6] in (b"GIF87a", b"GIF89a"):
            if len(head) < 10:
                raise _Truncated
            return _size_problem(struct.unpack_from("<HH", head, 6))
        if head[:2] == b"BM":
            return _size_problem(_bmp_size(head))
    except _Truncated:
        return TRUNCATED_JPEG if head.startswith(_JPEG) else TRUNCATED_HEADER
    return UNKNOWN


def check_image(path: str | Path) -> str | None:
    """None if ``path`` looks like a complete image of at most MAX_PIXELS, else a short reason.

    Never raises for a bad file or path. Costs one ``open``, ``fstat``, ``close`` and one or
    two reads: the first 4 kB (signature, header, and the JPEG segment headers before the frame
    header; further ones are read where a big segment pushes them out) and the last kilobyte.
    """
    try:
        # O_NONBLOCK: a FIFO or device opens at once (and is refused below) instead of hanging.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return MISSING
    except IsADirectoryError:
        return NOT_A_FILE
    except OSError as error:
        return f"cannot read ({error.strerror or error})"
    except ValueError as error:  # e.g. a NUL character in the path
        return f"cannot read ({error})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return NOT_A_FILE
        if info.st_size == 0:
            return EMPTY
        return _check_open(fd, info.st_size)
    except OSError as error:
        return f"cannot read ({error.strerror or error})"
    finally:
        os.close(fd)


def _check_chunk(paths: Sequence[str]) -> list[str | None]:
    return [check_image(path) for path in paths]


def check_images(paths: Sequence[str], workers: int = 4) -> list[str | None]:
    """``check_image`` for each path, in ``workers`` processes; order preserved.

    Processes, not threads: a check is a few microseconds of Python around four system calls,
    so threads fight over the GIL (on a local disk 4 threads take twice as long as one). The
    workers are forked, so nothing is imported again and no script is re-run; where fork is not
    available the checks run in this process. Paths go out in chunks, a few per worker.
    """
    paths = list(paths)
    if workers <= 1 or len(paths) < _PARALLEL_FROM or not _CAN_FORK:
        return _check_chunk(paths)
    size = max(_CHUNK, -(-len(paths) // (workers * _CHUNKS_PER_WORKER)))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [result for chunk in pool.map(_check_chunk, chunks) for result in chunk]
