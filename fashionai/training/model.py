"""The classifier, as in Keras' transfer-learning guide: augmentation (training only) ->
``feature_extractor`` (0..255 images -> backbone preprocessing -> backbone -> global average
pooling) -> ``head`` (dropout -> dense softmax, float32 also under mixed precision), three
models sharing weights, so that a head trained on cached features drops into the full model.

Keras 3 lets ``fit``'s ``training`` flag override the backbone call's ``training=False``
(keras-team/keras#20285), so BatchNorm stays in inference mode by staying non-trainable when
:func:`set_backbone_trainable` unfreezes a pretrained backbone (a random one's trains too).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from keras import layers

from fashionai.training.augment import build_augmentation
from fashionai.training.backbones import build_backbone, preprocessing_layer
from fashionai.training.settings import TrainSettings

FEATURE_EXTRACTOR = "feature_extractor"
HEAD = "head"
# A group model's metric per output: the output's cross-entropy on its own category's images
# (the loss Keras reports per output is divided by the whole batch, other categories included).
OWN_LOSS = "crossentropy"


@dataclass(frozen=True)
class Classifier:
    """The full model and its parts (the same layer objects, sharing weights)."""

    model: keras.Model
    feature_extractor: keras.Model
    head: keras.Model
    backbone: keras.Model


# A randomly initialised network's BatchNorm statistics must follow its fast-changing
# activations within an epoch or two (Keras's 0.99 lags by about 100 steps, longer than a small
# dataset's first epochs): the validation epochs would see the initial statistics.
RANDOM_INIT_BN_MOMENTUM = 0.9


def build_feature_extractor(
    backbone_name: str, image_size: int, weights: str | Path | None
) -> keras.Model:
    """Images (0..255) -> preprocessing -> frozen-BN backbone -> pooled features."""
    backbone = build_backbone(backbone_name, image_size, weights)
    backbone.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="image")
    preprocess = preprocessing_layer(backbone_name)
    x = preprocess(inputs) if preprocess is not None else inputs
    x = backbone(x, training=False)
    outputs = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name=FEATURE_EXTRACTOR)


def build_head(n_features: int, n_classes: int, dropout: float, name: str = HEAD) -> keras.Model:
    """Pooled features -> dropout -> dense softmax over ``n_classes`` (float32 output)."""
    inputs = keras.Input((n_features,), name="features")
    x = layers.Dropout(dropout, name="dropout")(inputs) if dropout > 0 else inputs
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def compose(
    feature_extractor: keras.Model,
    head: keras.Model | Mapping[str, keras.Model],
    augmentation: keras.Model | None = None,
    name: str = "classifier",
) -> keras.Model:
    """The full model: images -> augmentation (if any) -> feature_extractor -> head; given
    several heads by name, one output per head under that name."""
    inputs = keras.Input(feature_extractor.input_shape[1:], name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    return keras.Model(inputs, _apply(head, feature_extractor(x)), name=name)


def _apply(head: keras.Model | Mapping[str, keras.Model], features: Any) -> Any:
    if isinstance(head, Mapping):
        return {output: model(features) for output, model in head.items()}
    return head(features)


def build_classifier(
    settings: TrainSettings, n_classes: int, name: str = "classifier"
) -> Classifier:
    """The classifier ``settings`` describe, backbone frozen."""
    feature_extractor = _settings_extractor(settings)
    head = build_head(feature_extractor.output_shape[-1], n_classes, settings.dropout)
    augmentation = build_augmentation(settings.augmentations, settings.seed)
    return classifier_parts(compose(feature_extractor, head, augmentation, name=name))


def build_group_classifier(
    settings: TrainSettings, n_classes: Mapping[str, int], name: str = "group"
) -> Classifier:
    """One classifier for several categories (``n_classes``: each one's number of classes, in
    the group's order), backbone frozen; its outputs and its ``head`` (all the heads on pooled
    features) are dicts by category, each head named by :func:`group_head_name`."""
    feature_extractor = _settings_extractor(settings)
    dim = feature_extractor.output_shape[-1]
    heads = {
        category: build_head(dim, n, settings.dropout, name=group_head_name(category))
        for category, n in n_classes.items()
    }
    augmentation = build_augmentation(settings.augmentations, settings.seed)
    model = compose(feature_extractor, heads, augmentation, name=name)
    features = keras.Input((dim,), name="features")
    joined = keras.Model(features, _apply(heads, features), name="heads")
    return Classifier(model, feature_extractor, joined, backbone_of(feature_extractor))


def group_head_name(category: str) -> str:
    return f"{HEAD}_{category}"


def _settings_extractor(settings: TrainSettings) -> keras.Model:
    """The feature extractor of ``settings``; a random one's BatchNorm follows faster."""
    feature_extractor = build_feature_extractor(
        settings.backbone, settings.image_size, settings.weights
    )
    if settings.weights is None:
        for layer in _batch_norm_layers(feature_extractor):
            layer.momentum = min(layer.momentum, RANDOM_INIT_BN_MOMENTUM)
    return feature_extractor


