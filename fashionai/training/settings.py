"""The ``train:`` configuration as an immutable :class:`TrainSettings`, its values and defaults
from the configuration schema, checked when the workflow starts (not again here)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fashionai.config import RUN_ONLY_KEYS, model_settings, schema_defaults
from fashionai.training.augment import MIXING

# Jobs read the run-only keys from the workflow's config; a model's settings hold the rest.
_DEFAULT = {k: v for k, v in schema_defaults("train").items() if k not in RUN_ONLY_KEYS}
_DEFAULT["fold"] = None  # not a config key: the experiments of train.folds set it

# The train: keys the cached features depend on: the workflow names a feature cache by their
# values (:func:`feature_settings`; experiments that agree share one), and a cache computed
# with other values is stale. The head's settings (learning rate, dropout, epochs, class
# weights, soft targets) are not here. ``init_seed`` counts only for a random backbone.
FEATURE_KEYS = (
    "backbone",
    "weights",
    "image_size",
    "resize",
    "augmentations",
    "views",
    "seed",
    "init_seed",
    "validation_split",
    "test_split",
    "folds",
    "fold",
    "mixed_precision",
)


def feature_settings(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`FEATURE_KEYS` values of a ``train:`` mapping (missing keys: the defaults),
    ``init_seed`` resolved to the run seed for a random backbone (which it initialises) and
    None for pretrained weights (experiments that differ by it share one cache)."""
    values = {key: mapping.get(key, _DEFAULT[key]) for key in FEATURE_KEYS}
    random_backbone = values["weights"] is None
    run_seed = values["seed"] if values["init_seed"] is None else values["init_seed"]
    values["init_seed"] = run_seed if random_backbone else None
    if values["folds"] is None:  # no folds: the caches made before folds existed stay valid
        del values["folds"], values["fold"]
    return values


def feature_set(settings: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """An experiment's feature cache (its merged ``train:`` settings): a short, stable name (a
    hash) and the :func:`feature_settings` of the run as training takes it (``model_settings``:
    the weights file resolved), so that rule ``features`` computes the cache with, and depends
    on, the weights file that the training job checks the cache against."""
    features = feature_settings(model_settings(settings))
    text = json.dumps(features, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12], features


@dataclass(frozen=True)
class TrainSettings:
    """How one category's classifier is trained: the ``train:`` keys but the run-only ones,
    each described in the configuration schema (schemas/config.schema.yaml), and ``fold``: which
    of the ``folds`` members this is (1..K; :func:`fashionai.training.dataset.fold_split`)."""

    backbone: str = _DEFAULT["backbone"]
    weights: str | None = _DEFAULT["weights"]
    image_size: int = _DEFAULT["image_size"]
    resize: str = _DEFAULT["resize"]  # stretch, or pad: see fashionai.training.images
    batch_size: int = _DEFAULT["batch_size"]
    epochs: int = _DEFAULT["epochs"]
    patience: int = _DEFAULT["patience"]
    validation_split: float = _DEFAULT["validation_split"]
    test_split: float = _DEFAULT["test_split"]
    folds: int | None = _DEFAULT["folds"]
    fold: int | None = _DEFAULT["fold"]
    seed: int = _DEFAULT["seed"]
    init_seed: int | None = _DEFAULT["init_seed"]
    augmentations: tuple[str, ...] = tuple(_DEFAULT["augmentations"])
    fine_tune: bool = _DEFAULT["fine_tune"]
    learning_rate: float = _DEFAULT["learning_rate"]
    head_epochs: int = _DEFAULT["head_epochs"]
    dropout: float = _DEFAULT["dropout"]
    class_weights: bool = _DEFAULT["class_weights"]
    maybe_labels: str = _DEFAULT["maybe_labels"]  # ignore, or soft: see training.targets
    maybe_weight: float = _DEFAULT["maybe_weight"]
    mixed_precision: bool = _DEFAULT["mixed_precision"]
    views: int | None = _DEFAULT["views"]
    cache_features: bool = _DEFAULT["cache_features"]
    optimizer: str = _DEFAULT["optimizer"]  # adam, adamw, sgd
    weight_decay: float = _DEFAULT["weight_decay"]
    lr_schedule: str = _DEFAULT["lr_schedule"]  # constant, cosine
    warmup_epochs: int = _DEFAULT["warmup_epochs"]
    label_smoothing: float = _DEFAULT["label_smoothing"]

    @property
    def target_rows(self) -> bool:
        """Whether training needs a target row per image rather than a class index: soft
        targets, label smoothing, or an augmentation that mixes targets (MixUp, CutMix)."""
        return (
            self.maybe_labels == "soft"
            or self.label_smoothing > 0
            or any(name in MIXING for name in self.augmentations)
        )

    @property
    def feature_views(self) -> int:
        """Views cached per training image: ``views``, or one per augmentation plus one."""
        return self.views if self.views is not None else len(self.augmentations) + 1

    @property
    def run_seed(self) -> int:
        """The seed of weight initialisation and shuffling: ``init_seed``, else ``seed``."""
        return self.seed if self.init_seed is None else self.init_seed

    def __post_init__(self) -> None:
        object.__setattr__(self, "augmentations", tuple(self.augmentations))

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any] | None) -> TrainSettings:
        """Settings from a validated ``train:`` mapping; missing keys take the schema's defaults
        (an unknown key is a TypeError naming it)."""
        return cls(**(mapping or {}))

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (lists for tuples)."""
        data = dataclasses.asdict(self)
        data["augmentations"] = list(self.augmentations)
        return data


def has_head_phase(settings: Mapping[str, Any]) -> bool:
    """Whether a run (train settings as a mapping) trains the head on a frozen backbone: always
    but when a randomly initialised backbone is fine-tuned, which trains whole from the first
    epoch (its random features teach a head nothing worth keeping)."""
    return not settings["fine_tune"] or settings["weights"] is not None


def uses_feature_cache(settings: Mapping[str, Any]) -> bool:
    """Whether a run trains its head on rule ``features``' cache: with ``cache_features`` and a
    head phase (:func:`has_head_phase`), where the frozen backbone's features are the same
    every epoch and computing them once pays."""
    return bool(settings["cache_features"]) and has_head_phase(settings)
