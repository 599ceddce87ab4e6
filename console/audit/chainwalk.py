"""The inner loop of `verify_audit`, free of Django so worker processes can run it.

Each worker verifies one seq range on its own connection; the caller stitches the
ranges together (the first prev_hash of a range must be the last hash of the one before).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from console.audit import hashing

SELECT = (
    "SELECT seq,"
    # Text in exactly the form datetime.isoformat(timespec="microseconds") gives for
    # UTC, which is what the writer hashed: no datetime objects per row.
    " to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
    " actor_id, actor_name, actor_roles, host(ip), user_agent, via, action, resource_type,"
    " resource_id, change_request_id, outcome, data::text, personal_digest, prev_hash, hash"
    " FROM audit_entry"
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


def walk(rows: Iterable[tuple[Any, ...]], wanted: set[int], max_problems: int = 20) -> RangeResult:
    result = RangeResult()
    expected = 0
    prev: str | None = None
    for row in rows:
        seq, stored_prev, stored_hash = row[0], row[15], row[16]
        if result.first_seq is None:
            result.first_seq, result.first_prev = seq, stored_prev
        elif seq != expected:
            if len(result.problems) < max_problems:
                result.problems.append(
                    (expected, f"entries {expected}..{seq - 1} are missing (gap before seq {seq})")
                )
        elif stored_prev != prev and len(result.problems) < max_problems:
            result.problems.append(
                (seq, f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}")
            )
        content = hashing.entry_content(
            seq=seq, occurred_at=row[1], actor_id=row[2], actor_name=row[3], actor_roles=row[4],
            ip=row[5], user_agent=row[6], via=row[7], action=row[8], resource_type=row[9],
            resource_id=row[10], change_request_id=row[11], outcome=row[12],
            data=json.loads(row[13]), personal_digest=row[14],
        )  # fmt: skip
        if hashing.chain_hash(stored_prev, content) != stored_hash and (
            len(result.problems) < max_problems
        ):
            result.problems.append((seq, f"seq {seq}: content does not match its stored hash"))
        if seq in wanted:
            result.found[seq] = stored_hash
        result.count += 1
        expected, prev = seq + 1, stored_hash
    result.last_seq, result.last_hash = (expected - 1 if result.count else None), prev
    return result


def walk_range(conninfo: str, low: int, high: int, wanted: set[int]) -> RangeResult:
    """Worker entry point: verify seq low..high on a connection of its own."""
    import psycopg

    with psycopg.connect(conninfo) as conn, conn.cursor(name="audit_walk") as cursor:
        cursor.itersize = BATCH
        cursor.execute(SELECT + " WHERE seq BETWEEN %s AND %s ORDER BY seq", [low, high])
        return walk(cursor, {s for s in wanted if low <= s <= high})
