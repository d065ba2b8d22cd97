"""Small regrouped category trees for the training tests: one coloured shape per class."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

SHAPES = (("circle", (220, 40, 40)), ("square", (40, 200, 40)), ("triangle", (40, 60, 230)))


def limit_threads() -> None:
    """Keep TensorFlow to one thread per pool (the machine is shared); no-op once started."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


def shape_image(kind: str, colour: tuple[int, int, int], size: int, rng) -> Image.Image:
    """A ``kind`` shape of ``colour`` at a random place on a noisy grey background."""
    background = rng.integers(90, 140, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    extent = int(rng.integers(size // 2, size - 2))
    x0, y0 = (int(v) for v in rng.integers(0, size - extent + 1, size=2))
    box = (x0, y0, x0 + extent - 1, y0 + extent - 1)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(x0, y0 + extent - 1), (x0 + extent - 1, y0 + extent - 1),
                      (x0 + extent // 2, y0)], fill=colour)  # fmt: skip
    return image


def make_tree(
    root: Path,
    per_class: int | tuple[int, ...] = 8,
    size: int = 24,
    seed: int = 0,
    category: str = "collar_design_labels",
    odd_files: bool = True,
) -> Path:
    """A regrouped tree ``root/<slug>/*.jpg`` + ``labels.json`` with three shape classes.

    ``odd_files`` adds a PNG named ``.jpg`` and a grayscale JPEG (both valid).
    """
    rng = np.random.default_rng(seed)
    counts = (per_class,) * len(SHAPES) if isinstance(per_class, int) else per_class
    classes = []
    for index, ((kind, colour), count) in enumerate(zip(SHAPES, counts, strict=True)):
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = shape_image(kind, colour, size, rng)
            path = folder / f"{kind}_{i:03d}.jpg"
            if odd_files and index == 0 and i == 0:
                image.save(path, format="PNG")
            elif odd_files and index == 1 and i == 0:
                image.convert("L").save(path, format="JPEG")
            else:
                image.save(path, format="JPEG", quality=95)
        classes.append(
            {"index": index, "slug": kind, "name": kind.title(), "members": [kind.title()]}
        )
    labels = {
        "category": category,
        "classes": classes,
        "dropped": [],
        "counts": {kind: count for (kind, _), count in zip(SHAPES, counts, strict=True)},
    }
    (root / "labels.json").write_text(json.dumps(labels, indent=1))
    return root


def add_corrupt_files(root: Path) -> list[Path]:
    """A zero-byte file, a truncated JPEG and a text file, all named ``.jpg``, in the tree."""
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    empty = folders[0] / "zz_empty.jpg"
    empty.write_bytes(b"")
    source = next(folders[1].glob("*.jpg")).read_bytes()
    truncated = folders[1] / "zz_truncated.jpg"
    truncated.write_bytes(source[: len(source) // 2])
    text = folders[2] / "zz_text.jpg"
    text.write_text("not an image\n")
    return [empty, truncated, text]


def subprocess_env() -> dict[str, str]:
    """Environment for a child Python: quiet, single-threaded TensorFlow, repo importable."""
    env = dict(os.environ)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return env


def pretrained_weights(path: Path, backbone: str = "SmallCNN", image_size: int = 16) -> str:
    """A weights file of ``backbone`` (randomly initialised, saved), which training takes as
    pretrained weights: a run with it fine-tunes in two phases, head first."""
    from fashionai.training.backbones import build_backbone

    path.parent.mkdir(parents=True, exist_ok=True)
    build_backbone(backbone, image_size, None).save_weights(str(path))
    return str(path)


def split_files(tree: Path, settings: Any, log: Any = None) -> dict[str, Path]:
    """The split stage's files of ``tree`` for ``settings`` (TrainSettings), made now as rules
    ``split`` and (with ``folds``) ``split_fold`` make them, beside the tree: ``{"split": the
    file training reads, "skipped": the skipped file}``, as train_category takes them."""
    from fashionai.splits import fold_split, make_split, write_skipped, write_split

    name = f"{tree.name}-{settings.seed}-{settings.validation_split}-{settings.test_split}"
    folder = tree.parent / "splits" / name
    split, skipped = make_split(
        tree, settings.validation_split, settings.test_split, settings.seed, log=log or _quiet
    )
    files = {"split": folder / "split.csv", "skipped": folder / "skipped.csv"}
    write_split(files["split"], split)
    write_skipped(files["skipped"], skipped)
    if settings.folds is not None:
        files["split"] = folder / f"folds{settings.folds}" / f"fold{settings.fold}.csv"
        write_split(files["split"], fold_split(split, settings.folds, settings.fold, settings.seed))
    return files


def _quiet(line: str) -> None:
    pass


def assert_held_out_is_the_models(folder: Path, atol: float = 1e-5) -> None:
    """The model folder's ``held_out.csv`` holds its ``model.keras``'s predictions on its
    validation and test images, plain and flip-TTA, as predicting through the whole model gives
    them; and the mirror images count: flip-TTA differs from plain by far more than ``atol``."""
    import pandas as pd

    from fashionai.model_folder import read_held_out
    from fashionai.prediction.predict import TrainedModel, predict_files

    trained = TrainedModel.load(folder)
    split = pd.read_csv(folder / "split.csv")
    assert {"validation", "test"} <= set(split["subset"])
    images = split.loc[split["subset"] != "train", "image"].reset_index(drop=True)
    saved = read_held_out(folder / "held_out.csv", images, len(trained.classes))
    fresh = predict_files(trained, images, tta=True, log=lambda line: None)
    np.testing.assert_allclose(saved.plain, fresh.plain, atol=atol)
    np.testing.assert_allclose(saved.flipped_tta, fresh.flipped_tta, atol=atol)
    assert np.abs(fresh.flipped_tta - fresh.plain).max() > 100 * atol
