"""Tiny real models and images for the prediction and evaluation tests.

The model is a dense softmax layer over the pixels with fixed random weights: its prediction
depends on every pixel and is not mirror-symmetric. Images are PNGs of exactly the model's input
size, so the decoder hands the model their pixels unchanged and a test can compute the expected
probabilities with ``model.predict`` on the pixels it wrote.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fashionai.attributes import classes as official_classes
from fashionai.attributes import slugify

SIZE = 6


def group(index: int, name: str, *members: str) -> dict:
    """A regrouped class as ``training.json`` lists it."""
    return {"index": index, "slug": slugify(name), "name": name, "members": list(members)}


def identity_classes(category: str) -> list[dict]:
    """One regrouped class per official class."""
    return [group(i, name, name) for i, name in enumerate(official_classes(category))]


SLEEVE = "sleeve_length_labels"
SLEEVE_CLASSES = [  # the default regrouping: Invisible dropped, merges as in config.yaml
    group(0, "Sleeveless", "Sleeveless"),
    group(1, "Short Sleeves", "Cup Sleeves", "Short Sleeves"),
    group(2, "Elbow Sleeves", "Elbow Sleeves", "3/4 Sleeves"),
    group(3, "Long Sleeves", "Wrist Length", "Long Sleeves", "Extra Long Sleeves"),
]


def save_model(folder: Path, category: str, classes: list[dict], seed: int = 0) -> Path:
    """A trained-model folder (``model.keras``, ``training.json``) of a tiny dense model."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    flat = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    dense = keras.layers.Dense(len(classes), activation="softmax")
    model = keras.Model(inputs, dense(flat))
    kernel = np.random.default_rng(seed).normal(0, 0.3, (SIZE * SIZE * 3, len(classes)))
    dense.set_weights([kernel, np.zeros(len(classes))])
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    summary = {"category": category, "classes": classes, "settings": {"image_size": SIZE}}
    (folder / "training.json").write_text(json.dumps(summary))
    return folder


def write_image(path: Path, seed: int) -> np.ndarray:
    """A random-noise PNG of the model's input size; returns its pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return pixels


def write_mirror(source: Path, path: Path) -> None:
    """A left-right mirrored copy of the image at ``source``."""
    ImageOps.mirror(Image.open(source)).save(path, format="PNG")


def expected(folder: Path, *pixels: np.ndarray) -> np.ndarray:
    """The probabilities of the model in ``folder`` on these pixels, by ``model.predict``."""
    import keras

    model = keras.models.load_model(folder / "model.keras", compile=False)
    return model.predict(np.stack(pixels).astype(np.float32), verbose=0)


def write_pixel_bomb(path: Path) -> None:
    """A small PNG declaring 100000 x 100000 pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 2048, 9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
