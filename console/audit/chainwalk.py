"""The inner loop of `verify_audit`, free of Django so worker processes can run it.

Each worker verifies one seq range on its own connection; the caller stitches the
ranges together (the first prev_hash of a range must be the last hash of the one before).
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from console.audit import events, hashing

SELECT = (
    "SELECT e.seq,"
    # Text in exactly the form datetime.isoformat(timespec="microseconds") gives for
    # UTC, which is what the writer hashed: no datetime objects per row.
    " to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
    " e.actor_id, e.actor_name, e.actor_roles, host(e.ip), e.user_agent, e.via, e.action,"
    " e.resource_type, e.resource_id, e.change_request_id, e.outcome, e.data::text,"
    " e.personal_digest, e.prev_hash, e.hash,"
    # The erasable part beside the chain, checked against the digest the entry chains.
    " p.entry_id IS NOT NULL, p.salt, p.data::text,"
    # Last, as the content's optional last field (hashing.entry_content).
    " e.workspace"
    " FROM audit_entry e LEFT JOIN audit_personal p ON p.entry_id = e.seq"
)
BATCH = 20_000


@dataclass
class RangeResult:
    count: int = 0
    first_seq: int | None = None
    first_prev: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    problems: list[tuple[int, str]] = field(default_factory=list)
    found: dict[int, str] = field(default_factory=dict)
    # Entries whose personal part is gone, and the seqs erasure entries (that verify) name:
    # the caller checks, over all ranges, that every one of the first is among the second.
    missing_personal: list[int] = field(default_factory=list)
    erased: set[int] = field(default_factory=set)


def _personal_problem(seq: int, digest: str, row: tuple[Any, ...]) -> str | None:
    present, salt, data = row[17], row[18], row[19]
    if not present:
        return None
    if not digest:
        return f"seq {seq}: personal data is stored beside an entry that had none"
    if hashing.personal_digest(salt, json.loads(data)) != digest:
        return f"seq {seq}: its personal data does not match the digest it was written with"
    return None


def walk(
    rows: Iterable[tuple[Any, ...]],
    wanted: set[int],
    max_problems: int = 20,
    *,
    key: str,
    legacy_until: int = 0,
) -> RangeResult:
    """Check each row's link and hash: keyed with `key`, or by the unkeyed rule for
    seqs up to `legacy_until` (entries written before the chain was keyed)."""
    result = RangeResult()
    expected = 0
    prev: str | None = None
    keyed, legacy = hashing.chain_hasher(key), hashing.chain_hasher(None)

    def problem(seq: int, message: str) -> None:
        if len(result.problems) < max_problems:
            result.problems.append((seq, message))

    # The first 13 columns of SELECT are the content's first 13 fields, in its order; the
    # content is then data, the personal digest and the workspace when set (column 20;
    # hashing.entry_content, built here
    # without a call per field: this loop runs once per entry of the whole trail).
    content_of, loads = hashing.canonical_json, json.loads
    for row in rows:
        seq, stored_prev, stored_hash, digest = row[0], row[15], row[16], row[14]
        if result.first_seq is None:
            result.first_seq, result.first_prev = seq, stored_prev
        elif seq != expected:
            problem(expected, f"entries {expected}..{seq - 1} are missing (gap before seq {seq})")
        elif stored_prev != prev:
            problem(seq, f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}")
        data = loads(row[13])
        content = content_of([*row[:13], data, digest, *([row[20]] if row[20] else [])])
        chain = legacy if seq <= legacy_until else keyed
        if chain(stored_prev, content) != stored_hash:
            problem(seq, f"seq {seq}: content does not match its stored hash")
        elif row[8] == events.AUDIT_PERSONAL_ERASED and isinstance(data, dict):
            result.erased.update(s for s in data.get("seqs") or [] if isinstance(s, int))
        if row[17]:
            if (message := _personal_problem(seq, digest, row)) is not None:
                problem(seq, message)
        elif digest:
            result.missing_personal.append(seq)
        if seq in wanted:
            result.found[seq] = stored_hash
        result.count += 1
        expected, prev = seq + 1, stored_hash
    result.last_seq, result.last_hash = (expected - 1 if result.count else None), prev
    return result


def walk_range(
    conninfo: str, low: int, high: int, wanted: set[int], key: str, legacy_until: int
) -> RangeResult:
    """Worker entry point: verify seq low..high on a connection of its own."""
    import psycopg

    with psycopg.connect(conninfo) as conn, conn.cursor(name="audit_walk") as cursor:
        cursor.itersize = BATCH
        cursor.execute(SELECT + " WHERE e.seq BETWEEN %s AND %s ORDER BY e.seq", [low, high])
        return walk(
            batched_rows(cursor),
            {s for s in wanted if low <= s <= high},
            key=key,
            legacy_until=legacy_until,
        )


def batched_rows(cursor: Any) -> Iterator[tuple[Any, ...]]:
    """The cursor's rows, fetched BATCH at a time (iterating it asks for each row)."""
    while rows := cursor.fetchmany(BATCH):
        yield from rows
