"""Streamed CSV and JSON Lines exports: rows leave as they are read (bounded memory)."""

import csv
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from console.audit.models import AuditEntry
from console.spreadsheet import cell_inert

COLUMNS = [
    "seq", "occurred_at", "actor_id", "actor_name", "actor_roles", "ip", "user_agent", "via",
    "action", "resource_type", "resource_id", "change_request_id", "outcome", "data",
    "prev_hash", "hash",
]  # fmt: skip
_CHUNK = 2000


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(queryset: QuerySet[AuditEntry]) -> Iterator[tuple[object, ...]]:
    for row in queryset.values_list(*COLUMNS).iterator(chunk_size=_CHUNK):
        yield tuple(
            json.dumps(v, sort_keys=True)
            if isinstance(v, dict | list)
            else v.isoformat()
            if hasattr(v, "isoformat")
            else v
            for v in row
        )


def csv_stream(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for row in _rows(queryset):
        yield writer.writerow([cell_inert(v) for v in row])


def jsonl_stream(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    for row in _rows(queryset):
        record = dict(zip(COLUMNS, row, strict=True))
        if isinstance(record["data"], str):
            record["data"] = json.loads(record["data"])
        yield json.dumps(record, ensure_ascii=False) + "\n"
