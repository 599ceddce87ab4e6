"""Streamed CSV and JSON Lines exports: rows leave as they are read (bounded memory).

PostgreSQL sends every column as text, in chunks of rows (no server-side cursor: one
WITH HOLD would copy the whole result before the first row), and each value is written as
the ORM would have given it: numbers as numbers, the time in `datetime.isoformat()`'s form,
`data` as sorted JSON, every text cell through `console.spreadsheet.cell_inert`.

For CSV, PostgreSQL writes every cell but `data` as csv.writer writes it (made inert, quoted
when needed) and joins them: the console decodes and sorts `data` alone, so a full export
is paced by two processes working side by side, not by Python handling sixteen cells a row.
"""

import csv
import io
import json
import json.encoder
import re
from _json import make_encoder
from collections.abc import Iterator, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func, QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql.compiler import SQLCompiler

from console.audit import hashing
from console.audit.models import AuditEntry
from console.spreadsheet import FORMULA_STARTS, cell_inert

COLUMNS = [
    "seq",
    "occurred_at",
    "actor_id",
    "actor_name",
    "actor_roles",
    "ip",
    "user_agent",
    "via",
    "action",
    "resource_type",
    "resource_id",
    "change_request_id",
    "outcome",
    "data",
    "prev_hash",
    "hash",
]
_NUMBERS = (0, 2, 11)  # seq, actor_id, change_request_id
_DATA = COLUMNS.index("data")
# Rows per chunk, from PostgreSQL and to the response: large enough that the per-chunk
# costs vanish, small enough that a chunk stays well under a megabyte.
_CHUNK = 2000

# json.dumps(v, sort_keys=True) builds a new encoder on every call; this is the same one.
_sorted_json = json.JSONEncoder(sort_keys=True).encode
# Its C encoder (CPython's json accelerator), made once: encode() makes one per call. It has
# no circularity check, so it is only for values JSON decoding just produced.
_c_sorted_json = make_encoder(
    None,
    json.JSONEncoder().default,
    json.encoder.encode_basestring_ascii,
    None,
    ": ",
    ", ",
    True,
    False,
    True,
)


class _IsoUtc(Func):
    """`datetime.isoformat()` of the UTC time, in SQL (microseconds only when not zero)."""

    output_field = TextField()
    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        " || CASE WHEN to_char(%(expressions)s, 'US') = '000000' THEN ''"
        " ELSE to_char(%(expressions)s, '.US') END || '+00:00'"
    )


def _column(i: int, name: str) -> Any:
    """One export column as PostgreSQL's text."""
    if name == "occurred_at":
        return _IsoUtc(F(name))
    if name == "ip":
        # The inet's own output form, which is what Django reads (a cast adds "/32").
        return Func(F(name), function="abbrev", output_field=TextField())
    return Cast(F(name), TextField()) if i in _NUMBERS or i == _DATA else F(name)


# What csv.writer quotes a cell for (the delimiter, the quote character, a line end), and
# the first characters cell_inert may act on (a formula's, or its own leading quote).
# What csv.writer quotes a cell for (the delimiter, the quote character, a line end), and
# the first characters of a cell that cell_inert may act on (a formula's, its own quote).
_QUOTED_SQL = "'[,\"' || chr(13) || chr(10) || ']'"
_MAY_CHANGE_SQL = ", ".join(str(ord(c)) for c in sorted({*FORMULA_STARTS, "'"}))


