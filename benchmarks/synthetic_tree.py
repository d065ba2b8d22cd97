"""A regrouped category tree of generated garment photos, for the training benchmarks.

The pictures are :func:`demo.synthetic.render_image`'s (class-specific shape, colour and
pattern with jitter), drawn at up to ``RENDER_PX`` and enlarged to the requested size with
fresh sensor-like noise at full size, then saved as JPEG (quality 90): files of real-photo
size and entropy (a 512 px one is about 60-90 KB, like FashionAI's) at a fraction of the cost
of drawing every pixel.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from demo.synthetic import render_image
from fashionai.attributes import classes, slugify

RENDER_PX = 128
NOISE_SIGMA = 4.0
JPEG_QUALITY = 90


def write_tree(
    root: Path, category: str, n_images: int, size: int, seed: int = 0
) -> tuple[Path, int]:
    """``root/<slug>/*.jpg`` + ``labels.json``: ``n_images`` spread evenly over the classes.

    Returns the tree and the bytes of JPEG written.
    """
    rng = np.random.default_rng(seed)
    names = classes(category)
    root.mkdir(parents=True, exist_ok=True)
    render = min(size, RENDER_PX)
    written = 0
    for i in range(n_images):
        index = i % len(names)
        folder = root / slugify(names[index])
        folder.mkdir(exist_ok=True)
        image = Image.fromarray(render_image(category, index, rng, render))
        if render != size:
            image = image.resize((size, size), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
        pixels += rng.standard_normal((size, size, 1), dtype=np.float32) * NOISE_SIGMA
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            buffer, format="JPEG", quality=JPEG_QUALITY
        )
        (folder / f"{i:06d}.jpg").write_bytes(buffer.getvalue())
        written += buffer.tell()
    labels = {
        "category": category,
        "classes": [
            {"index": i, "slug": slugify(name), "name": name, "members": [name]}
            for i, name in enumerate(names)
        ],
        "dropped": [],
        "counts": {
            slugify(name): len(range(i, n_images, len(names))) for i, name in enumerate(names)
        },
    }
    (root / "labels.json").write_text(json.dumps(labels, indent=1))
    return root, written
