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
from collections.abc import Iterator, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Func, QuerySet, TextField, Value
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
# Its C encoder, made once (encode() makes one per call); without a circularity check, so
# only for values JSON decoding just produced.
_c_sorted_json = (
    json.encoder.c_make_encoder(
        None, None, json.encoder.encode_basestring_ascii, None, ": ", ", ", True, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
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


_FORMULA_STARTS_SQL = ", ".join(f"chr({ord(c)})" for c in sorted(FORMULA_STARTS))
# What csv.writer quotes a cell for: the delimiter, the quote character, a line end.
_QUOTED_SQL = "'[,\"' || chr(13) || chr(10) || ']'"


class _CsvCell(Func):
    """A text column as csv.writer writes `cell_inert(value)` (NULL as nothing): a leading
    single quote when the value, past its own leading single quotes, starts like a formula;
    in double quotes (doubled inside) when it holds a comma, a double quote or a line end."""

    output_field = TextField()

    def as_sql(  # type: ignore[override]  # one expression used seven times, not a template
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        column, params = compiler.compile(self.source_expressions[0])
        value = f"coalesce({column}, '')"
        inert = (
            f"(CASE WHEN left(ltrim({value}, ''''), 1) IN ({_FORMULA_STARTS_SQL})"
            f" THEN '''' || {value} ELSE {value} END)"
        )
        sql = (
            f"(CASE WHEN {value} ~ ({_QUOTED_SQL})"
            f" THEN '\"' || replace({inert}, '\"', '\"\"') || '\"' ELSE {inert} END)"
        )
        return sql, tuple(params) * sql.count(value)


class _Cells(Func):
    """Cells joined by commas, as one text."""

    output_field = TextField()
    arg_joiner = " || ',' || "
    template = "(%(expressions)s)"


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
    """Each row as (the CSV cells before `data`, data's JSON text, the cells after it)."""
    cells: list[Any] = []
    for i, name in enumerate(COLUMNS):
        column = _column(i, name)
        if i in _NUMBERS or name == "occurred_at":
            # Numbers are written as numbers (cell_inert leaves them), and the time starts
            # with a digit and holds nothing to quote.
            cells.append(Coalesce(column, Value(""), output_field=TextField()))
        elif i != _DATA:
            cells.append(_CsvCell(column))
    head, tail = _Cells(*cells[:_DATA]), _Cells(*cells[_DATA:])
    yield from _stream(queryset, [head, _column(_DATA, "data"), tail])


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
        return _csv_cell(
            "".join(_c_sorted_json(value, 0)) if _c_sorted_json else _sorted_json(value)
        )
    if isinstance(value, str):
        return _csv_cell(str(cell_inert(value)))
    # What csv.writer writes for the other scalars: nothing for None, repr() of a float,
    # str() of the rest; none of them needs quotes.
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def csv_stream(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    out = io.StringIO()
    csv.writer(out).writerow(COLUMNS)
    lines = [out.getvalue()]
    data_cell = _data_cell
    for head, data, tail in _csv_text_rows(queryset):
        lines.append(f"{head},{data_cell(data)},{tail}\r\n")
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