class _PlainRow(Func):
    """Whether no text cell of the row needs anything from csv.writer or cell_inert: none
    holds a character to quote, none starts with one cell_inert may act on. Most rows are
    plain, and their cells are then the values as they are, joined by commas."""

    output_field = BooleanField()
    arg_joiner = ", "

    def as_sql(  # type: ignore[override]  # two uses of the cells, not a template
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        compiled = [compiler.compile(e) for e in self.source_expressions]
        cells = [sql for sql, _ in compiled]
        params = tuple(p for _, ps in compiled for p in ps)
        starts = " AND ".join(f"coalesce(ascii({c}), 0) NOT IN ({_MAY_CHANGE_SQL})" for c in cells)
        sql = f"(concat({', '.join(cells)}) !~ ({_QUOTED_SQL}) AND {starts})"
        return sql, params + params


class _Cells(Func):
    """Values joined by commas, NULL as nothing."""

    output_field = TextField()
    arg_joiner = " || ',' || "
    template = "(%(expressions)s)"

    def __init__(self, *expressions: Any) -> None:
        super().__init__(*(Coalesce(e, Value(""), output_field=TextField()) for e in expressions))


class _CellsUnlessPlain(Func):
    """The row's cells as an array when it is not plain (csv.writer then writes it), else
    NULL: (plain, cell, cell, ...)."""

    output_field = TextField()

    def as_sql(  # type: ignore[override]  # a condition, then the cells
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        plain, *cells = (compiler.compile(e) for e in self.source_expressions)
        sql = f"(CASE WHEN {plain[0]} THEN NULL ELSE ARRAY[{', '.join(c for c, _ in cells)}] END)"
        return sql, (*plain[1], *(p for _, ps in cells for p in ps))


def _stream(queryset: QuerySet[AuditEntry], columns: list[Any]) -> Iterator[tuple[Any, ...]]:
    query = queryset.values_list(*columns).query
    try:
        sql, params = query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # a filter that matches nothing (queryset.none())
        return
    connection = connections[queryset.db]
    connection.ensure_connection()
    assert connection.connection is not None  # ensure_connection opened it
    with connection.connection.cursor() as cursor:
        # Chunked rows mode (libpq 17+): rows arrive _CHUNK at a time as PostgreSQL
        # produces them, each chunk made into tuples in C.
        yield from cursor.stream(sql, params, size=_CHUNK)


def _text_rows(queryset: QuerySet[AuditEntry], *, null: str | None) -> Iterator[tuple[Any, ...]]:
    """The export's columns as PostgreSQL's text (NULL as `null`), in the queryset's order."""
    columns: list[Any] = []
    for i, name in enumerate(COLUMNS):
        column = _column(i, name)
        columns.append(
            column if null is None else Coalesce(column, Value(null), output_field=TextField())
        )
    yield from _stream(queryset, columns)


def _csv_text_rows(queryset: QuerySet[AuditEntry]) -> Iterator[tuple[Any, ...]]:
    """Each row as (the cells before `data` joined by commas, data's JSON text, the cells
    after it joined by commas, and None when the row is plain, else its cells but data)."""
    columns = {i: _column(i, name) for i, name in enumerate(COLUMNS) if i != _DATA}
    # Numbers are written as numbers (cell_inert leaves them); the time starts with a digit
    # and holds nothing to quote.
    text = [c for i, c in columns.items() if i not in _NUMBERS and COLUMNS[i] != "occurred_at"]
    cells = list(columns.values())
    yield from _stream(
        queryset,
        [
            _Cells(*cells[:_DATA]),
            _column(_DATA, "data"),
            _Cells(*cells[_DATA:]),
            _CellsUnlessPlain(_PlainRow(*text), *cells),
        ],
    )


def _data(text: str) -> Any:
    """`data` as the export writes it: sorted JSON for objects and arrays, else the value."""
    value = json.loads(text)
    return _sorted_json(value) if isinstance(value, dict | list) else value


def _typed(values: Sequence[Any]) -> list[Any]:
    """The row as the ORM gives it: numbers as int (NULL as None), data decoded."""
    typed = list(values)
    for i in _NUMBERS:
        typed[i] = int(typed[i]) if typed[i] not in (None, "") else None
    typed[_DATA] = _data(typed[_DATA])
    return typed


def _csv_cell(text: str) -> str:
    """A text cell as csv.writer writes it (quoted when it holds a comma, quote or line end)."""
    if _QUOTED.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


_QUOTED = re.compile('[,"\r\n]')


def _data_cell(text: str) -> str:
    """`data` (PostgreSQL's JSON text) as csv.writer writes `cell_inert(_data(text))`."""
    value = hashing.json_scan(text, 0)[0]
    if isinstance(value, dict | list):
        # Sorted JSON starts with a bracket, never like a formula.
        return _csv_cell("".join(_c_sorted_json(value, 0)))
    if isinstance(value, str):
        return _csv_cell(str(cell_inert(value)))
    # What csv.writer writes for the other scalars: nothing for None, repr() of a float,
    # str() of the rest; none of them needs quotes.
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def csv_stream(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)  # the header, and the rows that are not plain
    writer.writerow(COLUMNS)
    lines = [out.getvalue()]
    data_cell = _data_cell
    for head, data, tail, cells in _csv_text_rows(queryset):
        if cells is None:
            lines.append(f"{head},{data_cell(data)},{tail}\r\n")
        else:
            out.seek(0)
            out.truncate()
            writer.writerow([cell_inert(v) for v in _typed([*cells[:_DATA], data, *cells[_DATA:]])])
            lines.append(out.getvalue())
        if len(lines) >= _CHUNK:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def jsonl_stream(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    lines = []
    for row in _text_rows(queryset, null=None):
        record = dict(zip(COLUMNS, _typed(row), strict=True))
        if isinstance(record["data"], str):
            record["data"] = json.loads(record["data"])
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        if len(lines) == _CHUNK:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)
