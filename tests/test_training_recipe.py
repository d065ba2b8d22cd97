"""The recipe options: optimizer, weight decay, schedule, label smoothing, mixing
augmentations, BatchNorm of a random backbone, and their start-up checks. Each test fails if
its option silently does nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from training_helpers import limit_threads, make_tree, pretrained_weights, split_files

limit_threads()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from fashionai.pixels import dataset_options  # noqa: E402
from fashionai.schema import ConfigError, schema_defaults  # noqa: E402
from fashionai.training.augment import (  # noqa: E402
    MIXING,
    NAMES,
    build_augmentation,
    mix_batches,
)
from fashionai.training.model import (  # noqa: E402
    build_classifier,
    compile_classifier,
    set_backbone_trainable,
)
from fashionai.training.settings import TrainSettings, check_train  # noqa: E402

SMALL = dict(backbone="SmallCNN", weights=None, image_size=16, batch_size=4)


def compiled(**recipe: object) -> keras.Model:
    """A tiny classifier compiled with ``recipe`` over 5 epochs of 10 steps, rate 0.1."""
    settings = TrainSettings(**SMALL, **recipe)
    model = build_classifier(settings, n_classes=3).model
    compile_classifier(model, 0.1, soft=True, settings=settings, steps_per_epoch=10, epochs=5)
    return model


def rate_at(model: keras.Model, step: int) -> float:
    schedule = model.optimizer._learning_rate
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return float(np.asarray(model.optimizer.learning_rate))
    return float(np.asarray(schedule(step)))


def test_default_is_adam_at_a_constant_rate() -> None:
    model = compiled()
    assert type(model.optimizer) is keras.optimizers.Adam
    assert model.optimizer.weight_decay is None
    assert [rate_at(model, step) for step in (0, 25, 50)] == pytest.approx([0.1] * 3)


@pytest.mark.parametrize(
    ("name", "cls"), [("adamw", keras.optimizers.AdamW), ("sgd", keras.optimizers.SGD)]
)
def test_optimizer_and_weight_decay(name: str, cls: type) -> None:
    optimizer = compiled(optimizer=name, weight_decay=0.05).optimizer
    assert type(optimizer) is cls
    assert optimizer.weight_decay == pytest.approx(0.05)
    if name == "sgd":
        assert optimizer.momentum == pytest.approx(0.9)


def test_weight_decay_shrinks_the_weights() -> None:
    """Decoupled decay at a zero gradient: w <- w - lr * wd * w."""
    settings = TrainSettings(**SMALL, optimizer="sgd", weight_decay=0.5)
    from fashionai.training.model import make_optimizer

    optimizer = make_optimizer(settings, 0.1, 1, 1)
    weight = keras.Variable(np.ones(3, "float32"))
    optimizer.apply_gradients([(np.zeros(3, "float32"), weight)])
    np.testing.assert_allclose(np.asarray(weight), 0.95, rtol=1e-6)


def test_cosine_schedule_with_warmup() -> None:
    model = compiled(lr_schedule="cosine", warmup_epochs=1)
    assert rate_at(model, 0) == pytest.approx(0.0)
    assert rate_at(model, 5) == pytest.approx(0.05)  # half way up
    assert rate_at(model, 10) == pytest.approx(0.1)  # warmed up
    assert rate_at(model, 30) == pytest.approx(0.05, abs=1e-6)  # half way down the cosine
    assert rate_at(model, 50) == pytest.approx(0.0, abs=1e-7)  # the phase's end


def test_cosine_without_warmup_starts_at_the_rate() -> None:
    model = compiled(lr_schedule="cosine")
    assert rate_at(model, 0) == pytest.approx(0.1)
    assert rate_at(model, 25) == pytest.approx(0.05, abs=1e-6)


def test_constant_schedule_with_warmup_stays_at_the_rate() -> None:
    model = compiled(warmup_epochs=2)
    assert [rate_at(model, step) for step in (0, 10, 20, 35, 50)] == pytest.approx(
        [0.0, 0.05, 0.1, 0.1, 0.1]
    )


def test_label_smoothing_changes_the_loss() -> None:
    target = np.array([[1.0, 0.0, 0.0]], "float32")
    predicted = np.array([[0.5, 0.25, 0.25]], "float32")
    smoothed = target * 0.7 + 0.3 / 3
    expected = -(smoothed * np.log(predicted)).sum()
    loss = compiled(label_smoothing=0.3).loss
    assert float(loss(target, predicted)) == pytest.approx(expected, rel=1e-5)
    assert float(compiled().loss(target, predicted)) == pytest.approx(-np.log(0.5), rel=1e-5)
    soft = np.array([[0.8, 0.2, 0.0]], "float32")  # soft targets are smoothed too
    expected_soft = -((soft * 0.7 + 0.1) * np.log(predicted)).sum()
    assert float(loss(soft, predicted)) == pytest.approx(expected_soft, rel=1e-5)


def test_label_smoothing_needs_target_rows() -> None:
    settings = TrainSettings(**SMALL, label_smoothing=0.1)
    model = build_classifier(settings, n_classes=3).model
    with pytest.raises(ValueError, match="label_smoothing needs target rows"):
        compile_classifier(model, 0.1, soft=False, settings=settings)


def test_target_rows_when_an_option_needs_them() -> None:
    assert not TrainSettings(**SMALL, augmentations=("flip", "randaugment")).target_rows
    assert TrainSettings(**SMALL, label_smoothing=0.1).target_rows
    assert TrainSettings(**SMALL, augmentations=("flip", "cutmix")).target_rows
    assert TrainSettings(**SMALL, maybe_labels="soft").target_rows


def images_and_targets(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Each image one flat grey level, and a class of its own, one-hot: a mix shows in both,
    and the mean level of a mixed image is its target row times the levels."""
    levels = np.linspace(0, 255, n, dtype="float32")
    images = np.broadcast_to(levels[:, None, None, None], (n, 16, 16, 3)).copy()
    return images, np.eye(n, dtype="float32")


