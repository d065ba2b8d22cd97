"""The ``train:`` configuration as a validated, immutable :class:`TrainSettings`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from fashionai.training.augment import check_augmentations
from fashionai.training.backbones import BACKBONES, DEFAULT_BACKBONE, check_backbone


@dataclass(frozen=True)
class TrainSettings:
    """How one category's classifier is trained (the ``train:`` keys of config.yaml).

    ``weights``: ``"imagenet"``, a path to a weights file, or None (random init).
    ``fine_tune``: False trains the head on the frozen backbone for ``epochs``; True trains
    the head for ``head_epochs`` first, then the whole network at ``learning_rate / 10``
    up to ``epochs`` epochs in all.
    ``cache_features``: while the backbone is frozen, train the head on the backbone's pooled
    features, computed once per image and view (:mod:`fashionai.training.features`) instead
    of every epoch; ``views`` is how many views of each training image are cached (None: one
    per augmentation plus the image itself, see :attr:`feature_views`).
    ``cache_images``: while the backbone trains, keep the decoded and resized images in a
    file cache after the first epoch instead of decoding them every epoch.
    """

    backbone: str = DEFAULT_BACKBONE
    weights: str | None = "imagenet"
    image_size: int = 224
    batch_size: int = 32
    epochs: int = 60
    patience: int = 15
    validation_split: float = 0.2
    test_split: float = 0.1
    seed: int = 117
    augmentations: tuple[str, ...] = ()
    fine_tune: bool = False
    gpus: int = 1
    learning_rate: float = 1e-3
    head_epochs: int = 10
    dropout: float = 0.2
    class_weights: bool = True
    mixed_precision: bool = False
    views: int | None = None
    cache_features: bool = True
    cache_images: bool = True

    @property
    def feature_views(self) -> int:
        """Views cached per training image: ``views``, or one per augmentation plus one."""
        return self.views if self.views is not None else len(self.augmentations) + 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "augmentations", tuple(self.augmentations))
        _validate(self)

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any] | None) -> TrainSettings:
        """Settings from the ``train:`` mapping; defaults for missing keys.

        Unknown keys and bad values raise ValueError naming ``train.<key>`` and the value.
        """
        mapping = dict(mapping or {})
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ValueError(
                f"unknown key train.{unknown[0]} (value {mapping[unknown[0]]!r}); "
                f"known keys: {', '.join(sorted(known))}"
            )
        augmentations = mapping.get("augmentations", ())
        if not isinstance(augmentations, (list, tuple)):
            raise ValueError(f"train.augmentations: expected a list, got {augmentations!r}")
        if "augmentations" in mapping:
            mapping["augmentations"] = tuple(augmentations)
        return cls(**mapping)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (lists for tuples)."""
        data = dataclasses.asdict(self)
        data["augmentations"] = list(self.augmentations)
        return data


def _fail(key: str, value: object, problem: str) -> ValueError:
    return ValueError(f"train.{key}: {value!r} {problem}")


def _check_int(settings: TrainSettings, key: str, minimum: int) -> None:
    value = getattr(settings, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, value, "is not an integer")
    if value < minimum:
        raise _fail(key, value, f"must be at least {minimum}")


def _check_bool(settings: TrainSettings, key: str) -> None:
    value = getattr(settings, key)
    if not isinstance(value, bool):
        raise _fail(key, value, "must be true or false")


def _number(settings: TrainSettings, key: str) -> float:
    value = getattr(settings, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, value, "is not a number")
    return float(value)


def _validate(settings: TrainSettings) -> None:
    try:
        check_backbone(settings.backbone)
    except ValueError as error:
        raise _fail("backbone", settings.backbone, f"is not supported ({error})") from None
    spec = BACKBONES[settings.backbone]

    weights = settings.weights
    if weights is not None and (not isinstance(weights, str) or not weights.strip()):
        raise _fail("weights", weights, "must be imagenet, a path to a weights file, or null")
    if weights == "imagenet" and not spec.imagenet:
        raise _fail(
            "weights", weights, f"is not available for {settings.backbone}: use null or a path"
        )

    for key, minimum in (
        ("image_size", spec.min_size),
        ("batch_size", 1),
        ("epochs", 1),
        ("patience", 1),
        ("seed", 0),
        ("gpus", 0),
        ("head_epochs", 1),
    ):
        _check_int(settings, key, minimum)
    for key in ("fine_tune", "class_weights", "mixed_precision", "cache_features", "cache_images"):
        _check_bool(settings, key)
    if settings.views is not None:
        _check_int(settings, "views", 1)

    split = _number(settings, "validation_split")
    if not 0 < split < 1:
        raise _fail("validation_split", settings.validation_split, "must be between 0 and 1")
    if not 0 <= _number(settings, "test_split") < 1 - split:
        raise _fail(
            "test_split",
            settings.test_split,
            "must be at least 0 and below 1 - train.validation_split",
        )
    rate = _number(settings, "learning_rate")
    if not rate > 0:
        raise _fail("learning_rate", settings.learning_rate, "must be positive")
    dropout = _number(settings, "dropout")
    if not 0 <= dropout < 1:
        raise _fail("dropout", settings.dropout, "must be at least 0 and below 1")

    if settings.fine_tune and settings.head_epochs >= settings.epochs:
        raise _fail(
            "head_epochs",
            settings.head_epochs,
            f"must be below train.epochs ({settings.epochs}) with fine_tune: true",
        )
    if not all(isinstance(name, str) for name in settings.augmentations):
        raise _fail("augmentations", list(settings.augmentations), "must be names")
    try:
        check_augmentations(settings.augmentations)
    except ValueError as error:
        raise _fail("augmentations", list(settings.augmentations), f"({error})") from None
    if len(set(settings.augmentations)) != len(settings.augmentations):
        raise _fail("augmentations", list(settings.augmentations), "lists a name twice")
    if settings.views is not None and settings.views > 1 and not settings.augmentations:
        raise _fail(
            "views",
            settings.views,
            "needs train.augmentations: without them every view is the same",
        )
