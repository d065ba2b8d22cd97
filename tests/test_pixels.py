"""Square inputs: stretching (the default) or padding at the anchor of the category."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training_helpers import limit_threads

limit_threads()

from fashionai.attributes import pad_anchor  # noqa: E402
from fashionai.pixels import decode_and_resize, load_images  # noqa: E402

GREY = 200


def png(tmp_path: Path, height: int, width: int) -> str:
    """A uniform grey PNG (lossless, so every pixel is exactly ``GREY``)."""
    path = tmp_path / f"{height}x{width}.png"
    Image.fromarray(np.full((height, width, 3), GREY, np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize(
    ("category", "anchor"),
    [
        ("collar_design_labels", "top"),
        ("neckline_design_labels", "top"),
        ("skirt_length_labels", "bottom"),
        ("sleeve_length_labels", "bottom"),
    ],
)
def test_design_keeps_the_top_and_length_the_bottom(category: str, anchor: str) -> None:
    assert pad_anchor("pad", category) == anchor
    assert pad_anchor("stretch", category) is None


def test_wide_design_image_is_padded_below(tmp_path: Path) -> None:
    image = decode_and_resize(png(tmp_path, 10, 20), 20, pad_anchor("pad", "neck_design_labels"))
    assert image.shape == (20, 20, 3)
    assert np.all(image.numpy()[:10] == GREY)
    assert np.all(image.numpy()[10:] == 0)


def test_wide_length_image_is_padded_above(tmp_path: Path) -> None:
    image = decode_and_resize(png(tmp_path, 10, 20), 20, pad_anchor("pad", "pant_length_labels"))
    assert np.all(image.numpy()[:10] == 0)
    assert np.all(image.numpy()[10:] == GREY)


@pytest.mark.parametrize("anchor", ["top", "bottom"])
def test_tall_image_is_padded_left_and_right_equally(tmp_path: Path, anchor: str) -> None:
    image = decode_and_resize(png(tmp_path, 20, 10), 20, anchor).numpy()
    assert np.all(image[:, :5] == 0)
    assert np.all(image[:, 5:15] == GREY)
    assert np.all(image[:, 15:] == 0)


def test_padding_happens_before_resizing(tmp_path: Path) -> None:
    image = decode_and_resize(png(tmp_path, 20, 40), 10, "top").numpy()
    assert image.shape == (10, 10, 3)
    np.testing.assert_allclose(image[:4], GREY, atol=0.01)  # row 4-5: the blurred edge
    np.testing.assert_allclose(image[6:], 0, atol=0.01)


def test_stretch_is_the_default_and_fills_the_square(tmp_path: Path) -> None:
    stretched = decode_and_resize(png(tmp_path, 10, 20), 20, pad_anchor("stretch", "")).numpy()
    assert np.all(stretched == GREY)


def test_load_images_passes_the_mode_on(tmp_path: Path) -> None:
    batch = load_images([png(tmp_path, 10, 20)], 20, "bottom")
    assert np.all(batch[0, :10] == 0)
    assert np.all(batch[0, 10:] == GREY)