@pytest.mark.parametrize("name", list(MIXING))
def test_mixing_mixes_images_and_targets(name: str) -> None:
    images, targets = images_and_targets()
    batches = tf.data.Dataset.from_tensor_slices((images, targets)).batch(8)
    mixed_images, mixed_targets = next(iter(mix_batches(batches, [name], seed=1)))
    mixed_images, mixed_targets = np.asarray(mixed_images), np.asarray(mixed_targets)
    assert mixed_images.shape == images.shape and mixed_targets.shape == targets.shape
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1, rtol=1e-5)
    assert (np.count_nonzero(mixed_targets > 1e-6, axis=1) == 2).any(), "no target was mixed"
    assert not np.allclose(mixed_images, images), "no image was mixed"
    # Each mixed image holds two grey levels (cutmix) or a level between two (mixup).
    assert any(len(np.unique(image)) > 1 or image[0, 0, 0] not in images[:, 0, 0, 0]
               for image in mixed_images)  # fmt: skip
    # Each target row shares its classes as its image shares its pixels.
    levels = images[:, 0, 0, 0]
    np.testing.assert_allclose(mixed_images.mean(axis=(1, 2, 3)), mixed_targets @ levels, atol=0.01)


def mixed_passes(threads: int) -> np.ndarray:
    """The images and target rows of two passes over 16 batches mixed by every mixing
    augmentation, in parallel on ``threads`` threads."""
    data = tf.data.Dataset.from_tensor_slices(images_and_targets(64)).batch(4)
    data = mix_batches(data, list(MIXING), seed=1).with_options(dataset_options(threads))

    def one_pass() -> np.ndarray:
        return np.concatenate([np.asarray(x).ravel() for batch in data for x in batch])

    return np.array([one_pass(), one_pass()])


def test_mixing_is_the_same_whatever_the_threads() -> None:
    """Two runs that mix batches in parallel on four threads, or one after the other on one,
    give the same batches; each pass over the data has draws of its own."""
    first = mixed_passes(4)
    np.testing.assert_array_equal(first, mixed_passes(4))
    np.testing.assert_array_equal(first, mixed_passes(1))
    assert not np.array_equal(first[0], first[1]), "each pass mixes the same way"


def test_mixing_is_not_in_the_model_and_absent_leaves_the_data() -> None:
    sequential = build_augmentation(["flip", "mixup", "randaugment", "cutmix"], seed=0)
    assert [layer.name for layer in sequential.layers] == ["augment_flip", "augment_randaugment"]
    assert build_augmentation(["mixup"], seed=0) is None
    data = tf.data.Dataset.from_tensor_slices(images_and_targets()).batch(4)
    assert mix_batches(data, ["flip"], seed=0) is data


def test_schema_lists_every_augmentation() -> None:
    from fashionai.schema import load_schema

    items = load_schema()["properties"]["train"]["properties"]["augmentations"]["items"]
    assert items["enum"] == list(NAMES)


