"""Applying a trained category model to image files: evaluation, submission, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from fashionai.training.images import decode_and_resize

MODEL_FILE = "model.keras"
WEIGHTS_FILE = "best.weights.h5"
SUMMARY_FILE = "training.json"


@dataclass
class TrainedModel:
    """A category's model with its best weights, its classes and its input size."""

    model: Any
    category: str
    classes: list[dict[str, Any]]
    image_size: int

    @property
    def class_names(self) -> list[str]:
        return [group["name"] for group in self.classes]


def load_trained_model(model_dir: str | Path) -> TrainedModel:
    """``model.keras`` of a category with ``best.weights.h5`` loaded into it."""
    import keras

    model_dir = Path(model_dir)
    for name in (MODEL_FILE, WEIGHTS_FILE, SUMMARY_FILE):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name} does not exist: train the category first")
    summary = json.loads((model_dir / SUMMARY_FILE).read_text())
    model = keras.models.load_model(model_dir / MODEL_FILE, compile=False)
    model.load_weights(model_dir / WEIGHTS_FILE)
    return TrainedModel(
        model=model,
        category=summary["category"],
        classes=summary["classes"],
        image_size=int(summary["settings"]["image_size"]),
    )


@dataclass
class Predictions:
    """Class probabilities per file; rows of files that could not be decoded are NaN."""

    plain: np.ndarray
    flipped_tta: np.ndarray | None
    undecodable: list[str]


def predict_files(
    trained: TrainedModel,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 64,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> Predictions:
    """Stream the files through the model in batches, decoding in parallel.

    With ``tta``, also the mean of the predictions on each image and its mirror image
    (horizontal-flip test-time augmentation). A file that fails to decode does not stop the
    run: its row stays NaN and its path is listed in ``undecodable``.
    """
    paths = [str(p) for p in paths]
    n_classes = len(trained.classes)
    plain = np.full((len(paths), n_classes), np.nan, dtype=np.float32)
    flipped = np.full_like(plain, np.nan) if tta else None
    size = trained.image_size
    dataset = (
        tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths))
        .map(lambda i, p: (i, decode_and_resize(p, size)), num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    done = 0
    for indices, images in dataset:
        rows = indices.numpy()
        plain[rows] = trained.model(images, training=False).numpy()
        if flipped is not None:
            mirrored = trained.model(tf.image.flip_left_right(images), training=False).numpy()
            flipped[rows] = (plain[rows] + mirrored) / 2
        done += len(rows)
        if done // (batch_size * 50) != (done - len(rows)) // (batch_size * 50):
            log(f"predicted {done:,} of {len(paths):,} images")
    undecodable = [paths[i] for i in np.flatnonzero(np.isnan(plain[:, 0]))]
    for path in undecodable[:20]:
        log(f"WARNING: cannot decode {path}; no prediction")
    if len(undecodable) > 20:
        log(f"WARNING: ... and {len(undecodable) - 20} more undecodable images")
    return Predictions(plain=plain, flipped_tta=flipped, undecodable=undecodable)
