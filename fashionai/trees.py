"""Per-category trees of hard-linked images (copies only across file systems), built atomically:
``<tree>/<slug>/<image_name>`` and ``<tree>/labels.json``: ``{"category": ..., "classes":
[{"index", "slug", "name", "members": [official names]}], "dropped": [...], "counts": {slug: n}}``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fashionai.atomic import atomic_folder
from fashionai.attributes import classes, slugify
from fashionai.regrouping import LabelGroup, RegroupPlan

if TYPE_CHECKING:
    import pandas as pd

LABELS_FILE = "labels.json"
_PROGRESS_EVERY = 10000
Log = Callable[[str], None]
# Errors of os.link that mean "no hard links here", not "something is wrong".
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}


def link_or_copy(src: str | Path, dst: str | Path) -> bool:
    """Hard-link ``src`` to ``dst``; copy where links are impossible. True if it linked."""
    try:
        os.link(src, dst)
        return True
    except OSError as error:
        if error.errno not in _NO_LINK:
            raise
    shutil.copy2(src, dst)
    return False


def link_files(source: str | Path, outputs: Iterable[str | Path]) -> None:
    """Make each of ``outputs`` a link (or copy) of the file of its name in ``source``, modified
    now so that Snakemake takes it for newer than what made ``source``."""
    for output in map(Path, outputs):
        file = Path(source) / output.name
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such file to link to {output}")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.unlink(missing_ok=True)
        link_or_copy(file, output)
        os.utime(output)


@contextmanager
def _building(
    out_dir: Path, category: str, groups: list[LabelGroup], dropped: list[str], log: Log
) -> Iterator[_Tree]:
    """A partial tree with one empty folder per group; at the end, labels.json and the rename."""
    with atomic_folder(out_dir) as partial:
        for group in groups:
            (partial / group.slug).mkdir()
        tree = _Tree(partial, log, out_dir.name, {group.slug: 0 for group in groups})
        yield tree
        classes = [
            {"index": i, "slug": g.slug, "name": g.name, "members": list(g.members)}
            for i, g in enumerate(groups)
        ]
        labels = dict(category=category, classes=classes, dropped=dropped, counts=tree.counts)
        text = json.dumps(labels, indent=2, ensure_ascii=False) + "\n"
        (partial / LABELS_FILE).write_text(text, encoding="utf-8")
        total = sum(tree.counts.values())
        log(f"{category}: {total:,} images in {len(groups)} labels -> {out_dir}")
        for group in groups:
            log(f"  {group.slug} ({group.name}): {tree.counts[group.slug]:,} images")
        log(f"{category}: {tree.linked:,} hard-linked, {tree.copied:,} copied (other file system)")


class _Tree:
    """A tree being built: counts images per folder, links and copies."""

    def __init__(self, folder: Path, log: Log, name: str, counts: dict[str, int]) -> None:
        self.prefix, self.log, self.name, self.counts = str(folder) + os.sep, log, name, counts
        self.linked = self.copied = 0

    def add(self, src: str, slug: str, name: str) -> None:
        """Link ``src`` to ``<slug>/<name>`` (plain strings: a Path per image costs more)."""
        if link_or_copy(src, f"{self.prefix}{slug}{os.sep}{name}"):
            self.linked += 1
        else:
            self.copied += 1
        self.counts[slug] += 1
        if (self.linked + self.copied) % _PROGRESS_EVERY == 0:
            self.log(f"{self.name}: {self.linked + self.copied:,} images so far")


def build_category_tree(
    decoded: pd.DataFrame, category: str, out_dir: Path, *, log: Log = print
) -> dict[str, int]:
    """Write the tree of ``category`` from the decoded labels; returns images per slug."""
    import pandas as pd  # here, not at the top: regroup jobs import this module without it

    names = classes(category)
    rows = decoded.loc[decoded["attribute"] == category, ["image_name", "image", "label_index"]]
    image_name = rows["image_name"].astype(str)
    image = rows["image"].astype(str)
    label_index = pd.to_numeric(rows["label_index"], errors="coerce")

    def fail(mask: pd.Series, problem: str) -> None:
        if mask.any():
            where = mask.to_numpy().nonzero()[0][0]
            raise ValueError(
                f"decoded labels of {category}: row {rows.index[where]} "
                f"(image {image.iloc[where]!r}): {problem}"
            )

    fail(~label_index.between(0, len(names) - 1), f"label_index outside 0..{len(names) - 1}")
    fail(
        (image_name == "") | image_name.isin([".", ".."]) | image_name.str.contains(r"[/\\]"),
        "image_name is not a plain file name",
    )
    fail(image_name.duplicated(), "image_name appears twice in the category")

    groups = [LabelGroup(slugify(name), name, (name,)) for name in names]
    with _building(Path(out_dir), category, groups, [], log) as tree:
        for src, index, name in zip(image, label_index.astype(int), image_name, strict=True):
            tree.add(src, groups[index].slug, name)
    return tree.counts


def regroup_tree(
    tree_dir: Path, out_dir: Path, plan: RegroupPlan, *, log: Log = print
) -> dict[str, int]:
    """Link the images of ``tree_dir`` into the groups of ``plan``; returns images per slug."""
    tree_dir, out_dir = Path(tree_dir), Path(out_dir)
    labels = read_labels(tree_dir)
    if labels["category"] != plan.category:
        raise ValueError(
            f"{tree_dir / LABELS_FILE}: category {labels['category']!r} does not match the "
            f"regroup plan's {plan.category!r}"
        )
    with _building(out_dir, plan.category, list(plan.groups), list(plan.dropped), log) as tree:
        origin: dict[tuple[str, str], str] = {}  # (group slug, image name) -> source label
        for entry in labels["classes"]:
            source = str(tree_dir / entry["slug"]) + os.sep
            files = sorted(e.name for e in os.scandir(source) if e.is_file())
            group = plan.target_of(entry["name"])
            if group is None:
                log(f"  dropped {entry['name']}: {len(files):,} images left out")
                continue
            for name in files:
                other = origin.setdefault((group.slug, name), entry["name"])
                if other != entry["name"]:
                    raise ValueError(
                        f"regroup of {plan.category}: image {name!r} is in both "
                        f"{other!r} and {entry['name']!r}, which merge into {group.name!r}"
                    )
                tree.add(source + name, group.slug, name)
    return tree.counts


def slugs_of(labels: dict) -> list[str]:
    """The class folders of a tree's ``labels.json`` (as :func:`read_labels` gives it), in order."""
    return [entry["slug"] for entry in labels["classes"]]


