"""The ``train:`` configuration: its key lists, the start-up checks of keys that depend on each
other or on files (:func:`check_train`), what a run does with them, and :class:`TrainSettings`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fashionai.attributes import pad_anchor
from fashionai.schema import ConfigError, schema_defaults
from fashionai.training.augment import MIXING, mixes
from fashionai.training.backbones import BACKBONES, notop_file_name, unknown_backbone

WEIGHTS_DIR = "resources/weights"  # where rule fetch_weights puts ImageNet weights

# Keys an experiment may not override: every experiment's split is the same (to compare them).
SPLIT_KEYS = ("seed", "validation_split", "test_split")
# Keys that only say how to run: the same model whatever their values, so they are no job's params
# (changing one reruns nothing) and jobs read them from train:. Every other key changes a model.
RUN_ONLY_KEYS = ("gpus", "threads", "cache_images", "weights_url")
# Keys that choose where the weights file comes from: a model's params hold the file instead.
WEIGHTS_SOURCE_KEYS = ("fetch_weights",)
# Keys of an experiment that are not config keys: the fold members of train.folds set them.
MEMBER_KEYS = ("fold",)

_DEFAULT = {k: v for k, v in schema_defaults("train").items() if k not in RUN_ONLY_KEYS}
_DEFAULT.update(dict.fromkeys(MEMBER_KEYS))  # None: not a fold member

# The keys the cached features depend on: a cache is named by their values (experiments that
# agree share one) and is stale for others; ``init_seed`` counts only for a random backbone.
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
    """An experiment's feature cache: a short hash name and the :func:`feature_settings` of its
    :func:`model_settings` (the weights file resolved, as the training job checks it)."""
    features = feature_settings(model_settings(settings))
    text = json.dumps(features, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12], features


@dataclass(frozen=True)
class TrainSettings:
    """The ``train:`` keys but the run-only ones (schemas/config.schema.yaml), and ``fold``: which
    of the ``folds`` members this is (1..K; :func:`fashionai.splits.fold_split`)."""

    backbone: str = _DEFAULT["backbone"]
    weights: str | None = _DEFAULT["weights"]
    image_size: int = _DEFAULT["image_size"]
    resize: str = _DEFAULT["resize"]  # stretch, or pad: see fashionai.pixels
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
    grouped: bool = _DEFAULT["grouped"]  # one model per group of categories: see config.groups
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
        """Whether training needs a target row per image rather than a class index."""
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
        """Settings from a validated ``train:`` mapping (an unknown key: TypeError)."""
        return cls(**(mapping or {}))

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (lists for tuples)."""
        data = dataclasses.asdict(self)
        data["augmentations"] = list(self.augmentations)
        return data


def has_head_phase(settings: Mapping[str, Any]) -> bool:
    """Whether a run trains the head on a frozen backbone first: not when fine-tuning a random
    backbone, whose random features teach a head nothing worth keeping."""
    return not settings["fine_tune"] or settings["weights"] is not None


def uses_feature_cache(settings: Mapping[str, Any]) -> bool:
    """Whether a run trains its head phase on rule ``features``' cache."""
    return bool(settings["cache_features"]) and has_head_phase(settings)


def trains_head_only(settings: Mapping[str, Any]) -> bool:
    """Whether a run trains nothing but a head on rule ``features``' cache: a light job, which
    takes one core and leaves the others to the sweep's other heads."""
    return uses_feature_cache(settings) and not settings["fine_tune"]


