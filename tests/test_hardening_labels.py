"""Malformed annotation files: property-based tests over arbitrary lines.

Hypothesis writes ``Annotations/label.csv`` files from a mix of valid rows, rows broken in a
known way (wrong length, no y, two y, bad letters, unknown attribute, unsafe path, missing or
extra fields, quotes, a header), arbitrary text (commas, quotes, unicode, control characters,
very long codes) and blank lines, with a BOM or not and LF, CRLF or CR line ends, in two
archives (rounds). Then ``read_annotation_file``, ``merge_annotations`` and ``decode_labels``
must never crash, every non-blank line must be a row, every row must be decoded or rejected with
the reason an independent oracle predicts, the counts must reconcile, and every decoded row must
be a valid label. Bytes that are not UTF-8 fail the whole file with a message naming the file
and the first bad line (the documented decision in ``annotations.py``).
"""

from __future__ import annotations

import io
import itertools
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fashionai import decoding as d
from fashionai.annotations import merge_annotations, read_annotation_file
from fashionai.attributes import ATTRIBUTES

ATTRS = sorted(ATTRIBUTES)
POOL = [f"{i:x}" * 32 for i in range(6)]  # few image names, so that rows collide
ARCHIVES = ("round1", "round2")
FOLDERS = {"round1": "base", "round2": "train"}
LINE_ENDS = ("\n", "\r\n", "\r")
REASONS = {
    d.HEADER,
    d.MALFORMED,
    d.UNKNOWN_ATTRIBUTE,
    d.BAD_CHARACTER,
    d.WRONG_LENGTH,
    d.NO_Y,
    d.MULTIPLE_Y,
    d.UNSAFE_PATH,
    d.IMAGE_MISSING,
}
# Sized for a few seconds each: an example runs the whole data half (pandas) on two files.
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (90, 10, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


GOOD_JPEG = _jpeg()
CUT_JPEG = "corrupt or truncated image header (Truncated File Read)"  # half of GOOD_JPEG


@dataclass
class Line:
    """One physical line: its text and what the oracle expects of it."""

    text: str
    kind: str  # "valid", a decoding reason, "header", "blank" or "any"
    attribute: str = ""
    name: str = ""
    code: str = ""


# ----------------------------------------------------------------------------------------------
# Strategies


def pad() -> st.SearchStrategy[str]:
    return st.sampled_from(["", " ", "\t", "  ", " \t"])


@st.composite
def codes(draw, attribute: str, ys: int = 1, length: int | None = None) -> str:
    size = len(ATTRIBUTES[attribute]) if length is None else length
    letters = [draw(st.sampled_from("nm")) for _ in range(size)]
    for position in draw(st.permutations(range(size)))[:ys]:
        letters[position] = "y"
    return "".join(letters)


@st.composite
def valid_line(draw) -> Line:
    attribute = draw(st.sampled_from(ATTRS))
    name = draw(st.sampled_from(POOL))
    code = draw(codes(attribute))
    fields = [f"Images/{attribute}/{name}.jpg", attribute, code]
    text = ",".join(draw(pad()) + field + draw(pad()) for field in fields)
    return Line(text, "valid", attribute, name + ".jpg", code)


@st.composite
def broken_line(draw) -> Line:
    """A row that is wrong in exactly one known way."""
    attribute = draw(st.sampled_from(ATTRS))
    name = draw(st.sampled_from(POOL)) + ".jpg"
    size = len(ATTRIBUTES[attribute])
    path = f"Images/{attribute}/{name}"
    how = draw(
        st.sampled_from(
            [
                "length",
                "long",
                "no_y",
                "two_y",
                "letter",
                "unknown",
                "unsafe",
                "empty",
                "extra",
                "quoted",
            ]
        )
    )
    if how == "length":
        length = draw(st.integers(1, size + 4).filter(lambda n: n != size))
        return Line(f"{path},{attribute},{draw(codes(attribute, length=length))}", d.WRONG_LENGTH)
    if how == "long":
        length = draw(st.integers(1000, 5000))
        return Line(f"{path},{attribute},{'y' + 'n' * length}", d.WRONG_LENGTH)
    if how == "no_y":
        return Line(f"{path},{attribute},{draw(codes(attribute, ys=0))}", d.NO_Y)
    if how == "two_y":
        ys = draw(st.integers(2, size))
        return Line(f"{path},{attribute},{draw(codes(attribute, ys=ys))}", d.MULTIPLE_Y)
    if how == "letter":
        code = list(draw(codes(attribute)))
        code[draw(st.integers(0, size - 1))] = draw(st.sampled_from("YNM?x1é*"))
        return Line(f"{path},{attribute},{''.join(code)}", d.BAD_CHARACTER)
    if how == "unknown":
        other = draw(
            st.from_regex(r"[a-z_]{1,30}", fullmatch=True).filter(lambda a: a not in ATTRS)
        )
        return Line(f"{path},{other},{draw(codes(attribute))}", d.UNKNOWN_ATTRIBUTE)
    if how == "unsafe":
        bad = draw(st.sampled_from(["../", "../../", "/", "/abs/", "C:/", "c:\\", "Images/../../"]))
        return Line(f"{bad}{name},{attribute},{draw(codes(attribute))}", d.UNSAFE_PATH)
    if how == "empty":
        code = draw(codes(attribute))
        fields = draw(
            st.sampled_from(
                [
                    ("", attribute, code),
                    (path, "", code),
                    (path, attribute, ""),
                    (path,),
                    (path, attribute),
                ]
            )
        )
        return Line(",".join(fields), d.MALFORMED)
    if how == "extra":
        extra = draw(st.text(TEXT, max_size=5))
        return Line(f"{path},{attribute},{draw(codes(attribute))},{extra}", d.MALFORMED)
    # CSV-style quoting is not undone: the quoted attribute is not a known one.
    return Line(f'"{path}","{attribute}","{draw(codes(attribute))}"', "quoted")


# Arbitrary text without line breaks, weighted towards what breaks parsers.
FRAGMENTS = st.sampled_from(
    [
        ",",
        ",,",
        '"',
        "'",
        ";",
        "\t",
        " ",
        "\ufeff",
        "\x00",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x85",
        "\u2028",
        "é",
        "中文",
        "🧥",
        "Images/",
        "../",
        "/",
        "\\",
        "y",
        "n",
        "m",
        "ynnnn",
        "nynnnn",
        "?",
        *ATTRS,
        *POOL,
    ]
)
TEXT = st.characters(exclude_characters="\r\n", exclude_categories=("Cs",))
# No ".jpg": a random line must not accidentally name (and conflict with) a valid row's image.
ANY_TEXT = (
    st.lists(st.one_of(FRAGMENTS, st.text(TEXT, max_size=12)), max_size=10)
    .map("".join)
    .filter(lambda text: ".jpg" not in text)
)


def any_line() -> st.SearchStrategy[Line]:
    return ANY_TEXT.map(lambda text: Line(text, "any"))


def blank_line() -> st.SearchStrategy[Line]:
    return st.sampled_from(["", " ", "\t", "   \t "]).map(lambda text: Line(text, "blank"))


def header_line() -> st.SearchStrategy[Line]:
    return st.sampled_from(
        ["image_path,attribute,label", "path,attribute,code", "ImageName,AttrKey,AttrValues"]
    ).map(lambda text: Line(text, "header"))


LINE = st.one_of(valid_line(), valid_line(), broken_line(), any_line(), blank_line())


@st.composite
def label_file(draw) -> tuple[list[Line], str, bool, bool]:
    """Lines (a header line first, sometimes), the line end, a BOM, a final line end."""
    lines = draw(st.lists(LINE, max_size=25))
    if draw(st.booleans()):
        lines.insert(0, draw(header_line()))
    return lines, draw(st.sampled_from(LINE_ENDS)), draw(st.booleans()), draw(st.booleans())


def render(lines: list[Line], end: str, bom: bool, final_end: bool) -> str:
    text = end.join(line.text for line in lines) + (end if final_end and lines else "")
    return ("\ufeff" if bom else "") + text


# ----------------------------------------------------------------------------------------------
# The oracle


def content(text: str) -> str:
    """A line as the parser sees it: whitespace and a leading BOM stripped."""
    return text.strip().lstrip("\ufeff").strip()


def expected_fields(text: str) -> list[str]:
    fields = [field.strip() for field in content(text).split(",", 2)]
    return fields + [""] * (3 - len(fields))


def line_reason(line: Line, number: int) -> str | None:
    """The reason checks 1-2 give (None: passes them), or "any" for arbitrary text.

    A first line whose attribute is unknown and whose code is not y/n/m letters is a header,
    whatever else is wrong with it (the documented order of the checks).
    """
    if line.kind == "valid":
        return None
    if line.kind == "any":
        return "any"
    _, attribute, code = expected_fields(line.text)
    if number == 1 and attribute not in ATTRS and not re.fullmatch("[ynm]+", code):
        return d.HEADER
    if line.kind in ("header", "quoted"):
        return d.UNKNOWN_ATTRIBUTE
    return line.kind


def check_decoded_rows_are_valid(decoded: pd.DataFrame) -> None:
    for row in decoded.itertuples():
        names = ATTRIBUTES[row.attribute]
        assert len(row.code) == len(names)
        assert set(row.code) <= set("ynm") and row.code.count("y") == 1
        assert row.label_index == row.code.index("y")
        assert row.label == names[row.label_index]
        assert row.maybe == ";".join(n for n, c in zip(names, row.code, strict=True) if c == "m")
        assert row.source_rows >= 1


def run_pipeline(
    root: Path,
    files: dict[str, tuple[list[Line], str, bool, bool]],
    images: dict[tuple[str, str, str], str] | None,
) -> None:
    """Write the files (and images), run the data half, compare with the oracle."""
    extracted = []
    for archive in ARCHIVES:
        folder = root / archive
        lines, end, bom, final_end = files[archive]
        label = folder / FOLDERS[archive] / "Annotations" / "label.csv"
        label.parent.mkdir(parents=True)
        label.write_bytes(render(lines, end, bom, final_end).encode("utf-8"))
        extracted.append((archive, folder))

        # read_annotation_file: every non-blank line is a row, fields split as documented.
        frame = read_annotation_file(label)
        numbers = [n for n, line in enumerate(lines, 1) if content(line.text)]
        assert frame["line"].tolist() == numbers
        texts = [lines[n - 1].text for n in numbers]
        got = frame[["image_path", "attribute", "code"]].values.tolist()
        assert got == [expected_fields(text) for text in texts]

    for (archive, attribute, name), state in (images or {}).items():
        path = root / archive / FOLDERS[archive] / "Images" / attribute / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if state != "missing":
            path.write_bytes(GOOD_JPEG if state == "good" else GOOD_JPEG[: len(GOOD_JPEG) // 2])

    merged = merge_annotations(extracted)
    decoded, rejected = d.decode_labels(merged, check_images=images is not None, workers=2)
    report = d.reconcile(merged, decoded, rejected)  # raises if the counts do not add up
    assert f"of {len(merged):,} read" in report
    check_decoded_rows_are_valid(decoded)

    # Every row is either rejected or stands behind exactly one decoded row.
    reasons = {(r.archive, r.line): r.reason for r in rejected.itertuples()}
    assert len(reasons) == len(rejected)
    key_of = {(r.attribute, r.image_name): r for r in decoded.itertuples()}
    used: dict[tuple[str, str], int] = defaultdict(int)
    for row in merged.itertuples():
        if (row.archive, row.line) in reasons:
            continue
        name = row.image_path.replace("\\", "/").rsplit("/", 1)[-1]
        decoded_row = key_of[(row.attribute, name)]
        assert decoded_row.code == row.code
        used[(row.attribute, name)] += 1
    assert dict(used) == {key: r.source_rows for key, r in key_of.items()}

    # The oracle: checks 1-2 per line, then conflicts, then images.
    expected: dict[tuple[str, int], str | None] = {}
    survivors: dict[tuple[str, str], list[tuple[str, int, str]]] = defaultdict(list)
    for archive in ARCHIVES:
        for number, line in enumerate(files[archive][0], 1):
            if not content(line.text):
                continue
            reason = line_reason(line, number)
            expected[(archive, number)] = reason
            if line.kind == "valid":
                survivors[(line.attribute, line.name)].append((archive, number, line.code))
    for (attribute, name), rows in survivors.items():
        conflict = len({code for _, _, code in rows}) > 1
        files = list(dict.fromkeys(f"{a}/{FOLDERS[a]}/Annotations/label.csv" for a, _, _ in rows))
        if len(files) == 1:
            why = d.CONFLICT_IN_FILE.format(count=len(rows), file=files[0])
        else:
            why = d.CONFLICT_ACROSS_FILES.format(files="; ".join(files))
        for archive, number, _ in rows:
            if conflict:
                expected[(archive, number)] = why
            elif images is not None:
                state = images.get((archive, attribute, name), "missing")
                expected[(archive, number)] = {
                    "good": None,
                    "missing": d.IMAGE_MISSING,
                    "corrupt": f"{d.IMAGE_UNREADABLE}: {CUT_JPEG}",
                }[state]
    for key, reason in expected.items():
        got = reasons.get(key)
        if reason == "any":
            assert (
                got is None or got in REASONS or got.startswith((d.IMAGE_UNREADABLE, "same image"))
            ), got
        else:
            assert got == reason, (key, got, reason)
    assert set(expected) == set(zip(merged["archive"], merged["line"], strict=True))


# ----------------------------------------------------------------------------------------------
# Properties


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """A fresh empty folder per call (per Hypothesis example), all below one module folder."""
    root = tmp_path_factory.mktemp("labels")
    counter = itertools.count()
    return lambda: root / str(next(counter))


@SETTINGS
@given(first=label_file(), second=label_file())
def test_arbitrary_lines_are_decoded_or_rejected_and_counts_reconcile(scratch, first, second):
    run_pipeline(scratch(), {"round1": first, "round2": second}, images=None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=label_file(),
    second=label_file(),
    states=st.dictionaries(
        st.tuples(st.sampled_from(ARCHIVES), st.sampled_from(ATTRS), st.sampled_from(POOL)),
        st.sampled_from(["good", "good", "missing", "corrupt"]),
        max_size=30,
    ),
)
def test_with_real_images_on_disk(scratch, first, second, states):
    images = {(a, attribute, name + ".jpg"): s for (a, attribute, name), s in states.items()}
    # Every image a valid row names gets a state: good, missing or corrupt.
    for archive, (lines, *_) in (("round1", first), ("round2", second)):
        for line in lines:
            if line.kind == "valid":
                images.setdefault((archive, line.attribute, line.name), "good")
    run_pipeline(scratch(), {"round1": first, "round2": second}, images=images)


LINE_BYTES = st.one_of(
    valid_line().map(lambda line: line.text.encode("utf-8")),
    st.binary(max_size=30),
    st.sampled_from(
        [b"\xff", b"\xfe\xff", b"\xe4\xb8", b"\xc3", b"\x80abc", b"caf\xe9", b"\xed\xa0\x80"]
    ),
)


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(LINE_BYTES, max_size=12),
    end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    bom=st.booleans(),
)
def test_non_utf8_bytes_fail_naming_file_and_line(scratch, lines, end, bom):
    data = (b"\xef\xbb\xbf" if bom else b"") + end.join(lines)
    physical = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    bad = []
    for number, raw in enumerate(physical, 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
    root = scratch()
    path = root / "base" / "Annotations" / "label.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    if not bad:
        frame = read_annotation_file(path)
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        assert len(frame) == sum(bool(content(line)) for line in text.split("\n"))
        merged = merge_annotations([("round1", root)])
        d.reconcile(merged, *d.decode_labels(merged, check_images=False))
        return
    with pytest.raises(ValueError) as info:
        read_annotation_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line {bad[0]} is not valid UTF-8"), message
    # The workflow's merge step fails with the same message: no row is silently dropped.
    with pytest.raises(ValueError, match=f"line {bad[0]} is not valid UTF-8"):
        merge_annotations([("round1", root)])


def test_invalid_utf8_line_number_counts_cr_line_ends(tmp_path):
    """Found by the property above: a CR-only file named line 1 for every bad byte."""
    path = tmp_path / "label.csv"
    path.write_bytes(b"a,b,c\rd,e,f\rImages/caf\xe9.jpg,x,y\r")
    with pytest.raises(ValueError, match="line 3 is not valid UTF-8"):
        read_annotation_file(path)


@pytest.mark.parametrize("end", LINE_ENDS)
def test_long_file_of_mixed_rows_reconciles(tmp_path, end):
    """A larger fixed file: 2,000 rows of every kind, each archive a different line end."""
    lines = []
    for i in range(2000):
        attribute = ATTRS[i % len(ATTRS)]
        size = len(ATTRIBUTES[attribute])
        code = "".join("y" if j == i % size else "n" for j in range(size))
        name = f"{i:032x}.jpg"
        kind = i % 5
        if kind == 0:
            code = code.replace("y", "n")
        elif kind == 1:
            code += "n"
        elif kind == 2:
            name = "../" + name
        lines.append(f"Images/{attribute}/{name},{attribute},{code}")
    label = tmp_path / "r" / "base" / "Annotations" / "label.csv"
    label.parent.mkdir(parents=True)
    label.write_bytes(("\ufeff" + end.join(lines) + end).encode("utf-8"))
    merged = merge_annotations([("r", tmp_path / "r")])
    decoded, rejected = d.decode_labels(merged, check_images=False)
    d.reconcile(merged, decoded, rejected)
    assert len(merged) == 2000
    assert len(decoded) == 800
    assert rejected["reason"].value_counts().to_dict() == {
        d.NO_Y: 400,
        d.WRONG_LENGTH: 400,
        d.UNSAFE_PATH: 400,
    }
    check_decoded_rows_are_valid(decoded)
