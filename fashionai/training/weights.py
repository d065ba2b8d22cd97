"""ImageNet no-top weights fetched once to a local file (rule ``fetch_weights``: cluster nodes
often have no internet), from the URLs and with the hashes Keras uses."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from fashionai.atomic import atomic_file
from fashionai.training.backbones import BACKBONES, check_weights_file, weights_url


def fetch_weights(
    backbone: str,
    dest: Path,
    url: str | None = None,
    log: Callable[[str], None] = print,
    md5: str | None = None,
) -> Path:
    """Download ``backbone``'s no-top weights to ``dest`` (atomically) once; return ``dest``.
    ``url`` defaults to Keras' own, checked against Keras' hash unless ``md5`` (MD5, or SHA-256
    when 64 hex digits) is given. A file already at ``dest`` (put by hand) is checked and kept."""
    dest = Path(dest)
    if url is None:
        url = weights_url(backbone)
        md5 = md5 or BACKBONES[backbone].weights_hash
    if dest.name.endswith(".weights.h5") or dest.suffix not in (".h5", ".hdf5"):
        raise ValueError(
            f"{dest}: name the weights file *.h5 (not *.weights.h5): Keras picks the loader "
            "of its legacy weights format by that suffix"
        )
    if dest.exists():
        log(f"{dest} exists: not downloading {url} again")
        _check_hash(dest, dest, md5)
        return dest
    log(f"downloading {backbone} weights from {url}")
    needed = "no checksum is known for it: it is not checked"  # none published, or a user's URL
    if md5 is not None:
        needed = f"it must have {_algorithm(md5).upper()} {md5} (check with {_algorithm(md5)}sum)"
    with atomic_file(dest) as partial:
        try:
            with partial.open("wb") as out, urllib.request.urlopen(url) as response:
                shutil.copyfileobj(response, out)
        except urllib.error.URLError as error:
            raise OSError(
                f"cannot download {url} ({error.reason}). On a machine without internet, "
                f"download it elsewhere and put it by hand at {dest.resolve()}; "
                f"{needed}. Then rerun."
            ) from error
        _check_hash(url, partial, md5)
        check_weights_file(partial, name=dest.name)
    log(f"wrote {dest} ({dest.stat().st_size / 1e6:.1f} MB)")
    return dest


def file_hash(path: Path | str, algorithm: str = "sha256") -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def _check_hash(source: Path | str, path: Path, expected: str | None) -> None:
    """ValueError naming ``source`` if the file at ``path`` does not have hash ``expected``."""
    if expected is None:
        return
    algorithm = _algorithm(expected)
    found = file_hash(path, algorithm)
    if found != expected:
        raise ValueError(
            f"{source}: {algorithm.upper()} {found} differs from the expected {expected}; "
            "the file is corrupt or not the expected one"
        )


def _algorithm(expected: str) -> str:
    """The algorithm of a hex digest, told by its length as Keras' ``get_file`` does."""
    return "sha256" if len(expected) == 64 else "md5"
