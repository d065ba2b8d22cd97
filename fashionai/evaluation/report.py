"""File-level helpers of the ``evaluate`` rule: the validation rows and ``metrics.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

SPLIT_COLUMNS = ("image", "image_name", "label", "label_index", "subset")
DECODED_COLUMNS = ("attribute", "image_name", "code")


def load_validation(
    split_csv: Path | str, decoded_csv: Path | str, category: str, subset: str = "validation"
) -> pd.DataFrame:
    """The held-out rows of ``split.csv`` (in file order) with their original annotation code.

    Columns: those of ``split.csv`` plus ``code`` from ``decoded.csv`` (matched on
    ``image_name`` within ``attribute == category``). An image listed twice in ``decoded.csv``
    with the same code is used once; ValueError when the codes differ, when a validation image
    has no decoded row, or when a required column is missing (naming the file).
    """
    split = _read(split_csv, SPLIT_COLUMNS)
    decoded = _read(decoded_csv, DECODED_COLUMNS)
    held_out = split[split["subset"] == subset].reset_index(drop=True)
    codes = decoded.loc[decoded["attribute"] == category, ["image_name", "code"]]
    codes = codes.drop_duplicates()
    clash = codes["image_name"].duplicated(keep=False) & codes["image_name"].isin(
        held_out["image_name"]
    )
    if clash.any():
        name = codes.loc[clash, "image_name"].iloc[0]
        listed = ", ".join(codes.loc[codes["image_name"] == name, "code"])
        raise ValueError(f"{decoded_csv}: {category} image {name} has different codes: {listed}")
    codes = codes.drop_duplicates("image_name")
    merged = held_out.merge(codes, on="image_name", how="left", validate="many_to_one")
    missing = merged["code"].isna()
    if missing.any():
        raise ValueError(
            f"{decoded_csv}: no {category} row for {int(missing.sum())} {subset} image(s) of "
            f"{split_csv}, first: {merged.loc[missing, 'image_name'].iloc[0]}"
        )
    merged["label_index"] = merged["label_index"].astype("int64")
    return merged


def write_metrics(metrics: dict[str, Any], out_json: Path | str) -> None:
    """Write ``metrics`` as indented JSON (NaN is refused: use None for undefined values)."""
    path = Path(out_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _read(csv_path: Path | str, required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV read as strings (keeping ``"nan"``-like codes literal), with required columns."""
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}")
    return frame
