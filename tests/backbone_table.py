"""The backbone table regenerated from the installed Keras (maintainer tooling, never run by the
package): ``python -m tests.backbone_table`` prints :data:`fashionai.training.backbones._TABLE`
from Keras, and tests/test_training_backbones.py compares the two."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

from fashionai.training.backbones import _HOST, _KERAS, _MODES, BackboneSpec, Channels


def application_names() -> list[str]:
    """The constructors ``keras.applications`` exports (needs Keras)."""
    import keras

    return sorted(name for name in dir(keras.applications) if name[:1].isupper())


def describe_application(name: str) -> BackboneSpec:
    """The spec of ``keras.applications.<name>`` read from the installed Keras (slow: builds
    the network). Keras' own calls are intercepted: the minimum size its input check takes,
    the no-top weights file it would download (nothing is downloaded), and its
    ``preprocess_input`` measured as an affine map of the channels."""
    import keras
    from keras.src.applications import imagenet_utils
    from keras.src.utils import file_utils

    class _Download(Exception):
        pass

    found: dict[str, Any] = {}
    obtain, get_file = imagenet_utils.obtain_input_shape, file_utils.get_file

    def record_shape(*args: Any, **kwargs: Any) -> Any:
        found["min_size"] = kwargs["min_size"]
        return obtain(*args, **kwargs)

    def record_download(fname: str, origin: str, **kwargs: Any) -> None:
        found["url"], found["hash"] = origin, kwargs.get("file_hash")
        raise _Download

    constructor = getattr(keras.applications, name)
    imagenet_utils.obtain_input_shape, file_utils.get_file = record_shape, record_download
    try:
        with warnings.catch_warnings():  # about input sizes other than the weights' own
            warnings.simplefilter("ignore", UserWarning)
            constructor(include_top=False, weights="imagenet")
    except _Download:
        pass
    finally:
        imagenet_utils.obtain_input_shape, file_utils.get_file = obtain, get_file
    module = constructor.__module__.rsplit(".", 1)[-1]
    rescale, bgr = _affine(getattr(keras.applications, module).preprocess_input)
    min_size = found.get("min_size", 32)  # MobileNetV3 checks its 32 px without the helper
    return BackboneSpec(name, module, rescale, min_size, found.get("url"), found.get("hash"), bgr)


def _affine(preprocess: Callable[[Any], Any]) -> tuple[tuple[Channels, Channels] | None, bool]:
    """``preprocess`` (on 0..255 RGB) as (scale, offset) per channel and whether it reverses the
    channels; None for the identity. Raises ValueError if it is none of these."""
    import numpy as np

    probes = np.concatenate([np.zeros((1, 3)), 255 * np.eye(3)]).astype("float32")
    out = np.asarray(preprocess(probes.reshape(4, 1, 1, 3).copy()), "float64").reshape(4, 3)
    offset, kernel = out[0], (out[1:] - out[0]) / 255
    bgr = bool(np.allclose(kernel, np.diag(np.diag(kernel[::-1]))[::-1]) and kernel[2, 0] != 0)
    scale = np.diag(kernel[::-1] if bgr else kernel)
    if not bgr and not np.allclose(kernel, np.diag(scale)):
        raise ValueError(f"{preprocess.__module__}.preprocess_input is not per-channel affine")
    if not bgr and np.allclose(scale, 1) and np.allclose(offset, 0):
        return None, False

    def compact(values: np.ndarray) -> Channels:
        rounded = tuple(float(f"{value:.10g}") for value in values)
        return rounded[0] if len(set(rounded)) == 1 else rounded  # type: ignore[return-value]

    return (compact(scale), compact(offset)), bgr


def same_spec(listed: BackboneSpec, described: BackboneSpec) -> bool:
    """Whether a listed spec agrees with the one read from Keras (preprocessing to 1e-5)."""
    import numpy as np

    def values(spec: BackboneSpec) -> list[float]:
        if spec.rescale is None:
            return []
        return [float(v) for part in spec.rescale for v in np.broadcast_to(part, (3,))]

    return (
        dataclasses.replace(listed, rescale=None) == dataclasses.replace(described, rescale=None)
        and (listed.rescale is None) == (described.rescale is None)
        and np.allclose(values(listed), values(described), rtol=1e-5, atol=1e-5)
    )


def _table_row(spec: BackboneSpec) -> str:
    mode = next(
        (mode for mode, (rescale, bgr) in _MODES.items()
         if same_spec(spec, dataclasses.replace(spec, rescale=rescale, bgr=bgr))),
        None,
    )  # fmt: skip
    if mode is None or spec.weights_url is None:
        raise ValueError(f"{spec}: no row of _TABLE can hold it (a new preprocessing, no weights?)")
    url = spec.weights_url.removeprefix(_KERAS).removeprefix(_HOST)
    return (
        f"{spec.application:<17} {spec.module:<19} {mode:<5} {spec.min_size:>2} {url} "
        f"{spec.weights_hash or '-'}"
    )


if __name__ == "__main__":
    for application in application_names():
        print(_table_row(describe_application(application)))