def test_random_backbone_trains_its_batchnorm_when_asked() -> None:
    settings = TrainSettings(**SMALL)
    classifier = build_classifier(settings, n_classes=3)
    set_backbone_trainable(classifier.model, True, batchnorm_trainable=True)
    compile_classifier(classifier.model, 1e-2)
    layer = classifier.backbone.get_layer("block1_bn")
    assert layer.trainable
    before = np.asarray(layer.moving_mean).copy()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    classifier.model.fit(images, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
    assert not np.allclose(before, np.asarray(layer.moving_mean))
    set_backbone_trainable(classifier.model, True)  # the default: BatchNorm frozen
    assert not layer.trainable


def train(**overrides: object) -> dict:
    """A schema-valid train mapping with its defaults and ``overrides``."""
    return {**schema_defaults("train"), **overrides}


REFUSED = [
    (train(backbone="ConvNextTiny"), r"train\.backbone = 'ConvNextTiny': not a backbone; "
     r"did you mean 'ConvNeXtTiny'.*keras\.applications"),
    (train(backbone="Resnet"), r"train\.backbone = 'Resnet': not a backbone.*ResNet50"),
    (train(backbone="Xception", image_size=64), r"train\.image_size = 64: train\.backbone "
     r"'Xception' needs at least 71 px"),
    (train(weight_decay=0.01), r"train\.weight_decay = 0\.01: needs train\.optimizer adamw"),
    (train(warmup_epochs=60), r"train\.warmup_epochs = 60: must be below train\.epochs \(60\)"),
    (train(augmentations=["flip", "mixup"]), r"train\.augmentations = \['flip', 'mixup'\]: "
     r"mixup mixes pairs.*cache_features: true"),
    (train(augmentations=["cutmix"], weights=None, fine_tune=False), r"cutmix mixes pairs"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "message"), REFUSED)
def test_check_train_refuses(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_train(settings)


@pytest.mark.parametrize(
    "settings",
    [
        train(backbone="DenseNet201", image_size=32),
        train(backbone="Xception", image_size=71),
        train(optimizer="adamw", weight_decay=0.05, lr_schedule="cosine", warmup_epochs=2),
        train(augmentations=["mixup", "cutmix"], weights=None, fine_tune=True),
        train(augmentations=["mixup"], cache_features=False),
    ],
)
def test_check_train_accepts(settings: dict) -> None:
    check_train(settings)


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe",
    [
        {"label_smoothing": 0.1, "augmentations": ("flip", "mixup", "cutmix")},
        {"optimizer": "adamw", "weight_decay": 0.01, "lr_schedule": "cosine", "fine_tune": True,
         "head_epochs": 1},
    ],
)  # fmt: skip
def test_train_category_with_a_recipe(
    tmp_path: Path, recipe: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through train_category: the compiled optimizer and loss are the recipe's; the training
    batches are mixed (target rows not one-hot), never the validation batches; each phase's
    cosine runs from the phase's rate down to 0 at the phase's last step."""
    import fashionai.training.run as run_module

    tree = make_tree(tmp_path / "tree", per_class=6, size=16)
    weights = (
        pretrained_weights(tmp_path / "pretrained.weights.h5") if "fine_tune" in recipe else None
    )
    settings = TrainSettings(**{**SMALL, "batch_size": 8, "epochs": 2, "learning_rate": 0.01,
                                "patience": 4, "weights": weights, "cache_features": False,
                                **recipe})  # fmt: skip
    fits: list[dict] = []
    original_fit = keras.Model.fit

    def fit(model: keras.Model, data: tf.data.Dataset, **kwargs: Any) -> object:
        steps = sum(1 for _ in data) * (kwargs["epochs"] - kwargs["initial_epoch"])
        schedule = model.optimizer._learning_rate
        fits.append({
            "optimizer": model.optimizer, "loss": model.loss,
            "targets": np.concatenate([np.asarray(t) for _, t in data]),
            "validation": np.concatenate([np.asarray(t) for _, t in kwargs["validation_data"]]),
            "rates": [float(schedule(step)) for step in range(steps + 1)] if callable(schedule)
            else None,
        })  # fmt: skip
        return original_fit(model, data, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    summary = run_module.train_category(
        tree, tmp_path / "out", settings, **split_files(tree, settings), log=lambda _: None
    )
    assert summary["epochs_run"] == settings.epochs and summary["soft_targets"] is None
    if "mixup" in settings.augmentations:
        (seen,) = fits
        assert seen["loss"].get_config()["label_smoothing"] == pytest.approx(0.1)
        assert (seen["targets"].max(axis=1) < 1 - 1e-6).any()
        validation = seen["validation"]  # one-hot rows
        assert set(np.unique(validation)) == {0, 1} and (validation.sum(axis=1) == 1).all()
    else:
        head, fine_tune = fits
        for seen, rate in ((head, 0.01), (fine_tune, 0.001)):
            assert type(seen["optimizer"]) is keras.optimizers.AdamW
            # over the phase's epoch of 2 steps, from the phase's rate down to 0
            assert seen["rates"] == pytest.approx([rate, rate / 2, 0], abs=1e-9)
