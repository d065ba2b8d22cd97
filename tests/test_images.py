"""The cheap image check: header and end marker, no decoding."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from fashionai.images import check_image, check_images


def image_bytes(fmt: str, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 60)).save(buffer, fmt)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP"])
def test_complete_images_pass(tmp_path, fmt):
    assert check_image(write(tmp_path / f"x.{fmt.lower()}", image_bytes(fmt))) is None


def test_png_named_jpg_passes(tmp_path):
    assert check_image(str(write(tmp_path / "x.jpg", image_bytes("PNG")))) is None


def test_jpeg_with_trailing_bytes_passes(tmp_path):
    data = image_bytes("JPEG", 64) + b"\x00" * 300
    assert check_image(write(tmp_path / "x.jpg", data)) is None


def test_large_jpeg_passes_and_its_truncation_is_found(tmp_path):
    noise = Image.effect_noise((256, 256), 100).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG")
    assert len(buffer.getvalue()) > 4096
    assert check_image(write(tmp_path / "x.jpg", buffer.getvalue())) is None
    reason = check_image(write(tmp_path / "cut.jpg", buffer.getvalue()[:-2000]))
    assert reason == "truncated JPEG (no end marker)"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"hello, I am text and not an image", "not an image (unknown header)"),
        (b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ", "not an image (unknown header)"),
        (image_bytes("JPEG", 64)[:-200], "corrupt or truncated image header (Truncated File Read)"),
        (image_bytes("PNG", 64)[:-20], "truncated PNG (no IEND)"),
    ],
)
def test_bad_files(tmp_path, data, reason):
    assert check_image(write(tmp_path / "x.jpg", data)) == reason


def test_missing_and_directory(tmp_path):
    assert check_image(tmp_path / "nope.jpg") == "missing"
    assert check_image("") == "missing"
    assert check_image(tmp_path) == "not a regular file"


@pytest.mark.parametrize("workers", [1, 4])
def test_check_images_keeps_order(tmp_path, monkeypatch, workers):
    monkeypatch.setattr("fashionai.images._PARALLEL_FROM", 1)  # these 200 paths go to workers
    good = str(write(tmp_path / "good.jpg", image_bytes("JPEG")))
    empty = str(write(tmp_path / "empty.jpg", b""))
    paths = [good, str(tmp_path / "missing.jpg"), empty, good] * 50
    results = check_images(paths, workers=workers)
    assert results == [None, "missing", "empty file", None] * 50
    assert check_images([], workers=workers) == []


def with_app_segment(jpeg: bytes, body_bytes: int) -> bytes:
    """``jpeg`` with an APP1 segment of ``body_bytes`` inserted right after SOI (like EXIF)."""
    segment = b"\xff\xe1" + (body_bytes + 2).to_bytes(2, "big") + b"\x00" * body_bytes
    return jpeg[:2] + segment + jpeg[2:]


def declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its baseline frame header (SOF0) patched to declare ``width x height``."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 9 :]


@pytest.mark.parametrize("body_bytes", [4000, 20000, 65000])
def test_frame_header_after_a_large_segment(tmp_path, body_bytes):
    jpeg = with_app_segment(image_bytes("JPEG", 16), body_bytes)
    assert check_image(write(tmp_path / "ok.jpg", jpeg)) is None
    bomb = declaring(jpeg, 8000, 6000)
    reason = check_image(write(tmp_path / "bomb.jpg", bomb))
    assert reason == "image dimensions 8000x6000 exceed the limit of 40,000,000 pixels"


@pytest.mark.parametrize("name", ["IMG", "x.JPG", ".hidden.jpg", "photo.png"])
def test_the_name_does_not_matter(tmp_path, name):
    assert check_image(write(tmp_path / name, image_bytes("JPEG"))) is None
