"""Streaming readers for uploaded item files: CSV (Braze's catalog CSV) and JSON Lines.

Both read the file from disk one record at a time, so memory does not grow with the file.
Each yields ``RawRow``s carrying the line the record starts on, for error messages.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.spreadsheet import cell_restored

# A column the error CSV adds; ignored on upload so a fixed error file can be sent back as is.
ERRORS_COLUMN = "_console_errors"
# Braze refuses values over 5,000 characters; a field far beyond that is a broken file.
_FIELD_LIMIT = 1_000_000
csv.field_size_limit(_FIELD_LIMIT)


# Braze refuses objects nested more than 50 levels; a line nested far deeper is not checked
# value by value (every later step would recurse that deep too).
MAX_READ_DEPTH = 100
TOO_DEEP = "This line is nested too deeply to read (Braze allows 50 levels of nesting)."


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests more than ``limit`` levels (without recursing)."""
    stack = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)
    return False


class FileRefused(Exception):
    """The file as a whole cannot be read (not UTF-8, no id column, broken quoting)."""


@dataclass
class RawRow:
    line: int
    values: dict[str, Any] = field(default_factory=dict)
    # A problem with the record's shape (ragged CSV row, bad JSON): no values to check.
    error: str = ""


def detect_format(file_name: str, head: bytes) -> str:
    """``jsonl`` for .jsonl/.ndjson names or a first line that is a JSON object, else ``csv``."""
    name = file_name.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    return "jsonl" if text.startswith(b"{") else "csv"


def _text(path: Path) -> io.TextIOWrapper:
    # utf-8-sig drops a byte order mark; newline="" lets csv see quoted CR/LF as data.
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8-sig", errors="strict", newline="")


def read_csv_header(path: Path) -> list[str]:
    with _text(path) as handle:
        try:
            header = next(csv.reader(handle), None)
        except UnicodeDecodeError:
            raise FileRefused(
                "The file is not UTF-8 text. Save it as CSV UTF-8 and upload again."
            ) from None
        except csv.Error as exc:
            raise FileRefused(f"Line 1 cannot be read as CSV: {exc}.") from None
    if not header or not any(h.strip() for h in header):
        raise FileRefused("The file is empty: the first line must name the columns, id first.")
    return [cell_restored(h.strip()) for h in header]


def csv_header_errors(header: list[str]) -> list[str]:
    """Problems with the header that make every row unreadable."""
    errors = []
    if "id" not in header:
        errors.append(
            "The header has no id column: the first line must name the columns, id first."
        )
    duplicates = sorted(name for name, n in Counter(header).items() if n > 1 and name)
    if duplicates:
        errors.append(f"The header names these columns twice: {', '.join(duplicates)}.")
    if any(not h for h in header):
        errors.append("The header has a column without a name.")
    return errors


def read_csv_cells(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """Records after the header as ``(line, cells as written, shape error)``; blank lines are
    skipped. Cells keep the console's formula quote (``cell_restored`` is the checker's job,
    done once per cell). Raises FileRefused for an unreadable file."""
    with _text(path) as handle:
        reader = csv.reader(handle, strict=True)
        line = 1
        try:
            width = len(next(reader))
            while True:
                start = reader.line_num + 1
                try:
                    record = next(reader)
                except StopIteration:
                    return
                line = start
                if len(record) == width:
                    # A one-column file's blank line has the header's width.
                    if width == 1 and not record[0].strip():
                        continue
                    yield line, record, ""
                elif not record or (len(record) == 1 and not record[0].strip()):
                    continue  # blank line
                else:
                    yield (
                        line,
                        record,
                        f"This line has {len(record)} values but the header has {width} "
                        "columns (a missing or extra comma, or an unclosed quote).",
                    )
        except UnicodeDecodeError:
            raise FileRefused(
                f"The file is not UTF-8 text (near line {line + 1}). "
                "Save it as CSV UTF-8 and upload again."
            ) from None
        except csv.Error as exc:
            raise FileRefused(
                f"Line {reader.line_num} cannot be read as CSV ({exc}); nothing was imported."
            ) from None


def read_csv(path: Path) -> Iterator[RawRow]:
    """Rows after the header, as ``{column: text}``: one row at a time, the reference the
    parse's CSV path (``validation.CsvRowChecker`` over ``read_csv_cells``) must agree with.
    Raises FileRefused for an unreadable file."""
    header = read_csv_header(path)
    keep = [i for i, name in enumerate(header) if name != ERRORS_COLUMN]
    for line, record, error in read_csv_cells(path):
        if error:
            yield RawRow(line, {"id": cell_restored(record[0].strip())}, error=error)
            continue
        # The console's own exports quote formula-like cells; take that quote off.
        yield RawRow(line, {header[i]: cell_restored(record[i]) for i in keep})


def read_jsonl(path: Path) -> Iterator[RawRow]:
    """One JSON object per line. A line that is not one is a row error, not a file error."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise FileRefused(
                    f"The file is not UTF-8 text (line {number}). Save it as UTF-8 and upload "
                    "again."
                ) from None
            if not text:
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRow(number, error=f"This line is not valid JSON ({exc.msg}).")
                continue
            except RecursionError:
                yield RawRow(number, error=TOO_DEEP)
                continue
            except ValueError as exc:  # e.g. an integer of more than 4,300 digits
                yield RawRow(number, error=f"This line cannot be read ({exc}).")
                continue
            if not isinstance(value, dict):
                yield RawRow(number, error="Each line must be one JSON object with an id.")
                continue
            if _deeper_than(value, MAX_READ_DEPTH):
                item_id = value.get("id")
                yield RawRow(number, {"id": item_id if isinstance(item_id, str) else ""}, TOO_DEEP)
                continue
            value.pop(ERRORS_COLUMN, None)
            yield RawRow(number, value)