def read_labels(tree_dir: Path) -> dict:
    """``tree_dir/labels.json``, its structure checked; errors name the file and key."""
    path = Path(tree_dir) / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; is {tree_dir} a label tree?")
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None

    def bad(key: str, problem: str) -> ValueError:
        return ValueError(f"{path}: {key}: {problem}")

    if not isinstance(labels, dict):
        raise bad("top level", "expected an object")
    for key, kind in (("category", str), ("classes", list), ("dropped", list), ("counts", dict)):
        if not isinstance(labels.get(key), kind):
            raise bad(key, f"missing or not a {kind.__name__}")
    slugs = []
    for i, entry in enumerate(labels["classes"]):
        key = f"classes[{i}]"
        if not isinstance(entry, dict):
            raise bad(key, "expected an object")
        if entry.get("index") != i:
            raise bad(f"{key}.index", f"expected {i}, found {entry.get('index')!r}")
        for field in ("slug", "name"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise bad(f"{key}.{field}", "missing or not a non-empty string")
        members = entry.get("members")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise bad(f"{key}.members", "missing or not a list of names")
        if entry["slug"] in slugs or "/" in entry["slug"] or entry["slug"] in (".", ".."):
            raise bad(f"{key}.slug", f"{entry['slug']!r} is repeated or not a folder name")
        slugs.append(entry["slug"])
    if not slugs:
        raise bad("classes", "empty")
    counts = labels["counts"]
    if set(counts) != set(slugs):
        raise bad("counts", f"keys {sorted(counts)} do not match the class slugs {slugs}")
    for slug, count in counts.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise bad(f"counts.{slug}", f"expected a count, found {count!r}")
    return labels
