"""The streamed exports write, byte for byte, what the ORM reads: each value as the ORM
gives it, `data` as sorted JSON, every cell through cell_inert (tests/console/test_spreadsheet.py
has the neutralisation itself)."""

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db.models import QuerySet

from console.audit.exports import COLUMNS, csv_stream, jsonl_stream
from console.audit.models import AuditEntry
from console.spreadsheet import cell_inert

AWKWARD_TEXT = [
    "plain",
    "",
    "=SUM(A1)",
    "+1",
    "-1",
    "@cmd",
    "\tx",
    "\rx",
    "'=x",
    "''+x",
    "'plain",
    "a,b",
    'say "hi"',
    "line\nbreak",
    "cr\rin",
    " leading space",
    "naïve ☃",
    "x\\y",
    "-",
    # Every other control character, and characters csv and PostgreSQL treat alike.
    "".join(chr(c) for c in range(1, 32)),
    "'\r",
    '"=x"',
    "a\u2028b \U0001f600",
]
AWKWARD_DATA: list[Any] = [
    {},
    [],
    {"b": 1, "a": [3, {"d": "x", "c": None}]},
    {"z": "naïve ☃", "é": "=1"},
    [1, "two", 3.5, True],
    "=scalar",
    "plain scalar",
    7,
    -7,
    2.5,
    True,
    [None],
    {"text": 'a "quoted", comma\nline'},
    {"10": 1, "9": 2, "aa": 3, "b": 4},
]


def _entries() -> None:
    """Rows with every awkward value in every text column (inserted as they are: the
    export reads what is stored; the chain is not what this tests)."""
    rows = []
    seq = 0
    for i, text in enumerate(AWKWARD_TEXT * 2):
        for j, data in enumerate(AWKWARD_DATA[i % 3 :: 3]):
            seq += 1
            rows.append(
                AuditEntry(
                    seq=seq,
                    # Whole seconds for some: isoformat() leaves out zero microseconds.
                    occurred_at=datetime(2026, 1, 1, 12, 0, i, j * 1001 if j else 0, tzinfo=UTC),
                    actor_id=None if j == 1 else -3 if j == 2 else seq,
                    actor_name=text or "someone",
                    actor_roles=text,
                    ip=None if j == 0 else "2001:db8::1" if j == 1 else "10.0.0.7",
                    user_agent=text,
                    via=text,
                    action=text or "test.action",
                    resource_type=text,
                    resource_id=text,
                    change_request_id=None if j % 2 else seq * 10,
                    outcome=text[:20],
                    data=data,
                    personal_digest="",
                    prev_hash=f"{seq - 1:064x}",
                    hash=f"{seq:064x}",
                )
            )
    AuditEntry.objects.bulk_create(rows)


def _cell(value: Any) -> Any:
    """One value as the export wrote it before it streamed from PostgreSQL as text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _reference_csv(queryset: QuerySet[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in queryset.values_list(*COLUMNS):
        writer.writerow([cell_inert(_cell(v)) for v in row])
    return out.getvalue()


def _reference_jsonl(queryset: QuerySet[AuditEntry]) -> str:
    lines = []
    for row in queryset.values_list(*COLUMNS):
        record = dict(zip(COLUMNS, (_cell(v) for v in row), strict=True))
        if isinstance(record["data"], str):
            record["data"] = json.loads(record["data"])
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


@pytest.mark.parametrize("order", ["-seq", "seq"])
def test_the_csv_export_is_what_the_orm_reads_neutralised(db: None, order: str) -> None:
    _entries()
    queryset = AuditEntry.objects.order_by(order)
    exported = "".join(csv_stream(queryset))
    assert exported == _reference_csv(queryset)
    rows = list(csv.reader(io.StringIO(exported)))
    assert len(rows) == AuditEntry.objects.count() + 1
    assert {"'=SUM(A1)", "'-1", "'''+x", "a,b", "line\nbreak"} <= {r[10] for r in rows}


def test_the_jsonl_export_is_what_the_orm_reads(db: None) -> None:
    _entries()
    queryset = AuditEntry.objects.exclude(data__in=["=scalar", "plain scalar"]).order_by("-seq")
    assert "".join(jsonl_stream(queryset)) == _reference_jsonl(queryset)


def test_the_csv_export_streams_in_chunks_and_keeps_the_filter(db: None) -> None:
    _entries()
    queryset = AuditEntry.objects.filter(seq__gt=5).order_by("-seq")
    chunks = list(csv_stream(queryset))
    assert "".join(chunks) == _reference_csv(queryset)
    assert len(list(csv_stream(AuditEntry.objects.none()))) == 1  # the header alone
