"""CSV cells a spreadsheet would run as a formula, made inert text, and read back on upload.

Every CSV the console writes goes through ``cell_inert``; every CSV it reads goes through
``cell_restored``, so a file downloaded and uploaded again keeps its values exactly.

# Reference: OWASP, "CSV Injection" (a cell starting with = + - @ tab or carriage return is
# prefixed with a single quote).
"""

from __future__ import annotations

import re

FORMULA_STARTS = frozenset("=+-@\t\r")


def _needs_quote(text: str) -> bool:
    # A value that already starts with quotes before a formula character gets one more,
    # so that taking the first quote off on upload gives back exactly what was written.
    return text.lstrip("'")[:1] in FORMULA_STARTS


def cell_inert(value: object) -> object:
    """The value to write into a CSV cell: text a spreadsheet could evaluate gets a leading
    single quote; anything else (numbers included) is returned as is."""
    if isinstance(value, str) and _needs_quote(value):
        return "'" + value
    return value


_MAY_CHANGE = FORMULA_STARTS | {"'"}
_CELL_AFTER_COMMA = re.compile(",[" + re.escape("".join(sorted(_MAY_CHANGE))) + "]")


def line_cells_plain(line: str) -> bool:
    """Whether a CSV line (cells joined by commas, none quoted) needs nothing: no cell that
    `cell_inert` would change, none csv.writer would quote. Large exports check a line
    once instead of calling `cell_inert` for each cell."""
    return not (
        line[:1] in _MAY_CHANGE
        or '"' in line
        or "\r" in line
        or "\n" in line
        or _CELL_AFTER_COMMA.search(line)
    )


def cell_restored(text: str) -> str:
    """The value ``cell_inert`` was given, from the text it wrote (the inverse on upload)."""
    if text[:1] == "'" and _needs_quote(text[1:]):
        return text[1:]
    return text
