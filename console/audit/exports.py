"""Streamed CSV and JSON Lines exports: rows leave as they are read (bounded memory).

PostgreSQL sends every column as text, in chunks of rows (no server-side cursor: one
WITH HOLD would copy the whole result before the first row), and each value is written as
the ORM would have given it: numbers as numbers, the time in `datetime.isoformat()`'s form,
`data` as sorted JSON, every text cell through `console.spreadsheet.cell_inert`.
"""

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import F, Func, QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce

from console.audit.models import AuditEntry
from console.spreadsheet import cell_inert, line_cells_plain

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


class _IsoUtc(Func):
    """`datetime.isoformat()` of the UTC time, in SQL (microseconds only when not zero)."""

    output_field = TextField()
    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        " || CASE WHEN to_char(%(expressions)s, 'US') = '000000' THEN ''"
        " ELSE to_char(%(expressions)s, '.US') END || '+00:00'"
    )


def _text_rows(queryset: QuerySet[AuditEntry], *, null: str | None) -> Iterator[tuple[Any, ...]]:
    """The export's columns as PostgreSQL's text (NULL as `null`), in the queryset's order."""
    columns: list[Any] = []
    for i, name in enumerate(COLUMNS):
        if name == "occurred_at":
            column: Any = _IsoUtc(F(name))
        elif name == "ip":
            # The inet's own output form, which is what Django reads (a cast adds "/32").
            column = Func(F(name), function="abbrev", output_field=TextField())
        else:
            column = Cast(F(name), TextField()) if i in _NUMBERS or i == _DATA else F(name)
        columns.append(
            column if null is None else Coalesce(column, Value(null), output_field=TextField())
        )
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


def csv_stream(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)  # the header, and rows with a cell to quote or make inert
    writer.writerow(COLUMNS)
    lines = [out.getvalue()]
    before, after = _DATA - 1, len(COLUMNS) - _DATA - 2  # commas around data
    for row in _text_rows(queryset, null=""):
        data = _data(row[_DATA])
        head, tail = ",".join(row[:_DATA]), ",".join(row[_DATA + 1 :])
        # No cell but data needs quotes, and none that cell_inert would change: the line
        # is what csv.writer writes for the inert cells (data, most often quoted JSON, is
        # made a cell on its own).
        if (
            isinstance(data, str)
            and head.count(",") == before
            and tail.count(",") == after
            and line_cells_plain(head)
            and line_cells_plain(tail)
        ):
            lines.append(f"{head},{_csv_cell(str(cell_inert(data)))},{tail}\r\n")
        else:
            out.seek(0)
            out.truncate()
            writer.writerow([cell_inert(v) for v in _typed(row)])
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
