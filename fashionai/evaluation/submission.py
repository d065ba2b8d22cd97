"""The competition's submission format, its question file, and the per-category summary table.

A submission has no header and one line per question row: ``path,attribute,p0;p1;...;pK-1``
with probabilities over the attribute's OFFICIAL classes in official order. Our models predict
over regrouped classes, so :func:`expand_to_official` maps them back first.

The question file is ``Tests/question.csv`` inside an extracted test archive (``rank/`` in the
real ones); its image paths are relative to the folder that holds ``Tests/``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd

from fashionai.attributes import ATTRIBUTES, CATEGORIES
from fashionai.attributes import classes as official_classes
from fashionai.evaluation.classes import membership, sorted_groups

QUESTION_COLUMNS = ("image_path", "attribute", "code")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SUMMARY_COLUMNS = ("category", "n_images", "accuracy", "basic_precision", "ap")


def expand_to_official(
    probabilities: np.ndarray,
    classes: list[dict[str, Any]],
    category: str,
    share: Literal["equal", "target"] = "equal",
) -> np.ndarray:
    """Probabilities over the regrouped classes (n, G) -> over the official classes (n, K).

    ``share="equal"``: a group's probability is shared equally by its members (a group of three
    gives each a third). ``share="target"``: the whole probability goes to the member named like
    the group (the merge target; its first member if none is), the other members get 0. A
    dropped class always gets 0. Each row is then renormalised to sum to 1 (this only corrects
    rounding when the input rows are softmax outputs); a row whose total is 0 becomes uniform
    over the non-dropped classes.

    Note: equal sharing lowers the probability of a merged group's members, so the official
    argmax can differ from the regrouped one (a group of three at 0.5 loses to a single class
    at 0.2) and the competition metric can fall; ``"target"`` keeps argmax and confidence.
    """
    groups = sorted_groups(classes, category)
    member = membership(groups, category)  # (K, G)
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != member.shape[1]:
        raise ValueError(
            f"{category}: probabilities of shape {probs.shape} do not have one column per "
            f"regrouped class ({member.shape[1]})"
        )
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(f"{category}: probabilities must be finite and non-negative")
    if share == "equal":
        weights = member.T / member.sum(axis=0)[:, None]  # (G, K), rows sum to 1
    elif share == "target":
        official = official_classes(category)
        weights = np.zeros(member.T.shape)
        for g, group in enumerate(groups):
            target = group["name"] if group["name"] in group["members"] else group["members"][0]
            weights[g, official.index(target)] = 1.0
    else:
        raise ValueError(f"share must be 'equal' or 'target', got {share!r}")
    expanded = probs @ weights
    totals = expanded.sum(axis=1, keepdims=True)
    kept = member.any(axis=1)
    uniform = np.broadcast_to(kept / kept.sum(), expanded.shape)
    return np.where(totals > 0, expanded / np.where(totals > 0, totals, 1.0), uniform)


def format_submission_rows(
    paths: Sequence[str], attribute: str, probs_official: np.ndarray, digits: int = 4
) -> list[str]:
    """Submission lines ``path,attribute,p0;p1;...`` (no newline), probabilities with
    ``digits`` decimals (each rounded value is off by at most half a unit in the last digit).

    ValueError when ``attribute`` is unknown, the shape does not fit, a path holds a comma or a
    line break, or a row is negative / does not sum to 1 within 1e-3 (naming the row).
    """
    if attribute not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {attribute!r}; known: {', '.join(CATEGORIES)}")
    path_list = [str(p) for p in paths]
    probs = np.asarray(probs_official, dtype=np.float64)
    n_classes = len(ATTRIBUTES[attribute])
    if probs.ndim != 2 or probs.shape != (len(path_list), n_classes):
        raise ValueError(
            f"{attribute}: probabilities of shape {probs.shape}, expected "
            f"({len(path_list)}, {n_classes}) (one row per path, one column per official class)"
        )
    if not path_list:
        return []
    series = pd.Series(path_list, dtype=object)
    bad_path = series.str.contains(r"[,\r\n]", regex=True)
    if bad_path.any():
        raise ValueError(f"path {series[bad_path].iloc[0]!r} holds a comma or a line break")
    bad_row = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1)
    bad_row |= np.abs(probs.sum(axis=1) - 1.0) > 1e-3
    if bad_row.any():
        row = int(np.flatnonzero(bad_row)[0])
        raise ValueError(
            f"{attribute}: probabilities of row {row} ({path_list[row]}) are not a distribution "
            f"(sum {probs[row].sum():.6f})"
        )
    buffer = io.StringIO()
    np.savetxt(buffer, probs, fmt=f"%.{digits}f", delimiter=";")
    values = pd.Series(buffer.getvalue().splitlines(), dtype=object)
    return (series + f",{attribute}," + values).tolist()


def read_questions(question_csv: Path | str) -> pd.DataFrame:
    """Read ``Tests/question.csv``: columns ``image_path``, ``attribute``, ``code`` (``"?"``).

    No header (a first line that is neither an image path nor a known attribute is skipped as
    one); a UTF-8 byte-order mark, CRLF line ends, surrounding spaces and blank lines are
    tolerated. ValueError naming the file and line for a line without exactly three fields, an
    empty path or an unknown attribute.
    """
    path = Path(question_csv)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error})") from error
    lines = pd.Series(text.splitlines(), dtype=object)
    lines.index = pd.RangeIndex(1, len(lines) + 1)  # 1-based line numbers for messages
    lines = lines.str.strip()
    lines = lines[lines != ""]
    if lines.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in QUESTION_COLUMNS})
    wrong_fields = lines.str.count(",") != 2
    fields = lines.str.split(",", n=2, expand=True).reindex(columns=range(3)).fillna("")
    fields.columns = list(QUESTION_COLUMNS)
    fields = fields.apply(lambda column: column.str.strip())
    first = lines.index[0]
    if not fields.loc[first, "image_path"].lower().endswith(IMAGE_SUFFIXES) and (
        fields.loc[first, "attribute"] not in ATTRIBUTES
    ):
        fields, wrong_fields = fields.drop(index=first), wrong_fields.drop(index=first)
    if wrong_fields.any():
        line = int(wrong_fields.idxmax())
        raise ValueError(
            f"{path} line {line}: expected 3 comma-separated fields (path,attribute,code), "
            f"got {lines[line]!r}"
        )
    if (fields["image_path"] == "").any():
        line = int((fields["image_path"] == "").idxmax())
        raise ValueError(f"{path} line {line}: empty image path in {lines[line]!r}")
    unknown = ~fields["attribute"].isin(list(ATTRIBUTES))
    if unknown.any():
        line = int(unknown.idxmax())
        raise ValueError(
            f"{path} line {line}: unknown attribute {fields.loc[line, 'attribute']!r} in "
            f"{lines[line]!r}; known attributes: {', '.join(CATEGORIES)}"
        )
    return fields.reset_index(drop=True).astype(object)


def find_question_csv(extracted: Path | str) -> Path:
    """The one ``Tests/question.csv`` under an extracted test archive (any depth); macOS
    ``._`` sidecar files are ignored. ValueError when there is none or more than one."""
    root = Path(extracted)
    found = sorted(
        p for p in root.rglob("question.csv") if p.parent.name == "Tests" and p.is_file()
    )
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found) or "none"
        raise ValueError(f"{root}: expected exactly one Tests/question.csv, found {listed}")
    return found[0]


def image_files(questions: pd.DataFrame, question_csv: Path | str) -> list[Path]:
    """Absolute image files of ``questions`` (from :func:`read_questions`): the paths are
    relative to the folder holding ``Tests/``. ValueError for a path that is absolute or would
    leave that folder."""
    root = Path(question_csv).resolve().parent.parent
    files = []
    for relative in questions["image_path"]:
        parts = PurePosixPath(relative.replace("\\", "/")).parts
        if not parts or parts[0] == "/" or ".." in parts:
            raise ValueError(f"question image path {relative!r} leaves {root}")
        files.append(root.joinpath(*parts))
    return files


def summary_table(metrics_by_category: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per category (category, n_images, accuracy, basic_precision, ap, and
    official_ap / official_basic_precision when every category has them) plus a final ``mean``
    row: the unweighted mean over the categories (missing values skipped), so its ``ap`` is the
    competition's mAP; its ``n_images`` is the total."""
    columns = list(SUMMARY_COLUMNS)
    extra = ("official_basic_precision", "official_ap")
    if metrics_by_category and all(
        all(key in metrics for key in extra) for metrics in metrics_by_category.values()
    ):
        columns += extra
    rows = [
        {"category": category, **{key: metrics.get(key) for key in columns[1:]}}
        for category, metrics in metrics_by_category.items()
    ]
    frame = pd.DataFrame(rows, columns=columns)
    numeric = columns[2:]
    frame[numeric] = frame[numeric].astype("float64")
    frame["n_images"] = frame["n_images"].astype("int64")
    mean = {"category": "mean", "n_images": int(frame["n_images"].sum())}
    mean |= {key: frame[key].mean() for key in numeric}  # NaN when a column is all missing
    return pd.concat([frame, pd.DataFrame([mean], columns=columns)], ignore_index=True)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """``frame`` as a GitHub-flavoured Markdown table: numbers right-aligned, floats with
    ``digits`` decimals, missing values as ``n/a``, ``|`` in text escaped."""
    numeric = [pd.api.types.is_numeric_dtype(frame[column]) for column in frame.columns]
    cells = frame.astype(object).map(lambda value: _cell(value, digits))
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "|".join("---:" if is_num else "---" for is_num in numeric) + "|"
    body = ("| " + cells.agg(" | ".join, axis=1) + " |").tolist() if len(frame) else []
    return "\n".join([header, rule, *body]) + "\n"


def _cell(value: Any, digits: int) -> str:
    """One Markdown table cell."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")
