"""Atomic outputs: a file or folder appears whole under its name, or not at all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fashionai.atomic import OLD_PREFIX, atomic_file, atomic_folder, partial_path, write_text


def test_a_file_appears_whole_and_no_partial_is_left(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "decoded.csv"
    with atomic_file(target) as partial:
        assert partial == partial_path(target) == tmp_path / "sub" / ".partial.decoded.csv"
        partial.write_text("a,b\n1,2\n")
        assert not target.exists()  # nothing under the final name while it is written
    assert target.read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["decoded.csv"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_partial(tmp_path: Path) -> None:
    target = tmp_path / "decoded.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(target) as partial:
        partial.write_text("half a fi")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoded.csv"]


def test_partial_names_keep_the_suffixes_libraries_choose_formats_by(tmp_path: Path) -> None:
    assert partial_path(tmp_path / "model.keras").name == ".partial.model.keras"
    assert partial_path(tmp_path / "best.weights.h5").name.endswith(".weights.h5")


def test_a_folder_replaces_the_old_one_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    target.mkdir()
    (target / "old.jpg").write_bytes(b"old")
    partial_path(target).mkdir()  # left by a killed run
    (partial_path(target) / "stale.jpg").write_bytes(b"stale")
    with pytest.raises(ValueError), atomic_folder(target) as partial:
        assert list(partial.iterdir()) == []  # the stale partial was cleared first
        (partial / "new.jpg").write_bytes(b"new")
        raise ValueError("a bad row")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]
    assert [p.name for p in target.iterdir()] == ["old.jpg"]
    with atomic_folder(target) as partial:
        (partial / "new.jpg").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["new.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]  # no .partial., no .old.
    assert not (tmp_path / (OLD_PREFIX + "tree")).exists()


WRITER = """
import sys, time
from fashionai.atomic import atomic_file
with atomic_file(sys.argv[1]) as partial:
    with open(partial, "w") as handle:
        handle.write("first half\\n")
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
        handle.write("second half\\n")
"""


def test_a_killed_writer_leaves_the_old_file_under_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "merged.csv"
    write_text(target, "old\n")
    repo = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=repo,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "writing\n"
    time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert target.read_text() == "old\n"
    assert partial_path(target).read_text() == "first half\n"  # only the partial is half-written
    write_text(target, "new\n")  # the next attempt replaces both
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.csv"]
    assert target.read_text() == "new\n"
