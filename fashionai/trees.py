"""Per-category folder trees of hard-linked images, one folder per label.

Layout: ``<tree>/<slug>/<image_name>`` and ``<tree>/labels.json``::

    {"category": "...",
     "classes": [{"index": 0, "slug": "...", "name": "...", "members": ["official name", ...]}],
     "dropped": ["official name", ...],
     "counts": {"slug": n_images, ...}}

Trees are built in a partial folder (:mod:`fashionai.atomic`) and renamed when complete.
Images are hard links to the extracted files (a copy only across file systems), so a tree costs
almost no disk space.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fashionai.atomic import atomic_folder
from fashionai.attributes import classes, slugify
from fashionai.regrouping import RegroupPlan

if TYPE_CHECKING:
    import pandas as pd

LABELS_FILE = "labels.json"
_PROGRESS_EVERY = 10000
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


@contextmanager
def _building(out_dir: Path, slugs: list[str], log: Callable[[str], None]) -> Iterator[_Tree]:
    """A fresh partial tree with one empty folder per slug; its ``labels`` (set by the caller)
    are written and logged and the folder is renamed to ``out_dir`` when the block ends."""
    with atomic_folder(out_dir) as partial:
        for slug in slugs:
            (partial / slug).mkdir()
        tree = _Tree(partial, log, out_dir.name)
        yield tree
        text = json.dumps(tree.labels, indent=2, ensure_ascii=False) + "\n"
        (partial / LABELS_FILE).write_text(text, encoding="utf-8")
        category, classes, counts = (tree.labels[key] for key in ("category", "classes", "counts"))
        log(f"{category}: {sum(counts.values()):,} images in {len(classes)} labels -> {out_dir}")
        for entry in classes:
            log(f"  {entry['slug']} ({entry['name']}): {counts[entry['slug']]:,} images")
        log(f"{category}: {tree.linked:,} hard-linked, {tree.copied:,} copied (other file system)")


class _Tree:
    """A tree being built: links files into it, counting links and copies, logging progress."""

    def __init__(self, folder: Path, log: Callable[[str], None], name: str) -> None:
        self.folder, self.log, self.name = folder, log, name
        self.linked = self.copied = 0
        self.labels: dict[str, Any] = {}

    def add(self, src: str, dst: str) -> None:
        """Link ``src`` to ``dst`` (plain strings: a Path per image costs more than the link)."""
        if link_or_copy(src, dst):
            self.linked += 1
        else:
            self.copied += 1
        if (self.linked + self.copied) % _PROGRESS_EVERY == 0:
            self.log(f"{self.name}: {self.linked + self.copied:,} images so far")


def build_category_tree(
    decoded: pd.DataFrame,
    category: str,
    out_dir: Path,
    *,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Write the tree of ``category`` from the decoded labels; returns images per slug."""
    import numpy as np  # here, not at the top: regroup jobs import this module without them
    import pandas as pd

    out_dir = Path(out_dir)
    names = classes(category)
    slugs = [slugify(name) for name in names]
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

    with _building(out_dir, slugs, log) as tree:
        folder = np.asarray(slugs, dtype=object)[label_index.to_numpy(dtype="int64")]
        targets = str(tree.folder) + os.sep + folder + os.sep + image_name.to_numpy(dtype=object)
        for src, dst in zip(image.to_numpy(dtype=object), targets, strict=True):
            tree.add(src, dst)
        counts = {slug: 0 for slug in slugs}
        counts.update(pd.Series(folder, dtype=object).value_counts().astype(int).to_dict())
        entries = [
            {"index": i, "slug": slug, "name": name, "members": [name]}
            for i, (slug, name) in enumerate(zip(slugs, names, strict=True))
        ]
        tree.labels = {"category": category, "classes": entries, "dropped": [], "counts": counts}
    return counts


def regroup_tree(
    tree_dir: Path, out_dir: Path, plan: RegroupPlan, *, log: Callable[[str], None] = print
) -> dict[str, int]:
    """Link the images of ``tree_dir`` into the groups of ``plan``; returns images per slug."""
    tree_dir, out_dir = Path(tree_dir), Path(out_dir)
    labels = read_labels(tree_dir)
    if labels["category"] != plan.category:
        raise ValueError(
            f"{tree_dir / LABELS_FILE}: category {labels['category']!r} does not match the "
            f"regroup plan's {plan.category!r}"
        )
    with _building(out_dir, [group.slug for group in plan.groups], log) as tree:
        counts = {group.slug: 0 for group in plan.groups}
        origin: dict[tuple[str, str], str] = {}  # (group slug, image name) -> source label
        for entry in labels["classes"]:
            source = str(tree_dir / entry["slug"]) + os.sep
            files = sorted(e.name for e in os.scandir(source) if e.is_file())
            group = plan.target_of(entry["name"])
            if group is None:
                log(f"  dropped {entry['name']}: {len(files):,} images left out")
                continue
            target = str(tree.folder / group.slug) + os.sep
            for name in files:
                other = origin.setdefault((group.slug, name), entry["name"])
                if other != entry["name"]:
                    raise ValueError(
                        f"regroup of {plan.category}: image {name!r} is in both "
                        f"{other!r} and {entry['name']!r}, which merge into {group.name!r}"
                    )
                tree.add(source + name, target + name)
            counts[group.slug] += len(files)
        entries = [
            {"index": i, "slug": g.slug, "name": g.name, "members": list(g.members)}
            for i, g in enumerate(plan.groups)
        ]
        tree.labels = {
            "category": plan.category,
            "classes": entries,
            "dropped": list(plan.dropped),
            "counts": counts,
        }
    return counts


def read_labels(tree_dir: Path) -> dict:
    """Load ``tree_dir/labels.json`` and check its structure; errors name the file and key."""
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
