"""Verification of the chain and its signed checkpoints (used by `manage.py verify_audit`)."""

import hmac
import json
import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.audit import chainwalk, events, hashing
from console.audit.checkpoints import checkpoint_as_dict
from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal

_MAX_PROBLEMS = 20
_MAX_WORKERS = 8
_PARALLEL_FROM = 200_000  # entries; below this one process is faster than spawning


@dataclass
class VerifyReport:
    entries: int = 0
    last_seq: int = 0
    head_hash: str = hashing.GENESIS_HASH
    checkpoints: int = 0
    first_bad_seq: int | None = None
    first_bad_reason: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The newest checkpoint whose signature and head both verified: what anchors the chain.
    anchor_seq: int | None = None
    anchor_created_at: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str, seq: int | None = None) -> None:
        if seq is not None and self.first_bad_seq is None:
            self.first_bad_seq, self.first_bad_reason = seq, message
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(message)


def _conninfo() -> str:
    db = connection.settings_dict
    parts = {
        "dbname": db["NAME"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "host": db["HOST"],
        "port": db["PORT"],
    }
    return " ".join(f"{k}='{v}'" for k, v in parts.items() if v)


def _ranges() -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(seq), max(seq) FROM audit_entry")
        low, high = cursor.fetchone()
    if low is None:
        return []
    workers = min(os.cpu_count() or 1, _MAX_WORKERS)
    if high - low < _PARALLEL_FROM or workers < 2 or connection.in_atomic_block:
        return [(low, high)]
    step = (high - low) // workers + 1
    return [(a, min(a + step - 1, high)) for a in range(low, high + 1, step)]


def chain_legacy_until() -> int:
    """The last seq hashed before the chain was keyed (0: the whole trail is keyed).

    Named by the first boundary entry; one forged later is not the first, and one forged
    on a trail begun keyed makes every earlier entry fail the unkeyed rule.
    """
    boundary = (
        AuditEntry.objects.filter(action=events.AUDIT_CHAIN_KEYED)
        .order_by("seq")
        .only("data")
        .first()
    )
    if boundary is None or not isinstance(boundary.data, dict):
        return 0
    value = boundary.data.get("legacy_until")
    return value if isinstance(value, int) else 0


def _walk_chain(report: VerifyReport) -> dict[int, str]:
    """Check every entry in seq order; returns {seq: stored hash} of checkpointed seqs only.

    Large trails are split into seq ranges verified by worker processes in parallel
    (spawned, each on its own connection); the seams between ranges are checked here.
    """
    wanted = set(AuditCheckpoint.objects.values_list("last_seq", flat=True))
    wanted |= {cp["last_seq"] for cp in _file_checkpoints()}
    key, legacy_until = settings.AUDIT_CHAIN_KEY, chain_legacy_until()
    ranges = _ranges()
    if len(ranges) <= 1:
        with connection.chunked_cursor() as cursor:
            cursor.execute(chainwalk.SELECT + " ORDER BY e.seq")
            results = [
                chainwalk.walk(
                    chainwalk.batched_rows(cursor), wanted, key=key, legacy_until=legacy_until
                )
            ]
    else:
        results = _walk_in_processes(
            [(_conninfo(), low, high, wanted, key, legacy_until) for low, high in ranges]
        )
    found: dict[int, str] = {}
    missing: list[int] = []
    erased: set[int] = set()
    expected_seq, prev = 1, hashing.GENESIS_HASH
    for result in results:
        if result.first_seq is None:
            continue
        if result.first_seq != expected_seq:
            report.problem(
                f"entries {expected_seq}..{result.first_seq - 1} are missing "
                f"(gap before seq {result.first_seq})",
                expected_seq,
            )
        elif result.first_prev != prev:
            report.problem(
                f"seq {result.first_seq}: prev_hash does not match the hash of seq "
                f"{result.first_seq - 1}",
                result.first_seq,
            )
        for seq, message in result.problems:
            report.problem(message, seq)
        found.update(result.found)
        missing.extend(result.missing_personal)
        erased |= result.erased
        report.entries += result.count
        expected_seq, prev = (result.last_seq or 0) + 1, result.last_hash or prev
    report.last_seq, report.head_hash = expected_seq - 1, prev
    _check_erasures(report, missing, erased)
    return found


def _check_erasures(report: VerifyReport, missing: list[int], erased: set[int]) -> None:
    """Personal data may leave the trail only through an erasure entry, and never return."""
    for seq in missing:
        if seq not in erased:
            report.problem(
                f"seq {seq}: its personal data was deleted without an erasure entry", seq
            )
    if erased:
        back = AuditPersonal.objects.filter(pk__in=sorted(erased)).order_by("pk")
        for seq in back.values_list("pk", flat=True)[:_MAX_PROBLEMS]:
            report.problem(f"seq {seq}: personal data an erasure removed is stored again", seq)


def _walk_in_processes(
    ranges: list[tuple[str, int, int, set[int], str, int]],
) -> list[chainwalk.RangeResult]:
    if multiprocessing.current_process().daemon:
        # A Celery prefork worker (the "Verify the chain now" task) is a daemon process,
        # which the standard library forbids children; Celery's billiard allows them.
        import billiard

        pool = billiard.get_context("spawn").Pool(len(ranges))
        try:
            results: list[chainwalk.RangeResult] = pool.starmap(chainwalk.walk_range, ranges)
        finally:
            pool.close()
            pool.join()
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(ranges), mp_context=context) as executor:
        futures = [executor.submit(chainwalk.walk_range, *args) for args in ranges]
        return [f.result() for f in futures]


