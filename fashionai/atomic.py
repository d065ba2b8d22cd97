"""Atomic outputs: a file or folder appears whole under its final name, or not at all.

Each is built under a partial name beside it (same file system: an atomic rename), removed on
failure or by the next attempt; the partial name keeps the suffixes, which Keras and h5py read.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_PREFIX = ".partial."
OLD_PREFIX = ".old."


def partial_path(path: str | Path) -> Path:
    """Where ``path`` is built before it is renamed into place."""
    path = Path(path)
    return path.with_name(PARTIAL_PREFIX + path.name)


def remove(path: str | Path) -> None:
    """Remove a file, link or folder tree at ``path`` if there is one (links not followed)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield the partial path to write ``path`` through; renamed into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    remove(partial)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        remove(partial)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as partial:
        partial.write_text(text, encoding="utf-8")


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a fresh partial folder that replaces ``path`` on success; the old one is moved to
    ``.old.<name>`` first, so a kill at any moment leaves the old folder or the new one."""
    path = Path(path)
    partial, old = partial_path(path), path.with_name(OLD_PREFIX + path.name)
    remove(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
        remove(old)
        if os.path.lexists(path):
            os.rename(path, old)
        os.rename(partial, path)
        remove(old)
    except BaseException:
        remove(partial)
        raise
