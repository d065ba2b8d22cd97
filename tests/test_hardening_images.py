"""Bad images at ingest: each kind is accepted (training can decode it) or rejected with a reason.

The decompression bombs matter most: a few hundred bytes that declare 100000 x 100000 pixels
would make the training job allocate 30 GB when it decodes them, so ``check_image`` reads the
declared size from the header, counting every frame, and rejects anything above
``images.MAX_PIXELS``.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fashionai import images
from fashionai.annotations import merge_annotations
from fashionai.decoding import IMAGE_UNREADABLE, decode_labels, reconcile
from fashionai.images import check_image, check_images


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def rgb(width: int = 24, height: int = 16) -> Image.Image:
    return Image.effect_noise((width, height), 50).convert("RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose IHDR declares ``width x height`` RGB pixels; its IDAT is a few rows."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 2048, 9)  # a tiny zlib stream, far short of the image
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int, **options: object) -> bytes:
    """A real small JPEG whose frame header (SOFn) is patched to declare ``width x height``."""
    data = bytearray(encode(rgb(8, 8), "JPEG", **options))
    at = _sof_offset(bytes(data))
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def _sof_offset(data: bytes) -> int:
    at = 2
    while True:
        marker, length = data[at + 1], struct.unpack_from(">H", data, at + 2)[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return at
        at += 2 + length


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(rgb(4, 4), "BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(rgb(4, 4).convert("P"), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def with_segment(jpeg: bytes, segment: bytes) -> bytes:
    """``segment`` (raw bytes) inserted after the first segment (APP0), before the frame."""
    end = 4 + struct.unpack_from(">H", jpeg, 4)[0]
    return jpeg[:end] + segment + jpeg[end:]


def app_segment(code: int, payload: bytes) -> bytes:
    return bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload


TOO_LARGE = "image dimensions {}x{} exceed the limit of 40,000,000 pixels"
BOMB = "image dimensions exceed the limit of 40,000,000 pixels (Pillow: Image size ("

# name -> (file bytes, None if accepted else the reason check_image gives)
CASES: dict[str, tuple[bytes, str | None]] = {
    "rgb-jpeg": (encode(rgb(), "JPEG"), None),
    "grayscale-jpeg": (encode(rgb().convert("L"), "JPEG"), None),
    "cmyk-jpeg": (encode(rgb().convert("CMYK"), "JPEG"), None),
    "progressive-jpeg": (encode(rgb(), "JPEG", progressive=True), None),
    "jpeg-60kB-exif-before-frame": (encode(rgb(), "JPEG", exif=b"Exif\0\0" + bytes(60000)), None),
    "jpeg-many-app-segments": (
        with_segment(encode(rgb(), "JPEG"), app_segment(0xE5, bytes(9000)) * 12),
        None,
    ),
    "jpeg-fill-bytes-and-junk": (
        with_segment(encode(rgb(), "JPEG"), b"\x00\x13" + app_segment(0xE4, b"x") + b"\xff\xff"),
        None,
    ),
    "png-named-jpg": (encode(rgb(), "PNG"), None),
    "rgba-png": (encode(rgb().convert("RGBA"), "PNG"), None),
    "gif": (encode(rgb().convert("P"), "GIF"), None),
    "bmp": (encode(rgb(), "BMP"), None),
    "truncated-jpeg": (encode(rgb(64, 64), "JPEG")[:-300], images.TRUNCATED_JPEG),
    "jpeg-cut-in-header": (
        encode(rgb(), "JPEG")[:40],
        "corrupt or truncated image header (Truncated",
    ),
    "truncated-png": (encode(rgb(64, 64), "PNG")[:-30], images.TRUNCATED_PNG),
    "zero-bytes": (b"", images.EMPTY),
    "text-named-jpg": (b"<html>404 Not Found</html>\n", images.UNKNOWN),
    "macos-sidecar": (
        b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(60),
        images.UNKNOWN,
    ),
    "text-starting-BM": (
        b"BMW service history, 2017-2018\n" * 3,
        "corrupt or truncated image header (",
    ),
    "jpeg-without-frame-header": (
        b"\xff\xd8" + app_segment(0xE0, b"JFIF\0" + bytes(9)) + b"\xff\xda\x00\x02\xff\xd9",
        images.UNKNOWN,
    ),
    "png-without-ihdr": (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"tEXt", b"a\0b" * 4) + png_chunk(b"IEND", b""),
        images.UNKNOWN,
    ),
    "tiff": (encode(rgb(), "TIFF"), "unsupported image format TIFF"),
    "webp": (encode(rgb(), "WEBP"), "unsupported image format WEBP"),
    "jpeg-bomb-7000x7000": (jpeg_declaring(7_000, 7_000), TOO_LARGE.format(7000, 7000)),
    "png-bomb-9000x5000": (png_declaring(9_000, 5_000), TOO_LARGE.format(9000, 5000)),
    "png-bomb-100000x100000": (png_declaring(100_000, 100_000), BOMB),
    "jpeg-bomb-65000x65000": (jpeg_declaring(65_000, 65_000), BOMB),
    "progressive-jpeg-bomb": (jpeg_declaring(65_000, 10_000, progressive=True), BOMB),
    "gif-bomb-65535x65535": (gif_declaring(65_535, 65_535), BOMB),
    "bmp-bomb-100000x-100000": (bmp_declaring(100_000, -100_000), BOMB),
    "jpeg-zero-height": (jpeg_declaring(8, 0), images.UNKNOWN),
    "png-zero-width": (png_declaring(0, 10), images.UNKNOWN),
}


def matches(reason: str | None, expected: str | None) -> bool:
    """Whether ``reason`` is the expected one: None, or starting with the expected text."""
    return reason is None if expected is None else str(reason).startswith(expected)


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_is_accepted_or_rejected_with_a_reason(tmp_path, name):
    data, reason = CASES[name]
    path = tmp_path / "a.jpg"  # every case named .jpg, like the real archives
    path.write_bytes(data)
    assert matches(check_image(path), reason), check_image(path)


@pytest.mark.parametrize("name", [n for n, (_, reason) in CASES.items() if reason is None])
def test_accepted_kinds_really_decode(tmp_path, name):
    """What check_image accepts, an image library can decode (the training decoder is TF)."""
    path = tmp_path / "a.jpg"
    path.write_bytes(CASES[name][0])
    with Image.open(path) as image:
        image.load()
        assert image.size == (24, 16)


def test_limit_is_a_documented_module_constant():
    assert images.MAX_PIXELS == 40_000_000
    assert "MAX_PIXELS" in images.__doc__ and "40 megapixels" in images.__doc__


def test_special_paths_never_hang_or_raise(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening a FIFO for reading would block without a writer
    start = time.monotonic()
    assert check_image(fifo) == images.NOT_A_FILE
    assert check_image(tmp_path) == images.NOT_A_FILE
    assert check_image("/dev/zero") == images.NOT_A_FILE
    assert check_image(str(tmp_path / "bad\0name.jpg")).startswith("cannot read")
    assert check_image(tmp_path / ("x" * 300 + ".jpg")).startswith("cannot read")
    assert time.monotonic() - start < 5
    unreadable = tmp_path / "locked.jpg"
    unreadable.write_bytes(CASES["rgb-jpeg"][0])
    unreadable.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        assert check_image(unreadable) == "cannot read (Permission denied)"


def test_check_stays_cheap_on_a_huge_file(tmp_path):
    """Only the header and the last kilobyte are read: a 64 GB (sparse) file checks at once."""
    path = tmp_path / "huge.jpg"
    head = encode(rgb(), "JPEG")
    with open(path, "wb") as handle:
        handle.write(head[:-2])
        handle.seek(64 * 2**30)
        handle.write(b"\xff\xd9")
    start = time.monotonic()
    assert check_image(path) is None
    assert time.monotonic() - start < 3.0  # reading it all would take tens of seconds


# ----------------------------------------------------------------------------------------------
# The declared size read from the header is the real one, for every format


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sizes")


FORMATS = {
    "JPEG": ("RGB", {}),
    "JPEG-progressive": ("RGB", {"progressive": True}),
    "JPEG-gray": ("L", {}),
    "JPEG-cmyk": ("CMYK", {}),
    "PNG": ("RGB", {}),
    "GIF": ("P", {}),
    "BMP": ("RGB", {}),
}


@settings(max_examples=40, deadline=None)
@given(
    fmt=st.sampled_from(sorted(FORMATS)),
    width=st.integers(1, 200),
    height=st.integers(1, 200),
)
def test_declared_size_matches_the_pixels(folder, fmt, width, height):
    mode, options = FORMATS[fmt]
    path = folder / f"{fmt}.jpg"
    path.write_bytes(encode(rgb(width, height).convert(mode), fmt.split("-")[0], **options))
    with mock.patch.object(images, "MAX_PIXELS", width * height):
        assert check_image(path) is None
    with mock.patch.object(images, "MAX_PIXELS", width * height - 1):
        reason = check_image(path)
    assert (
        reason
        == f"image dimensions {width}x{height} exceed the limit of {width * height - 1:,} pixels"
    )


# ----------------------------------------------------------------------------------------------
# Through decode_labels: every bad image is a rejected row with its reason


def test_decode_labels_rejects_bad_images_with_reasons(tmp_path):
    root = tmp_path / "extracted" / "round1"
    lines, expected = [], {}
    for i, (data, reason) in enumerate(CASES.values()):
        image_name = f"{i:032x}.jpg"
        path = root / "base/Images/skirt_length_labels" / image_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        lines.append(f"Images/skirt_length_labels/{image_name},skirt_length_labels,nnynnn")
        expected[image_name] = reason
    lines.append("Images/skirt_length_labels/gone.jpg,skirt_length_labels,nynnnn")
    expected["gone.jpg"] = "missing"
    annotations = root / "base/Annotations/label.csv"
    annotations.parent.mkdir(parents=True)
    annotations.write_text("\n".join(lines) + "\n")

    merged = merge_annotations([("round1", root)])
    decoded, rejected = decode_labels(merged, workers=4)
    reconcile(merged, decoded, rejected)
    assert sorted(decoded["image_name"]) == sorted(n for n, r in expected.items() if r is None)
    assert (decoded["label"] == "Knee Length").all()
    names = rejected["image_path"].str.rsplit("/", n=1).str[-1]
    got = dict(zip(names, rejected["reason"], strict=True))
    assert got.keys() == {name for name, reason in expected.items() if reason is not None}
    for name, reason in got.items():
        if expected[name] == images.MISSING:
            assert reason == "image missing"
        else:
            assert reason.startswith(f"{IMAGE_UNREADABLE}: ")
            assert matches(reason.removeprefix(f"{IMAGE_UNREADABLE}: "), expected[name])
    bombs = rejected[rejected["reason"].str.contains("exceed the limit")]
    assert len(bombs) == sum("bomb" in name for name in CASES)


def test_check_images_workers_agree_with_single(tmp_path, monkeypatch):
    monkeypatch.setattr("fashionai.images._PARALLEL_FROM", 1)  # the forked workers, too
    paths = []
    for name, (data, _) in CASES.items():
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(data)
        paths.append(str(path))
    paths = paths * 5
    assert check_images(paths, workers=4) == check_images(paths, workers=1)
    results = check_images(paths, workers=1)
    assert all(matches(r, CASES[Path(p).stem][1]) for r, p in zip(results, paths, strict=True))


# ----------------------------------------------------------------------------------------------
# Frames: the limit counts the pixels of every frame a decoder produces


def gif_frames(screen: tuple[int, int], *sizes: tuple[int, int]) -> bytes:
    """A GIF whose logical screen is ``screen`` and whose frames have the ``sizes``."""
    parts = [encode(Image.new("P", size, 0), "GIF") for size in sizes]

    def blocks(gif: bytes) -> bytes:  # the extensions and image of a one-frame GIF
        palette = 3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0
        return gif[13 + palette : -1]

    first = bytearray(parts[0])
    struct.pack_into("<HH", first, 6, *screen)
    return bytes(first[:-1]) + b"".join(blocks(gif) for gif in parts[1:]) + b";"


def apng(frames: int, size: tuple[int, int]) -> bytes:
    shades = [Image.new("RGB", size, (0, 40 * i, 0)) for i in range(frames)]
    return encode(shades[0], "PNG", save_all=True, append_images=shades[1:])


LIMIT = 5_000  # pixels, patched in: the files stay tiny

# name -> (file bytes, frames, the reason under LIMIT or None)
FRAME_CASES = {
    "gif-two-small-frames": (gif_frames((10, 10), (10, 10), (10, 10)), 2, None),
    "gif-first-frame-beyond-the-screen": (
        gif_frames((10, 10), (100, 100)),
        1,
        "image dimensions 100x100 exceed the limit of 5,000 pixels",
    ),
    "gif-later-frame-beyond-the-screen": (
        gif_frames((10, 10), (10, 10), (100, 100)),
        2,
        "image dimensions 100x100 x 2 frames exceed the limit of 5,000 pixels",
    ),
    "gif-many-frames": (
        gif_frames((40, 40), *[(40, 40)] * 5),
        5,
        "image dimensions 40x40 x 5 frames exceed the limit of 5,000 pixels",
    ),
    "apng-two-frames": (apng(2, (40, 40)), 2, None),
    "apng-many-frames": (
        apng(4, (40, 40)),
        4,
        "image dimensions 40x40 x 4 frames exceed the limit of 5,000 pixels",
    ),
}


@pytest.mark.parametrize("name", list(FRAME_CASES))
def test_every_frame_counts_towards_the_limit(tmp_path, name):
    data, frames, reason = FRAME_CASES[name]
    path = tmp_path / "a.gif"
    path.write_bytes(data)
    with Image.open(path) as image:
        assert image.n_frames == frames  # the file is what the case says
        assert image.width * image.height <= LIMIT or frames == 1  # no single frame is enough
    with mock.patch.object(images, "MAX_PIXELS", LIMIT):
        assert check_image(path) == reason
    assert check_image(path) is None  # under the real limit
