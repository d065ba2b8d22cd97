"""Augmentations: shape kept, images changed in training, untouched in inference."""

from __future__ import annotations

import numpy as np
import pytest
from training_helpers import limit_threads

limit_threads()

from fashionai.training.augment import AUGMENTATIONS, build_augmentation  # noqa: E402


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Eight asymmetric 24 px images (a gradient plus a bright corner), 0..255."""
    ramp = np.linspace(20, 200, 24, dtype=np.float32)
    batch = np.broadcast_to(ramp[None, None, :, None], (8, 24, 24, 3)).copy()
    batch[:, :6, :6, :] = 250.0
    return batch


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_augmentation_changes_images_in_training_only(name: str, images: np.ndarray) -> None:
    layer = build_augmentation([name], seed=3)
    trained = np.asarray(layer(images, training=True))
    assert trained.shape == images.shape
    changed = [not np.allclose(trained[i], images[i], atol=1e-3) for i in range(len(images))]
    assert any(changed), f"{name} left all 8 images unchanged"
    assert trained.min() >= -1e-3 and trained.max() <= 255.001
    moved = trained[~np.isclose(trained, images, atol=1e-3)]  # e.g. an erased patch's noise
    assert moved.max() > 1, f"{name} changes pixels to values of a 0..1 scale, not 0..255"
    inferred = np.asarray(layer(images, training=False))
    np.testing.assert_allclose(inferred, images, atol=1e-4)


def test_all_augmentations_chain_in_the_given_order() -> None:
    names = ["contrast", "flip", "rotation"]
    sequential = build_augmentation(names, seed=0)
    assert [layer.name for layer in sequential.layers] == [f"augment_{n}" for n in names]


def test_no_augmentation_is_none() -> None:
    assert build_augmentation([], seed=0) is None
