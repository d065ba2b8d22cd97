"""Interrupted data jobs: a job killed with SIGKILL leaves nothing that looks complete.

Each data step writes into ``<output>.partial`` and renames it at the end, so a killed job
leaves at most a ``.partial`` folder (which Snakemake never looks at) and the rerun removes it
and produces the full output. The kills here are real: the step runs in a child process that is
sent SIGKILL mid-way, once between two members or images (the child's progress callback is
slowed so the kill lands there) and once wherever the child happens to be.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from demo.synthetic import ARCHIVE_NAMES, generate_dataset
from fashionai.annotations import merge_annotations
from fashionai.archives import archive_id, extract_archive
from fashionai.atomic import partial_path
from fashionai.attributes import ATTRIBUTES, slugify
from fashionai.decoding import decode_labels
from fashionai.regrouping import plan_regroup
from fashionai.trees import LABELS_FILE, build_category_tree, read_labels, regroup_tree
from tests.workflow_helpers import REPO, SNAKEMAKE, tiny_config

CATEGORY = "neckline_design_labels"  # the category with the most classes, so the most images

CHILD = """
import sys, time
from pathlib import Path

step, slow = sys.argv[1], sys.argv[2] == "slow"
source, output = Path(sys.argv[3]), Path(sys.argv[4])

def log(message):
    print(message, flush=True)
    if slow and "so far" in message:
        time.sleep(0.05)

if step == "extract":
    from fashionai.archives import extract_archive
    extract_archive(source, output, log=log, progress_every=50)
else:
    import pandas as pd
    from fashionai import trees
    from fashionai.regrouping import plan_regroup
    trees._PROGRESS_EVERY = 10
    if step == "tree":
        decoded = pd.read_csv(source, keep_default_na=False)
        trees.build_category_tree(decoded, sys.argv[5], output, log=log)
    else:
        trees.regroup_tree(source, output, plan_regroup(sys.argv[5], None), log=log)
"""


def quiet(_: str) -> None:
    pass


def kill_midway(step: str, slow: bool, source: Path, output: Path, *extra: str,
                after: int = 2) -> int:  # fmt: skip
    """Run ``step`` in a child; SIGKILL it after ``after`` progress lines; the lines seen."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, step, "slow" if slow else "fast", str(source), str(output),
         *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    seen = 0
    try:
        for line in child.stdout:
            if "so far" in line:
                seen += 1
                if seen >= after:
                    child.send_signal(signal.SIGKILL)
                    break
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, f"the child finished before the kill ({seen})"
    return seen


def files_below(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tar_files(archive: Path) -> dict[str, bytes]:
    """The regular files of a tar (macOS ._ sidecars left out, as extraction does)."""
    with tarfile.open(archive) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isreg() and not m.name.rsplit("/", 1)[-1].startswith("._")
        }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic archives with about 1,100 small images in the round-1 tar."""
    out = tmp_path_factory.mktemp("dataset")
    generate_dataset(out, images_per_class=40, image_size=16, faults=False,
                     questions_per_attribute=1, log=quiet)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def round1(dataset: Path) -> Path:
    return dataset / ARCHIVE_NAMES["round1"]


@pytest.fixture(scope="module")
def padded(round1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """round1 plus 8,000 small files: an extraction long enough to kill at a random point."""
    return padded_archive(round1, tmp_path_factory.mktemp("padded") / round1.name, extra=8000)


@pytest.fixture(scope="module")
def decoded(round1: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("extracted") / "round1"
    extract_archive(round1, folder, log=quiet)
    merged = merge_annotations([("round1", folder)])
    decoded, rejected = decode_labels(merged)
    assert len(rejected) == 0
    return decoded


# ----------------------------------------------------------------------------------------------
# extract_archive


@pytest.mark.parametrize("slow", [True, False], ids=["between-members", "anywhere"])
def test_killed_extraction_leaves_only_partial_and_rerun_completes(tmp_path, round1, padded, slow):
    # Killed at full speed, the child needs enough work left to still be running at the kill.
    round1 = round1 if slow else padded
    dest = tmp_path / "results" / "extracted" / "round1"
    partial = dest.with_name("round1.partial")
    kill_midway("extract", slow, round1, dest, after=1 if not slow else 3)
    assert not os.path.lexists(dest)
    assert partial.is_dir()
    written = files_below(partial)
    expected = tar_files(round1)
    assert 0 < len(written) < len(expected)  # really killed mid-way
    assert sorted(os.listdir(dest.parent)) == ["round1.partial"]

    summary = extract_archive(round1, dest, log=quiet)  # the rerun
    assert summary.files == len(expected)
    assert files_below(dest) == expected
    assert sorted(os.listdir(dest.parent)) == ["round1"]


def test_killed_twice_then_completes(tmp_path, round1):
    dest = tmp_path / "round1"
    kill_midway("extract", True, round1, dest, after=2)
    kill_midway("extract", True, round1, dest, after=4)
    assert not dest.exists() and dest.with_name("round1.partial").is_dir()
    extract_archive(round1, dest, log=quiet)
    assert files_below(dest) == tar_files(round1)
    assert sorted(os.listdir(tmp_path)) == ["round1"]


def test_killed_reextraction_keeps_the_old_complete_output(tmp_path, round1):
    dest = tmp_path / "round1"
    extract_archive(round1, dest, log=quiet)
    before = files_below(dest)
    kill_midway("extract", True, round1, dest, after=3)
    assert files_below(dest) == before  # untouched: the new copy was only in .partial
    extract_archive(round1, dest, log=quiet)
    assert files_below(dest) == before
    assert sorted(os.listdir(tmp_path)) == ["round1"]


KILL_AT_SECOND_RENAME = """
import os, signal, sys
from pathlib import Path
from fashionai import archives
real_rename = os.rename
calls = []
def rename(src, dst):
    calls.append(src)
    if len(calls) == 2:  # destination moved aside, the new one not yet in place
        os.kill(os.getpid(), signal.SIGKILL)
    real_rename(src, dst)
