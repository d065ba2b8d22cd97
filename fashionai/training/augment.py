"""Named random augmentations (``train.augmentations``). :data:`AUGMENTATIONS` change each image
alone, as Keras layers inside the model (so they also make the feature cache's views);
:data:`MIXING` (MixUp, CutMix) blend pairs of images and target rows in the input pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# name -> (keras.layers class, its arguments)
AUGMENTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "flip": ("RandomFlip", {"mode": "horizontal"}),
    "rotation": ("RandomRotation", {"factor": 0.2}),
    "translation": ("RandomTranslation", {"height_factor": 0.3, "width_factor": 0.3}),
    "brightness": ("RandomBrightness", {"factor": 0.4, "value_range": (0, 255)}),
    "contrast": ("RandomContrast", {"factor": 0.4, "value_range": (0, 255)}),
    # Random erasing (Zhong et al. 2017): half the images get a random patch of noise.
    "random_erasing": (
        "RandomErasing",
        {"factor": (0.5, 0.5), "value_range": (0, 255), "fill_value": None},
    ),
    "randaugment": ("RandAugment", {"value_range": (0, 255), "num_ops": 2, "factor": 0.5}),
}
MIXUP_ALPHA = 0.2


def mixes(names: Sequence[str]) -> list[str]:
    """The augmentations among ``names`` that mix images and targets (MixUp, CutMix)."""
    return [name for name in names if name in MIXING]


def build_augmentation(names: Sequence[str], seed: int) -> keras.Sequential | None:
    """The per-image augmentations among ``names`` as one ``keras.Sequential`` (None: none); the
    layer of ``names[i]`` gets seed ``seed + i``."""
    import keras

    layers = [
        getattr(keras.layers, AUGMENTATIONS[name][0])(
            **AUGMENTATIONS[name][1], seed=seed + offset, name=f"augment_{name}"
        )
        for offset, name in enumerate(names)
        if name in AUGMENTATIONS
    ]
    return keras.Sequential(layers, name="augmentation") if layers else None


def mix_batches(data: tf.data.Dataset, names: Sequence[str], seed: int) -> tf.data.Dataset:
    """``data`` (batches of 0..255 images and float target rows) with the mixing augmentations
    among ``names`` applied in turn (``data`` itself if none). Each batch's stateless ops get
    their own seed drawn from ``seed``, so the batches do not depend on the thread count."""
    mixing = [MIXING[name] for name in mixes(names)]
    if not mixing:
        return data
    import tensorflow as tf

    def mix(batch: tuple[tf.Tensor, tf.Tensor], seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images, targets = batch
        seeds = tf.random.split(seed, len(mixing))
        for i, function in enumerate(mixing):
            images, targets = function(images, targets, seeds[i])
        return images, targets

    # An offset from the shuffle's seed: another stream of numbers than the shuffle's.
    seeds = tf.data.Dataset.random(seed + 1000, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(data, seeds).map(mix, num_parallel_calls=tf.data.AUTOTUNE)


def mixup(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """MixUp (Zhang et al. 2018): each image and target row blended with those of another of
    the batch, keeping a Beta(alpha, alpha) share of its own (alpha: :data:`MIXUP_ALPHA`)."""
    import tensorflow as tf

    weight_seed, partner_seed = tf.unstack(tf.random.split(seed))
    shape = [2, tf.shape(images)[0], 1, 1, 1]
    gammas = tf.random.stateless_gamma(shape, weight_seed, alpha=MIXUP_ALPHA)
    keep = tf.math.divide_no_nan(gammas[0], gammas[0] + gammas[1])  # Beta(alpha, alpha)
    return _mix(images, targets, keep, partner_seed)


def cutmix(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """CutMix (Yun et al. 2019): in each image, a box of a uniform share of its area (sides
    in the image's proportions, placed uniformly inside it) replaced by the same box of another
    image of the batch; target rows mixed by the area each image keeps."""
    import tensorflow as tf

    box_seed, partner_seed = tf.unstack(tf.random.split(seed))
    shape = tf.shape(images)
    size = tf.cast(shape[1:3], tf.float32)
    draws = tf.random.stateless_uniform([shape[0], 3], box_seed)  # area share, top, left
    sides = tf.sqrt(draws[:, :1]) * size  # (n, 2): height and width
    starts = draws[:, 1:] * (size - sides)

    def inside(axis: int) -> tf.Tensor:  # (n, length): whether each pixel along axis is in
        offsets = tf.range(size[axis])[None, :] - starts[:, axis, None]
        return (offsets >= 0) & (offsets < sides[:, axis, None])

    box = inside(0)[:, :, None, None] & inside(1)[:, None, :, None]  # (n, height, width, 1)
    return _mix(images, targets, 1 - tf.cast(box, images.dtype), partner_seed)


def _mix(
    images: tf.Tensor, targets: tf.Tensor, keep: tf.Tensor, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Each image blended with another of the batch (a permutation from ``seed``), keeping
    ``keep`` of each pixel ((n, 1, 1, 1) or per pixel), its target row by the mean share kept."""
    import tensorflow as tf

    partners = tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], seed))
    images = keep * images + (1 - keep) * tf.gather(images, partners)
    share = tf.reduce_mean(keep, axis=[1, 2, 3])[:, None]
    return images, share * targets + (1 - share) * tf.gather(targets, partners)


# name -> function(images, targets, seed): the batch mixed
MIXING: dict[str, Callable[..., tuple[tf.Tensor, tf.Tensor]]] = {"mixup": mixup, "cutmix": cutmix}
NAMES = (*AUGMENTATIONS, *MIXING)  # the schema's list