def classifier_parts(model: keras.Model) -> Classifier:
    """The parts of a full model built by :func:`compose` (also after ``load_model``)."""
    feature_extractor = model.get_layer(FEATURE_EXTRACTOR)
    head = model.get_layer(HEAD)
    return Classifier(model, feature_extractor, head, backbone_of(feature_extractor))


def backbone_of(feature_extractor: keras.Model) -> keras.Model:
    """The backbone inside a feature extractor built by :func:`build_feature_extractor`."""
    nested = [layer for layer in feature_extractor.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"{feature_extractor.name}: expected one backbone inside")
    return nested[0]


def set_backbone_trainable(
    model: keras.Model, trainable: bool, *, batchnorm_trainable: bool = False
) -> None:
    """Freeze or unfreeze the backbone of ``model`` (recompile the model then);
    unfrozen, its BatchNorm layers stay frozen unless ``batchnorm_trainable`` (for random
    weights, whose moving statistics mean nothing)."""
    backbone = backbone_of(model.get_layer(FEATURE_EXTRACTOR))
    backbone.trainable = trainable
    if trainable and not batchnorm_trainable:
        for layer in _batch_norm_layers(backbone):
            layer.trainable = False


def compile_classifier(
    model: keras.Model,
    learning_rate: float,
    soft: bool = False,
    settings: TrainSettings | None = None,
    steps_per_epoch: int = 1,
    epochs: int = 1,
    outputs: Sequence[str] = (),
) -> None:
    """Compile with cross-entropy and accuracy (history keys loss, accuracy, val_loss,
    val_accuracy) on class indices, or with ``soft`` on target rows (label smoothing needs
    them). ``settings`` name the optimizer, schedule and smoothing (None: Adam at a constant
    ``learning_rate``); a schedule runs over the phase's ``epochs`` of ``steps_per_epoch``.
    ``outputs``: a group model's, each with its own loss and, weighted by the sample weights
    that mask the other categories' images, keys ``<output>_accuracy`` and :data:`OWN_LOSS`."""
    smoothing = settings.label_smoothing if settings is not None else 0.0
    if smoothing and not soft:
        raise ValueError("label_smoothing needs target rows (soft=True), not class indices")
    options = {"label_smoothing": smoothing} if soft else {}
    if soft:
        loss, accuracy = keras.losses.CategoricalCrossentropy, keras.metrics.CategoricalAccuracy
        own_loss = keras.metrics.CategoricalCrossentropy
    else:
        loss = keras.losses.SparseCategoricalCrossentropy
        accuracy = keras.metrics.SparseCategoricalAccuracy
        own_loss = keras.metrics.SparseCategoricalCrossentropy
    optimizer = make_optimizer(settings, learning_rate, steps_per_epoch, epochs)
    if not outputs:
        metrics = [accuracy(name="accuracy")]
        model.compile(optimizer=optimizer, loss=loss(**options), metrics=metrics)
        return
    model.compile(
        optimizer=optimizer,
        loss={output: loss(**options) for output in outputs},
        weighted_metrics={
            output: [accuracy(name="accuracy"), own_loss(name=OWN_LOSS, **options)]
            for output in outputs
        },
    )


def make_optimizer(
    settings: TrainSettings | None, learning_rate: float, steps_per_epoch: int, epochs: int
) -> keras.optimizers.Optimizer:
    """``settings.optimizer`` (adam; adamw or sgd with momentum 0.9, with ``weight_decay``), at
    :func:`learning_rate_schedule`; None: Adam at ``learning_rate``."""
    if settings is None:
        return keras.optimizers.Adam(learning_rate)
    rate = learning_rate_schedule(settings, learning_rate, steps_per_epoch, epochs)
    if settings.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=settings.weight_decay)
    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, weight_decay=settings.weight_decay or None)
    return keras.optimizers.Adam(rate)  # weight_decay is refused with adam at start-up


def learning_rate_schedule(
    settings: TrainSettings, learning_rate: float, steps_per_epoch: int, epochs: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """``learning_rate``, after a linear warm-up from 0 over ``settings.warmup_epochs``, then
    constant (``lr_schedule: constant``) or decaying to 0 along a cosine by the end of the
    ``epochs`` (``cosine``). A plain number when constant without warm-up."""
    warmup = settings.warmup_epochs * steps_per_epoch
    if settings.lr_schedule == "constant" and not warmup:
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate,
        decay_steps=max(epochs * steps_per_epoch - warmup, 1),
        alpha=0.0 if settings.lr_schedule == "cosine" else 1.0,  # 1: no decay
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def load_weights_quietly(model: keras.Model, path: Path) -> None:
    """``model.load_weights`` without the warning about optimizer state saved in another phase."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Skipping variable loading for optimizer.*")
        model.load_weights(str(path))


def _batch_norm_layers(model: keras.Model) -> Iterator[layers.BatchNormalization]:
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            yield layer
        if hasattr(layer, "layers"):
            yield from _batch_norm_layers(layer)
