"""The inner loop of `verify_audit`, free of Django so worker processes can run it.

Each worker verifies one seq range on its own connection; the caller stitches the
ranges together (the first prev_hash of a range must be the last hash of the one before).
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from console.audit import events, hashing


def _json(column: str) -> str:
    """The column as `hashing.canonical_json` writes a str or None: PostgreSQL's JSON string
    escapes exactly the characters Python's encoder escapes (quote, backslash and the
    control characters, as \\uXXXX in lower case), and leaves all others as they are."""
    return f"coalesce(to_json({column})::text, 'null')"


def _quoted(column: str) -> str:
    """`_json` of a value holding nothing to escape (see _PLAIN), without to_json's cost."""
    return f"coalesce('\"' || {column} || '\"', 'null')"


# What JSON escapes in a string: a quote, a backslash, a control character.
_ESCAPED = "'[' || chr(1) || '-' || chr(31) || '\"\\\\]'"


def _fields(parts: list[str | tuple[str]]) -> str:
    """JSON array fields joined by commas, text columns (in tuples) as JSON strings: when
    none of those holds a character to escape (most rows), each is quoted as it is."""
    text = [p[0] for p in parts if isinstance(p, tuple)]
    plain = " || ',' || ".join(_quoted(p[0]) if isinstance(p, tuple) else p for p in parts)
    escaped = " || ',' || ".join(_json(p[0]) if isinstance(p, tuple) else p for p in parts)
    return f"(CASE WHEN concat({', '.join(text)}) ~ ({_ESCAPED}) THEN {escaped} ELSE {plain} END)"


# The entry's content (hashing.entry_content) but for `data`, built by PostgreSQL as text:
# everything before data (a JSON array's first 13 fields and a comma) and everything after
# it. The walk then encodes only data (whose canonical key order only Python gives) and
# receives a few columns instead of twenty.
_CONTENT_HEAD = _fields(
    [
        "'[' || e.seq::text",
        # Exactly what datetime.isoformat(timespec="microseconds") gives for UTC, which is
        # what the writer hashed.
        "'\"' || to_char(e.occurred_at AT TIME ZONE 'UTC',"
        ' \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\') || \'"\'',
        "coalesce(e.actor_id::text, 'null')",
        ("e.actor_name",),
        ("e.actor_roles",),
        ("host(e.ip)",),
        ("e.user_agent",),
        ("e.via",),
        ("e.action",),
        ("e.resource_type",),
        ("e.resource_id",),
        "coalesce(e.change_request_id::text, 'null')",
        ("e.outcome",),
        "''",
    ]
)
# The personal digest, then the workspace only when set (entries before workspaces hash
# without it), then the array's end.
_CONTENT_TAIL = (
    f"',' || {_json('e.personal_digest')}"
    f" || CASE WHEN coalesce(e.workspace, '') <> '' THEN ',' || {_json('e.workspace')}"
    " ELSE '' END || ']'"
)
# Built from the constants above, no input.
SELECT = (
    f"SELECT e.seq, {_CONTENT_HEAD}, e.data::text, {_CONTENT_TAIL},"  # noqa: S608
    " e.prev_hash, e.hash,"
    # What only some entries need checked beyond their hash: the personal digest, the
    # erasable part beside the chain (its salt and data) and whether the entry records an
    # erasure, in one JSON array, so most rows carry one NULL instead of four columns.
    " CASE WHEN e.personal_digest <> '' OR p.entry_id IS NOT NULL"
    f" OR e.action = '{events.AUDIT_PERSONAL_ERASED}'"
    " THEN json_build_array(e.personal_digest, e.action = "
    f"'{events.AUDIT_PERSONAL_ERASED}', p.entry_id IS NOT NULL, p.salt, p.data)::text END"
    " FROM audit_entry e LEFT JOIN audit_personal p ON p.entry_id = e.seq"
)
# Rows a fetch brings: small enough that a batch's rows stay in the CPU caches on both
# sides (20,000 cost about 10% more CPU an entry at 1M; 500 was no better than 2,000).
BATCH = 2_000


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


def _personal_problem(seq: int, digest: str, salt: str, data: Any) -> str | None:
    if not digest:
        return f"seq {seq}: personal data is stored beside an entry that had none"
    if hashing.personal_digest(salt, data) != digest:
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

    # Rows as SELECT gives them; this loop runs once per entry of the whole trail, so what
    # it uses is in locals.
    scan, encode, loads = hashing.json_scan, hashing.canonical_json_decoded, json.loads
    count = 0
    for seq, head, data_text, tail, stored_prev, stored_hash, extra in rows:
        if not count:
            result.first_seq, result.first_prev = seq, stored_prev
        elif seq != expected:
            problem(expected, f"entries {expected}..{seq - 1} are missing (gap before seq {seq})")
        elif stored_prev != prev:
            problem(seq, f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}")
        data = scan(data_text, 0)[0]
        chain = keyed if seq > legacy_until else legacy
        if chain(stored_prev, head + encode(data) + tail) != stored_hash:
            problem(seq, f"seq {seq}: content does not match its stored hash")
            hash_ok = False
        else:
            hash_ok = True
        if extra is not None:
            digest, is_erasure, has_personal, salt, personal = loads(extra)
            if hash_ok and is_erasure and isinstance(data, dict):
                result.erased.update(s for s in data.get("seqs") or [] if isinstance(s, int))
            if has_personal:
                if (message := _personal_problem(seq, digest, salt, personal)) is not None:
                    problem(seq, message)
            elif digest:
                result.missing_personal.append(seq)
        if seq in wanted:
            result.found[seq] = stored_hash
        expected, prev = seq + 1, stored_hash
        count += 1
    result.count = count
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