def _file_checkpoints() -> list[dict[str, Any]]:
    path = Path(settings.AUDIT_CHECKPOINT_DIR) / "checkpoints.jsonl"
    if not path.exists():
        return []
    result = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                result.append(json.loads(line))
            except ValueError:
                continue
    return result


UNSIGNED_WARNING = (
    "checkpoint signatures were not checked: this process does not hold AUDIT_CHECKPOINT_KEY "
    "(run manage.py verify_audit where the signer's key is); the checkpoint file is the anchor"
)


def _check_checkpoints(report: VerifyReport, heads: dict[int, str]) -> None:
    key = settings.AUDIT_CHECKPOINT_KEY or None
    db = [checkpoint_as_dict(cp) for cp in AuditCheckpoint.objects.order_by("id")]
    files = _file_checkpoints()
    db_sigs = {cp["signature"] for cp in db}
    # Without the key, a checkpoint is believed only as the signer wrote it to its file
    # (which the web and the workers may read but not write): a row in the database alone
    # could have been made by anyone with the run-time login.
    file_lines = {hashing.canonical_json(cp) for cp in files}
    if key is None:
        report.warnings.append(UNSIGNED_WARNING)
    for cp in files:
        if cp.get("signature") not in db_sigs:
            report.warnings.append(
                f"checkpoint at seq {cp.get('last_seq')} ({cp.get('created_at')}) is in the "
                "checkpoint file but not in the database"
            )
    # Keyed by full content: a DB row altered under its old signature stays distinct
    # from the genuine file copy, and fails its own signature check.
    unique = {hashing.canonical_json(cp): cp for cp in [*db, *files] if "signature" in cp}
    checkpoints = sorted(
        unique.values(), key=lambda cp: (str(cp.get("created_at")), cp.get("last_seq", 0))
    )
    report.checkpoints = len(checkpoints)
    newest: datetime | None = None
    anchored: datetime | None = None
    for cp in checkpoints:
        created_at = parse_datetime(str(cp.get("created_at")))
        if created_at is None:
            report.problem(f"checkpoint with unreadable time {cp['created_at']!r}")
            continue
        if key is None:
            if hashing.canonical_json(cp) not in file_lines:
                report.warnings.append(
                    f"checkpoint at seq {cp['last_seq']} ({cp['created_at']}) is in the "
                    "database but not in the checkpoint file; without the key it anchors nothing"
                )
                continue
        elif cp["key_id"] != hashing.key_id(key):
            report.warnings.append(
                f"checkpoint at seq {cp['last_seq']} was signed with another key "
                f"({cp['key_id']}); not checked"
            )
            continue
        else:
            message = hashing.checkpoint_message(
                created_at=created_at,
                last_seq=cp["last_seq"],
                head_hash=cp["head_hash"],
                entry_count=cp["entry_count"],
            )
            if not hmac.compare_digest(hashing.checkpoint_sign(key, message), cp["signature"]):
                report.problem(
                    f"checkpoint at seq {cp['last_seq']} ({cp['created_at']}): bad signature"
                )
                continue
        newest = created_at if newest is None or created_at > newest else newest
        last_seq = cp["last_seq"]
        if last_seq == 0:
            continue
        if last_seq > report.last_seq:
            report.problem(
                f"the chain ends at seq {report.last_seq} but a signed checkpoint of "
                f"{cp['created_at']} covers seq {last_seq}: entries were removed from the tail",
                report.last_seq + 1,
            )
            continue
        if heads.get(last_seq) != cp["head_hash"]:
            report.problem(
                f"seq {last_seq} does not match the signed checkpoint of {cp['created_at']}: "
                "the chain was rewritten up to there",
                last_seq,
            )
            continue
        if anchored is None or created_at > anchored:
            anchored = created_at
            report.anchor_seq, report.anchor_created_at = last_seq, str(cp["created_at"])
    interval = timedelta(minutes=settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES)
    if newest is None:
        report.warnings.append("no valid signed checkpoint: the tail is unanchored")
    elif timezone.now() - newest > 2 * interval:
        report.warnings.append(f"unanchored since {newest.isoformat()}: no recent checkpoint")


