"""fetch_weights: one download (here from a file:// URL), atomic, loadable by build_backbone."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pytest
from training_helpers import limit_threads

limit_threads()

from fashionai.training.backbones import (  # noqa: E402
    BACKBONES,
    build_backbone,
    notop_file_name,
)
from fashionai.training.weights import fetch_weights  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A MobileNetV3Small no-top weights file in Keras' own (legacy HDF5) format."""
    from keras.src.legacy.saving import legacy_h5_format

    model = build_backbone("MobileNetV3Small", 32, weights=None)
    source = tmp_path_factory.mktemp("server") / "weights_mobilenet_v3_small_no_top.h5"
    with h5py.File(source, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    return source, np.asarray(model.weights[0])


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined")  # below 224 px
def test_fetch_from_file_url_then_build_loads_it(served, tmp_path: Path) -> None:
    source, first_kernel = served
    dest = tmp_path / "weights" / "MobileNetV3Small_imagenet_notop.h5"
    messages: list[str] = []
    path = fetch_weights("MobileNetV3Small", dest, url=source.as_uri(), log=messages.append)
    assert path == dest and dest.read_bytes() == source.read_bytes()
    assert list(dest.parent.iterdir()) == [dest]  # no partial file left
    loaded = build_backbone("MobileNetV3Small", 32, weights=str(dest))
    np.testing.assert_array_equal(np.asarray(loaded.weights[0]), first_kernel)

    source_gone = tmp_path / "gone.h5"
    fetch_weights("MobileNetV3Small", dest, url=source_gone.as_uri(), log=messages.append)
    assert "exists" in messages[-1]


def test_checksum_mismatch_leaves_nothing(served, tmp_path: Path) -> None:
    source, _ = served
    dest = tmp_path / "x_notop.h5"
    with pytest.raises(ValueError, match="MD5"):
        fetch_weights("MobileNetV3Small", dest, url=source.as_uri(), md5="0" * 32, log=print)
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    fetch_weights("MobileNetV3Small", dest, url=source.as_uri(), md5=md5, log=print)
    assert dest.exists()


def test_bad_requests(tmp_path: Path, served) -> None:
    source, _ = served
    with pytest.raises(ValueError, match=r"not \*\.weights\.h5"):
        fetch_weights("ResNet50V2", tmp_path / "x.weights.h5", url=source.as_uri())
    with pytest.raises(ValueError, match="SmallCNN.*no ImageNet weights"):
        fetch_weights("SmallCNN", tmp_path / "x.h5")
    with pytest.raises(OSError):
        fetch_weights("ResNet50V2", tmp_path / "y.h5", url=(tmp_path / "nothing.h5").as_uri())
    assert not (tmp_path / "y.h5").exists()
    not_hdf5 = tmp_path / "page.h5"
    not_hdf5.write_text("<html>proxy login</html>")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        fetch_weights("ResNet50V2", tmp_path / "z.h5", url=not_hdf5.as_uri())
    assert not (tmp_path / "z.h5").exists()


@pytest.mark.parametrize("backbone", [name for name, spec in BACKBONES.items() if spec.imagenet])
def test_without_internet_the_error_says_where_to_put_the_file(
    backbone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file and its hash as Keras publishes it: MD5, SHA-256, or none (MobileNet,
    MobileNetV2), when the error says so and cites no checksum."""

    def offline(url: str) -> None:
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "weights" / notop_file_name(backbone)
    with pytest.raises(OSError) as error:
        fetch_weights(backbone, dest, log=print)
    message, spec = str(error.value), BACKBONES[backbone]
    assert spec.weights_url in message and "Network is unreachable" in message
    assert f"put it by hand at {dest.resolve()};" in message
    if spec.weights_hash is None:
        assert "; no checksum is known for it: it is not checked. Then rerun." in message
    else:
        algorithm = "sha256" if len(spec.weights_hash) == 64 else "md5"
        check = f"{algorithm.upper()} {spec.weights_hash} (check with {algorithm}sum)"
        assert f"; it must have {check}. Then rerun." in message
    assert list(dest.parent.iterdir()) == []


def test_a_file_put_by_hand_is_checked_against_the_md5(served, tmp_path: Path) -> None:
    source, _ = served
    dest = tmp_path / "MobileNetV3Small_imagenet_notop.h5"
    dest.write_bytes(source.read_bytes())
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    assert fetch_weights("MobileNetV3Small", dest, md5=md5, log=print) == dest
    with pytest.raises(ValueError, match=f"{dest}: MD5 {md5} differs from the expected 0+;"):
        fetch_weights("MobileNetV3Small", dest, md5="0" * 32, log=print)


def test_keras_sha256_hashes_are_checked_as_sha256(served, tmp_path: Path) -> None:
    """ConvNeXt's published hashes are SHA-256 (64 hex digits), as Keras' get_file reads them."""
    source, _ = served
    dest = tmp_path / "ConvNeXtTiny_imagenet_notop.h5"
    dest.write_bytes(source.read_bytes())
    assert len(BACKBONES["ConvNeXtTiny"].weights_hash) == 64
    with pytest.raises(
        ValueError, match=f"{dest}: SHA256 [0-9a-f]{{64}} differs from the expected"
    ):
        fetch_weights("ConvNeXtTiny", dest, log=print)
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    assert fetch_weights("ConvNeXtTiny", dest, md5=sha256, log=print) == dest