archives.os.rename = rename
archives.extract_archive(Path(sys.argv[1]), Path(sys.argv[2]), log=lambda m: None)
"""


def test_killed_while_publishing_over_an_old_output(tmp_path, dataset):
    """The worst moment: the old output renamed to .old, the new one still .partial."""
    round1 = dataset / ARCHIVE_NAMES["warmup"]  # any archive will do: a small one
    dest = tmp_path / "round1"
    extract_archive(round1, dest, log=quiet)
    child = subprocess.run([sys.executable, "-c", KILL_AT_SECOND_RENAME, str(round1), str(dest)],
                           cwd=REPO, check=False)  # fmt: skip
    assert child.returncode == -signal.SIGKILL
    assert sorted(os.listdir(tmp_path)) == ["round1.old", "round1.partial"]  # nothing trusted
    extract_archive(round1, dest, log=quiet)
    assert files_below(dest) == tar_files(round1)
    assert sorted(os.listdir(tmp_path)) == ["round1"]  # both leftovers removed


# ----------------------------------------------------------------------------------------------
# build_category_tree and regroup_tree


def check_tree(tree: Path, decoded: pd.DataFrame, category: str = CATEGORY) -> None:
    rows = decoded[decoded["attribute"] == category]
    labels = read_labels(tree)
    slugs = [slugify(name) for name in ATTRIBUTES[category]]
    for row in rows.itertuples():
        linked = tree / slugs[row.label_index] / row.image_name
        assert linked.stat().st_ino == Path(row.image).stat().st_ino
    assert sum(labels["counts"].values()) == len(rows)
    assert sum(len(os.listdir(tree / slug)) for slug in slugs) == len(rows)


def many_images(decoded: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` decoded rows of CATEGORY, all (hard links to) one real image."""
    source = decoded.loc[decoded["attribute"] == CATEGORY, "image"].iloc[0]
    classes = len(ATTRIBUTES[CATEGORY])
    return pd.DataFrame(
        {
            "attribute": CATEGORY,
            "image_name": [f"{i:032x}.jpg" for i in range(count)],
            "image": source,
            "label_index": [i % classes for i in range(count)],
        }
    )