def model_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The train settings that make a model (rule ``train``'s params): the run-only keys left
    out, ``weights: imagenet`` with ``fetch_weights`` resolved to rule ``fetch_weights``' file
    (``fetch_weights`` only chooses where the same weights come from)."""
    left_out = (*RUN_ONLY_KEYS, *WEIGHTS_SOURCE_KEYS)
    run = {key: value for key, value in settings.items() if key not in left_out}
    if settings["weights"] == "imagenet" and settings["fetch_weights"]:
        run["weights"] = fetched_weights(settings["backbone"])
    return run


def fetched_weights(backbone: str) -> str:
    """Where rule ``fetch_weights`` puts ``backbone``'s ImageNet weights (a wildcard too)."""
    return f"{WEIGHTS_DIR}/{notop_file_name(backbone)}"


def check_train(settings: Mapping[str, Any], where: str = "train") -> None:
    """Check the keys of a schema-valid train mapping (named ``where``) that depend on each other
    or on files."""
    backbone = settings["backbone"]
    if backbone not in BACKBONES:
        raise ConfigError(f"{where}.backbone = {backbone!r}: {unknown_backbone(backbone)}")
    spec = BACKBONES[backbone]
    weights = settings["weights"]
    if weights == "imagenet" and not spec.imagenet:
        raise ConfigError(
            f"{where}.weights = 'imagenet': there are no ImageNet weights for {where}.backbone "
            f"{backbone!r}; use null or a local weights file"
        )
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ConfigError(f"{where}.weights = {weights!r}: no such file (relative to {Path.cwd()})")
    if settings["image_size"] < spec.min_size:
        raise ConfigError(
            f"{where}.image_size = {settings['image_size']!r}: {where}.backbone {backbone!r} "
            f"needs at least {spec.min_size} px"
        )
    # Fine-tuning with a head phase first: a pretrained backbone (has_head_phase says when).
    head_first = settings["fine_tune"] and has_head_phase(settings)
    if head_first and settings["head_epochs"] >= settings["epochs"]:
        raise ConfigError(
            f"{where}.head_epochs = {settings['head_epochs']!r}: must be below {where}.epochs "
            f"({settings['epochs']!r}) with {where}.fine_tune: true and pretrained weights"
        )
    if settings["optimizer"] == "adam" and settings["weight_decay"] > 0:
        raise ConfigError(
            f"{where}.weight_decay = {settings['weight_decay']!r}: needs {where}.optimizer "
            "adamw or sgd (adam has no decoupled weight decay; adamw is adam with it)"
        )
    _check_warmup(settings, where, head_first)
    mixing = mixes(settings["augmentations"])
    if mixing and uses_feature_cache(settings):
        raise ConfigError(
            f"{where}.augmentations = {settings['augmentations']!r}: {mixing[0]} mixes pairs of "
            f"images, but with {where}.cache_features: true the frozen-backbone epochs train "
            "on features cached from single images; set cache_features: false, or train a "
            "randomly initialised network whole (weights: null, fine_tune: true)"
        )
    views = settings["views"]
    if views is not None and views > 1 and not settings["augmentations"]:
        raise ConfigError(
            f"{where}.views = {views!r}: more than one view needs {where}.augmentations "
            "(without them every view is the same image)"
        )
    if settings["validation_split"] + settings["test_split"] >= 1:
        raise ConfigError(
            f"{where}.test_split = {settings['test_split']!r}: with {where}.validation_split "
            f"{settings['validation_split']!r} no image is left for training (their sum must be "
            "below 1)"
        )
    if settings["folds"] is not None and settings["test_split"] == 0:
        raise ConfigError(
            f"{where}.folds = {settings['folds']!r}: needs train.test_split above 0 (the folds "
            "share the test part; their ensemble is scored on it)"
        )


def _check_warmup(settings: Mapping[str, Any], where: str, head_first: bool) -> None:
    """The warm-up, which restarts in each phase (``fashionai.training.run.plan_phases``), is
    shorter than each."""
    warmup, epochs, head = settings["warmup_epochs"], settings["epochs"], settings["head_epochs"]
    phases = [(epochs, f"{where}.epochs ({epochs!r})", f"{where}.epochs")]
    if head_first:
        phases = [
            (head, f"the head phase's {where}.head_epochs ({head!r})", f"{where}.head_epochs"),
            (
                epochs - head,
                f"the fine-tuning phase's {where}.epochs - {where}.head_epochs ({epochs!r} - "
                f"{head!r} = {epochs - head!r})",
                f"{where}.epochs",
            ),
        ]
    for length, phase, raised in phases:
        if warmup >= length:
            raise ConfigError(
                f"{where}.warmup_epochs = {warmup!r}: must be below {phase} (the warm-up "
                "restarts in each phase, and a phase no longer than it never reaches its "
                f"learning rate); lower {where}.warmup_epochs or raise {raised}"
            )


def check_grouping(
    settings: Mapping[str, Any], key: str, group: str, categories: Sequence[str]
) -> None:
    """ConfigError when grouped ``settings`` (named ``key``) cannot train the group's
    ``categories`` as one model, whose batches mix categories."""
    listed = f"{group}: {', '.join(categories)}"
    if mixing := mixes(settings["augmentations"]):
        raise ConfigError(
            f"{key}.augmentations = {settings['augmentations']!r}: {mixing[0]} mixes pairs of "
            f"images and their targets, but with {key}.grouped: true a batch of a group "
            f"({listed}) holds images of several categories, whose targets cannot be mixed; "
            "drop it or set grouped: false"
        )
    if len({pad_anchor(settings["resize"], category) for category in categories}) > 1:
        raise ConfigError(
            f"{key}.resize = 'pad': with {key}.grouped: true, a group's images pad at one edge, "
            f"but {group} mixes *_design_labels (padded below) and *_length_labels (above) "
            f"({', '.join(categories)}); group categories of one kind, or resize: stretch"
        )
