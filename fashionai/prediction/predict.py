"""A trained category model, or an ensemble's mean, applied to image files (submission, CLI)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fashionai.attributes import pad_anchor
from fashionai.images import UNDECODABLE, check_image
from fashionai.model_folder import Predictions, combined, read_summary
from fashionai.outputs import MODEL_FILE, SUMMARY_FILE, missing_model_files
from fashionai.pixels import decoded_batches

FOLDER = "a folder, not an image file"


@dataclass
class TrainedModel:
    """A category's model (the best epoch's), its classes and input size, from its folder."""

    model: keras.Model
    category: str
    classes: list[dict[str, Any]]
    image_size: int
    resize: str  # train.resize: the model sees images as it was trained on them

    @classmethod
    def load(cls, model_dir: str | Path) -> TrainedModel:
        """The model of ``model_dir``; FileNotFoundError naming a missing file, ValueError when
        the model's outputs and the classes of ``training.json`` differ in number."""
        model_dir = Path(model_dir)
        if missing := missing_model_files(model_dir):
            raise FileNotFoundError(f"{missing[0]} does not exist: train the category")
        summary = read_summary(model_dir / SUMMARY_FILE)
        model = keras.models.load_model(model_dir / MODEL_FILE, compile=False)
        if model.output_shape[-1] != len(summary["classes"]):
            raise ValueError(
                f"{model_dir}: {MODEL_FILE} predicts {model.output_shape[-1]} classes, "
                f"{SUMMARY_FILE} lists {len(summary['classes'])}"
            )
        settings = summary["settings"]
        size = int(settings["image_size"])
        resize = settings.get("resize", "stretch")
        return cls(model, summary["category"], summary["classes"], size, resize)


def predict_files(
    trained: TrainedModel,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 64,
    tta: bool = False,
    log: Callable[[str], None] = print,
    check: bool = True,
) -> Predictions:
    """The predictions on ``paths``, each checked first (:func:`~fashionai.images.check_image`;
    ``check=False`` for files checked already); with ``tta``, ``flipped_tta`` holds the mean of
    each image's and its mirror image's. A refused or undecodable file is logged and skipped."""
    paths = [str(path) for path in paths]
    problems = {}
    if check:
        checked = {path: FOLDER if Path(path).is_dir() else check_image(path) for path in paths}
        problems = {path: problem for path, problem in checked.items() if problem}
    accepted = np.array([i for i, path in enumerate(paths) if path not in problems], dtype=int)
    plain = np.full((len(paths), len(trained.classes)), np.nan, dtype=np.float32)
    flipped = plain.copy() if tta else None
    size, pad = trained.image_size, pad_anchor(trained.resize, trained.category)
    batches = decoded_batches([paths[i] for i in accepted], size, pad, batch_size, None)
    for batch, (decoded, images) in enumerate(batches, start=1):
        rows = accepted[decoded]
        plain[rows] = trained.model(images, training=False).numpy()
        if flipped is not None:
            mirrored = trained.model(tf.image.flip_left_right(images), training=False).numpy()
            flipped[rows] = (plain[rows] + mirrored) / 2
        if batch % 50 == 0:
            log(f"predicted {batch * batch_size:,} of {len(paths):,} images")
    problems.update({paths[i]: UNDECODABLE for i in accepted if np.isnan(plain[i, 0])})
    skipped = {path: problems[path] for path in paths if path in problems}
    for path, problem in skipped.items():
        log(f"WARNING: no prediction for {path}: {problem}")
    return Predictions(plain, flipped, skipped)


def member_probabilities(
    member_dirs: Mapping[str, Path | str],
    paths: Sequence[str | Path],
    *,
    batch_size: int = 64,
    tta: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, np.ndarray], Predictions]:
    """Every member's probabilities on ``paths`` (with ``tta`` its flip-TTA ones) and the
    ensemble's predictions, their mean (NaN for a file any member skipped)."""
    members: dict[str, Predictions] = {}
    for name, folder in member_dirs.items():
        trained = TrainedModel.load(folder)
        log(f"member {name}: {folder}, {trained.image_size} px")
        members[name] = predict_files(trained, paths, batch_size=batch_size, tta=tta, log=log)
    own = {name: member.flipped_tta if tta else member.plain for name, member in members.items()}
    return own, combined(list(members.values()))
