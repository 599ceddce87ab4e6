"""The chain walk hashes exactly the content the writer hashed: PostgreSQL builds all of it
but `data` (hashing.entry_content's fields as JSON text), the walk adds `data` itself."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from console.audit import chainwalk, hashing
from console.audit.models import AuditEntry

# Every ASCII character (the control characters are the ones JSON escapes), quotes and
# backslashes, and text beyond ASCII that Python's encoder leaves as it is.
EVERY_ASCII = "".join(chr(c) for c in range(1, 128))
AWKWARD = [
    EVERY_ASCII,
    'say "hi" \\ back\\slash',
    "naïve ☃ \u2028 \u2029 \U0001f600 \ufeff",
    "",
    "=SUM(A1)",
]
DATA: list[Any] = [
    {"b": 1, "a": [3, {"d": EVERY_ASCII, "c": None}], "é": 2.5, "Z": True},
    [1, "two", 1.0, 1e20, -0.5, False, None],
    "a string",
    7,
    None,
    {},
]


def _entries() -> list[AuditEntry]:
    rows = []
    for i, (text, data) in enumerate(zip(AWKWARD * 2, DATA * 2, strict=False)):
        rows.append(
            AuditEntry(
                seq=i + 1,
                occurred_at=datetime(2026, 1, 1, 12, 0, i, 1000 * i, tzinfo=UTC),
                actor_id=None if i % 2 else -i,
                actor_name=text or "someone",
                actor_roles=text,
                ip=None if i % 3 == 0 else "2001:db8::1" if i % 3 == 1 else "10.0.0.7",
                user_agent=text,
                via=text[:100],
                action=text[:80] or "test.action",
                resource_type=text[:80],
                resource_id=text,
                change_request_id=None if i % 2 else i * 10,
                workspace="" if i % 2 else text[:40] or "production",
                outcome=text[:20],
                # A JSONField's None is SQL NULL, which the column refuses.
                data=data if data is not None else [None],
                personal_digest="" if i % 2 else f"{i:064x}",
                prev_hash=f"{i:064x}",
                hash=f"{i + 1:064x}",
            )
        )
    return AuditEntry.objects.bulk_create(rows)


def test_the_content_postgresql_builds_is_the_content_the_writer_hashed(db: None) -> None:
    _entries()
    written = {}
    for entry in AuditEntry.objects.order_by("seq"):
        fields = {
            name: getattr(entry, name)
            for name in (
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
                "personal_digest",
                "workspace",
            )
        }
        written[entry.seq] = hashing.entry_content(**fields)
    with connection.cursor() as cursor:
        cursor.execute(chainwalk.SELECT + " ORDER BY e.seq")
        rows = cursor.fetchall()
    assert len(rows) == len(written) == 2 * len(AWKWARD)
    for row in rows:
        seq, head, data, tail = row[:4]
        walked = head + hashing.canonical_json_decoded(hashing.json_scan(data, 0)[0]) + tail
        assert walked == written[seq], seq


@pytest.mark.parametrize("value", DATA)
def test_decoded_values_encode_as_canonical_json_does(value: Any) -> None:
    text = json.dumps(value)
    decoded = hashing.json_scan(text, 0)[0]
    assert decoded == json.loads(text)
    assert hashing.canonical_json_decoded(decoded) == hashing.canonical_json(value)