def audit_verify() -> VerifyReport:
    report = VerifyReport()
    heads = _walk_chain(report)
    _check_checkpoints(report, heads)
    return report


def audit_entry_verifies(entry: AuditEntry) -> bool:
    """Whether one entry's own hash (keyed, unless written before the chain was keyed) and
    its link to the entry before hold: what a forged row written without the key fails."""
    before = AuditEntry.objects.filter(seq=entry.seq - 1).values_list("hash", flat=True).first()
    if (before or hashing.GENESIS_HASH) != entry.prev_hash:
        return False
    with connection.cursor() as cursor:
        cursor.execute(chainwalk.SELECT + " WHERE e.seq = %s", [entry.seq])
        rows = cursor.fetchall()
    result = chainwalk.walk(
        rows, set(), key=settings.AUDIT_CHAIN_KEY, legacy_until=chain_legacy_until()
    )
    return result.count == 1 and not result.problems


def _n(text: str) -> str:
    return f"{int(text):,}"


def _when(text: str) -> str:
    moment = parse_datetime(text)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else text


# The verifier's messages above, in words for people who do not read hashes. Kept beside
# the messages they match so the two change together (tests/console/audit covers each).
_IN_WORDS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"^seq (\d+): content does not match its stored hash"),
        lambda m: (
            f"Entry #{_n(m[1])} does not verify: its hash does not match its content "
            "— it was changed after it was written."
        ),
    ),
    (
        re.compile(r"^entries (\d+)\.\.(\d+) are missing"),
        lambda m: (
            (
                f"Entry #{_n(m[1])} is missing"
                if m[1] == m[2]
                else f"Entries #{_n(m[1])} to #{_n(m[2])} are missing"
            )
            + ": they were deleted from the middle of the trail."
        ),
    ),
    (
        re.compile(r"^seq (\d+): prev_hash does not match the hash of seq (\d+)"),
        lambda m: (
            f"Entry #{_n(m[1])} does not verify: it does not link to entry "
            f"#{_n(m[2])} before it — entries were replaced or inserted."
        ),
    ),
    (
        re.compile(
            r"^the chain ends at seq (\d+) but a signed checkpoint of (\S+) covers seq (\d+)"
        ),
        lambda m: (
            f"Entries after #{_n(m[1])} are missing: a checkpoint signed at {_when(m[2])} "
            f"covers entries up to #{_n(m[3])} — the newest entries were deleted."
        ),
    ),
    (
        re.compile(r"^seq (\d+) does not match the signed checkpoint of (\S+):"),
        lambda m: (
            f"Entry #{_n(m[1])} does not match the checkpoint signed at {_when(m[2])} "
            "— the trail was rewritten up to there and its hashes recomputed."
        ),
    ),
    (
        re.compile(r"^seq (\d+): its personal data was deleted without an erasure entry"),
        lambda m: (
            f"Entry #{_n(m[1])} has lost its personal data, and no erasure records it "
            "— it was deleted in the database, not through the console."
        ),
    ),
    (
        re.compile(r"^seq (\d+): its personal data does not match the digest"),
        lambda m: (
            f"The personal data beside entry #{_n(m[1])} is not what was written with it "
            "— it was replaced afterwards."
        ),
    ),
    (
        re.compile(r"^seq (\d+): personal data is stored beside an entry that had none"),
        lambda m: (
            f"Personal data was added beside entry #{_n(m[1])}, which was written without any."
        ),
    ),
    (
        re.compile(r"^seq (\d+): personal data an erasure removed is stored again"),
        lambda m: f"The personal data of entry #{_n(m[1])} was erased, but it is stored again.",
    ),
    (
        re.compile(r"^checkpoint at seq (\d+) \((\S+)\): bad signature"),
        lambda m: (
            f"The checkpoint of {_when(m[2])} (entry #{_n(m[1])}) does not verify with the "
            "signing key — it was altered or forged."
        ),
    ),
]


def problem_in_words(reason: str) -> str:
    """One verifier problem as a sentence an auditor can act on."""
    for pattern, words in _IN_WORDS:
        if match := pattern.match(reason):
            return words(match)
    return reason[:1].upper() + reason[1:] + "."