@pytest.mark.parametrize("slow", [True, False], ids=["between-images", "anywhere"])
def test_killed_tree_build_leaves_only_partial_and_rerun_completes(tmp_path, decoded, slow):
    # Killed at full speed, the child needs enough work left to still be running at the kill.
    decoded = decoded if slow else many_images(decoded, 8000)
    table = tmp_path / "decoded.csv"
    decoded.to_csv(table, index=False)
    tree = tmp_path / "trees" / CATEGORY
    kill_midway("tree", slow, table, tree, CATEGORY, after=2 if slow else 1)
    assert not os.path.lexists(tree)
    partial = partial_path(tree)
    assert partial.is_dir() and not (partial / LABELS_FILE).exists()
    build_category_tree(decoded, CATEGORY, tree, log=quiet)
    check_tree(tree, decoded)
    assert sorted(os.listdir(tree.parent)) == [CATEGORY]


def test_killed_regroup_leaves_only_partial_and_rerun_completes(tmp_path, decoded):
    tree = tmp_path / "trees" / CATEGORY
    build_category_tree(decoded, CATEGORY, tree, log=quiet)
    out = tmp_path / "regrouped" / CATEGORY
    kill_midway("regroup", True, tree, out, CATEGORY, after=2)
    assert not os.path.lexists(out)
    assert partial_path(out).is_dir()
    counts = regroup_tree(tree, out, plan_regroup(CATEGORY, None), log=quiet)
    assert counts == read_labels(tree)["counts"]
    assert sorted(os.listdir(out.parent)) == [CATEGORY]


# ----------------------------------------------------------------------------------------------
# Through snakemake: kill the whole process group during `data`, rerun the same command


def padded_archive(source: Path, target: Path, extra: int) -> Path:
    """``source`` plus ``extra`` small unreferenced files: a longer extraction to kill."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isreg() else None)
        for i in range(extra):
            info = tarfile.TarInfo(f"base/Extra/{i:05d}.bin")
            info.size = 64
            new.addfile(info, io.BytesIO(bytes(64)))
    return target


@pytest.mark.slow
def test_snakemake_killed_during_data_then_rerun_completes(tmp_path, round1):
    workdir = tmp_path / "run"
    archive = padded_archive(round1, workdir / "resources/raw" / round1.name, extra=3000)
    name = archive_id(archive)
    small = "collar_design_labels"  # 5 labels: fewer preview grids to draw in the rerun
    config = tiny_config(archives=[f"resources/raw/{archive.name}"], categories=[small], regroup={})
    (workdir / "test-config.yaml").write_text(yaml.safe_dump(config))
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(REPO / "config.yaml"), str(workdir / "test-config.yaml"),
        "--cores", "2", "--resources", "gpu=1", "--nolock", "data",
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    partial = workdir / "results/extracted" / f"{name}.partial"
    run = subprocess.Popen(command, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (partial.is_dir() and len(list(partial.rglob("*.jpg"))) > 50):
            assert run.poll() is None, "snakemake ended before the extraction could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        os.killpg(run.pid, signal.SIGKILL)  # snakemake and its job, mid-extraction
    finally:
        run.wait(timeout=30)
    # Every process of the group is gone (the job too), and nothing goes on writing.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(run.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    else:
        pytest.fail("a process of the killed snakemake group survived")
    frozen = sorted(partial.rglob("*"))
    time.sleep(0.3)
    assert sorted(partial.rglob("*")) == frozen
    assert not (workdir / "results/extracted" / name).exists()

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    extracted = workdir / "results/extracted" / name
    written = files_below(extracted)
    assert written.pop(".snakemake_timestamp") == b""  # Snakemake's marker in directory outputs
    assert written == tar_files(archive)
    assert not partial.exists()
    decoded = pd.read_csv(workdir / "results/labels/decoded.csv", keep_default_na=False)
    merged = pd.read_csv(workdir / "results/labels/merged.csv", keep_default_na=False)
    rejected = pd.read_csv(workdir / "results/labels/rejected.csv", keep_default_na=False)
    assert len(rejected) == 0 and decoded["source_rows"].sum() == len(merged)
    with tarfile.open(archive) as tar:
        label = tar.extractfile("base/Annotations/label.csv").read().decode()  # type: ignore
    assert len(merged) == len(label.splitlines())
    decoded["image"] = [str(workdir / p) for p in decoded["image"]]
    check_tree(workdir / "results/trees" / small, decoded, small)
    assert (workdir / "results/regrouped" / small / LABELS_FILE).is_file()
    leftovers = [
        p for p in (workdir / "results").rglob("*") if p.name.endswith((".partial", ".old"))
    ]
    assert not leftovers
