"""A cheap check that an image file is complete, decodable by training and of a sane size.

Pillow reads the header and the last kilobyte (a JPEG or PNG must end properly): 180k images in
seconds. ``MAX_PIXELS`` (40 megapixels) caps all frames together against decompression bombs; an
animated GIF (TensorFlow decodes every frame) is decoded frame by frame.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 40_000_000
"""The most pixels, all frames together, ``check_image`` accepts (40 megapixels: 120 MB RGB)."""
FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP")  # MPO: a JPEG with extra pictures appended

MISSING = "missing"
EMPTY = "empty file"
NOT_A_FILE = "not a regular file"
UNDECODABLE = "the training decoder cannot decode it"  # found by pixels.find_undecodable
UNKNOWN = "not an image (unknown header)"
CORRUPT = "corrupt or truncated image header ({error})"
UNSUPPORTED = "unsupported image format {format} (training decodes JPEG, PNG, GIF and BMP)"
TRUNCATED_JPEG = "truncated JPEG (no end marker)"
TRUNCATED_PNG = "truncated PNG (no IEND)"
TOO_LARGE = "image dimensions {width}x{height}{frames} exceed the limit of {limit:,} pixels"
BOMB = "image dimensions exceed the limit of {limit:,} pixels (Pillow: {error})"

_JPEG_END = (b"\xff\xd9", TRUNCATED_JPEG)
_ENDS = {"JPEG": _JPEG_END, "MPO": _JPEG_END, "PNG": (b"IEND", TRUNCATED_PNG)}
_TAIL = 1024
_PARALLEL_FROM = 4096  # fewer paths are checked in this process: starting workers costs more


def _frame_problem(image: Image.Image) -> str | None:
    """Why the frames a decoder would produce hold too many pixels, else None."""
    frames = getattr(image, "n_frames", 1)
    pixels = image.width * image.height * frames
    if image.format == "GIF" and frames > 1:
        pixels = 0
        for frame in range(frames):
            image.seek(frame)  # the canvas grows over a frame larger than the screen
            pixels += image.width * image.height
            if pixels > MAX_PIXELS:
                break
    if pixels <= MAX_PIXELS:
        return None
    count = f" x {frames} frames" if frames > 1 else ""
    return TOO_LARGE.format(width=image.width, height=image.height, frames=count, limit=MAX_PIXELS)


def check_image(path: str | Path) -> str | None:
    """None for a complete image of a training format within MAX_PIXELS, else a short reason;
    never raises for a bad file or path."""
    try:
        info = os.stat(path)  # first: opening a FIFO or device could block or never end
        if not stat.S_ISREG(info.st_mode):
            return NOT_A_FILE
        if info.st_size == 0:
            return EMPTY
        with (
            warnings.catch_warnings(action="error", category=Image.DecompressionBombWarning),
            Image.open(path) as image,
        ):
            if image.format not in FORMATS:
                return UNSUPPORTED.format(format=image.format)
            end, truncated = _ENDS.get(image.format, (b"", None))
            if end:
                image.fp.seek(max(info.st_size - _TAIL, 0))
                if end not in image.fp.read(_TAIL):
                    return truncated
            return _frame_problem(image)
    except FileNotFoundError:
        return MISSING
    except UnidentifiedImageError:
        return UNKNOWN
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return BOMB.format(limit=MAX_PIXELS, error=error)
    except OSError as error:
        if error.errno is not None:  # from the file system, not from Pillow's parser
            return f"cannot read ({error.strerror})"
        return CORRUPT.format(error=error)
    except ValueError as error:  # e.g. a NUL character in the path
        return f"cannot read ({error})"
    except (SyntaxError, EOFError) as error:
        return CORRUPT.format(error=error)


def check_images(paths: Sequence[str], workers: int = 4) -> list[str | None]:
    """``check_image`` for each path, in ``workers`` processes when there are many; in order."""
    paths = list(paths)
    if workers <= 1 or len(paths) < _PARALLEL_FROM:
        return [check_image(path) for path in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(check_image, paths, chunksize=256))
