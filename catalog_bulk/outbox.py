"""The outbox of a running job: its batches, claimed, recorded, split and expired.

Delivery is at least once, never exactly once: Braze's bulk endpoints take no idempotency
key and answer 202 before applying. So:

* a batch is claimed (``SELECT … FOR UPDATE SKIP LOCKED``, several in one statement when
  the limit allows) and committed as *in flight* with a lease **before** its request leaves;
  a sender that dies leaves a row the sweeper turns *in doubt* when the lease runs out
  (``batches_expire``);
* an in-doubt batch is sent again, and counted as a re-send on the batch and on each of its
  rows. PATCH, PUT and DELETE land the same state when repeated; a **create** in doubt is
  re-sent as a PUT of the same full items (a second POST of an item that landed would be
  refused as ``item-already-exists``, a PUT leaves the state the POST made);
* a 400 is never retried: the batch is split in halves until the bad items stand alone, so
  one bad item never sinks 49 good ones;
* except a 400 for full catalog storage (``company-size-limit-already-reached``, or
  ``company-size-limit-surge``: the request needs more than is left). Storage is counted
  for the whole company, so every other batch, and every half of this one, would be refused
  alike: the job pauses after that one request, its batch waits unsent (nothing was
  applied) and goes again, counted as a retry, when a person resumes the job. A surge does
  not resume by itself: waiting frees no storage, and smaller requests would only fill the
  last bytes and stop the job a few items later. Freeing storage or buying more is a
  person's decision;
* 429s block the whole limit group (the client does that for every process) and the batch
  waits for the announced reset; timeouts and 5xx back off with full jitter, then the
  batch fails for a person to act on.

Sending the requests is senders.py's work; this module only reads and writes PostgreSQL.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from catalog_bulk.models import (
    CLAIMABLE_STATES,
    BatchState,
    BulkBatch,
    BulkJob,
    BulkRow,
    JobState,
    RowOp,
    RowOutcome,
)
from catalog_bulk.states import (
    PIPELINE_ACTOR,
    batch_move_sources,
    batches_move,
    job_move,
    row_move_sources,
    rows_move,
)
from catalogs import rules
from catalogs.models import Catalog, CatalogItem
from catalogs.services import catalog_items_mirror_store
from console.audit import events
from console.braze.errors import (
    BrazeConfigurationError,
    BrazeError,
    BrazeForbidden,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeUnauthorized,
    BrazeUnavailable,
    BrazeValidationError,
    describe_error,
)
from console.changes.models import ChangeRequest
from console.workspaces import workspace_active

# Batches whose answer settles them: the batch and its rows are finished.
_SETTLED = (BatchState.ACCEPTED, BatchState.REJECTED, BatchState.FAILED, BatchState.SPLIT)


def request_seconds() -> float:
    """The longest one request may take: the limiter's inline wait and its timeouts."""
    return float(
        settings.BULK_MAX_INLINE_WAIT + settings.BRAZE_CONNECT_TIMEOUT + settings.BRAZE_READ_TIMEOUT
    )


# A lease's time to record the answer once the request is over.
LEASE_SLACK_SECONDS = 5.0


def lease_seconds() -> float:
    # Long enough for the limiter's inline wait plus a full request with its timeouts.
    return request_seconds() + LEASE_SLACK_SECONDS


def backoff_seconds(attempt: int) -> float:
    """Full jitter (Brooker, AWS Architecture Blog 2015)."""
    cap = min(settings.BULK_BACKOFF_CAP, settings.BULK_BACKOFF_BASE * 2 ** max(attempt - 1, 0))
    return random.uniform(0, cap)


@dataclass(frozen=True)
class Claim:
    batch_id: int
    job_id: int
    catalog_name: str
    claim_no: int
    prev_state: str
    send_as: str
    items: list[tuple[str, Any]]  # (item_id, payload)
    # The approver let this job use the whole rate limit, not background work's share.
    full_rate_limit: bool = False
    op: str = ""  # what the batch does (send_as may differ: a create in doubt goes as PUT)
    catalog_id: int = 0
    lease: float = 0.0  # seconds from the claim to the end of its lease


def batch_claim(*, now: datetime | None = None) -> Claim | None:
    """Take the next due batch, round robin between the running jobs of the workspace being
    worked in, and mark it in flight."""
    claims = batches_claim(limit=1, now=now)
    return claims[0] if claims else None


# One statement, one round trip: take up to `limit` due batches (round robin between running
# jobs, then in order), mark them in flight, note the job's dispatch time, and return each
# batch with its job's catalog and its rows. A data-modifying CTE's RETURNING may name the
# FROM list's columns, which is how the state each batch was claimed in comes back.
# A sender sends its claims one after another: the n-th batch's lease is one lease and
# n - 1 steps (BULK_CLAIM_LEASE_STEP) long, and the sender sends it only while a whole
# request still fits in it (senders.batches_send), so a sender killed mid-claim leaves
# batches the sweeper finds in hardly longer than one. The claimable states are given one
# by one so the planner sees the partial index's own IN list.
_CLAIM_MANY_SQL = """
WITH picked AS (
    SELECT b.id, b.state, b.op, b.job_id, b.seq, j.last_dispatch_at
    FROM catalogs_bulkbatch b JOIN catalogs_bulkjob j ON j.id = b.job_id
    WHERE j.workspace = %(workspace)s AND j.state = %(running)s
      AND b.state IN (%(s1)s, %(s2)s, %(s3)s)
      AND (b.next_attempt_at IS NULL OR b.next_attempt_at <= %(now)s)
    ORDER BY j.last_dispatch_at ASC NULLS FIRST, j.id, b.seq
    LIMIT %(limit)s
    FOR UPDATE OF b SKIP LOCKED
), numbered AS (
    SELECT p.*, row_number() OVER (
        ORDER BY p.last_dispatch_at ASC NULLS FIRST, p.job_id, p.seq
    ) AS n
    FROM picked p
), moved AS (
    UPDATE catalogs_bulkbatch b
    SET state = %(in_flight)s,
        claim_no = b.claim_no + 1,
        sent_at = %(now)s,
        lease_until = %(now)s + make_interval(secs => %(lease)s + %(step)s * (numbered.n - 1)),
        send_as = CASE WHEN numbered.op = %(create)s AND numbered.state = %(in_doubt)s
                       THEN %(replace)s ELSE b.send_as END
    FROM numbered
    WHERE b.id = numbered.id
    RETURNING b.id, b.job_id, b.claim_no, numbered.state AS prev_state, b.send_as, b.op,
              numbered.n
), jobs AS (
    -- In id order, as every sender locks them: a claim may span two jobs.
    SELECT id FROM catalogs_bulkjob WHERE id IN (SELECT job_id FROM moved)
    ORDER BY id FOR NO KEY UPDATE
), dispatched AS (
    UPDATE catalogs_bulkjob j SET last_dispatch_at = %(now)s FROM jobs WHERE j.id = jobs.id
)
SELECT m.id, m.job_id, m.claim_no, m.prev_state, m.send_as, m.op, c.id, c.name,
       COALESCE(cr.full_rate_limit, false), m.n, r.item_id, r.payload::text
FROM moved m
JOIN catalogs_bulkjob j ON j.id = m.job_id
JOIN {catalog} c ON c.id = j.catalog_id
LEFT JOIN {change_request} cr ON cr.id = j.change_request_id
LEFT JOIN catalogs_bulkrow r ON r.batch_id = m.id
ORDER BY m.n, r.line
"""


def batches_claim(*, limit: int, now: datetime | None = None) -> list[Claim]:
    """Take up to `limit` due batches of the running jobs of the workspace being worked in
    (its sender holds its client) in one round trip, mark them in flight, and return them in
    the order they are to be sent (the first is the one batch_claim would take)."""
    now = now or timezone.now()
    lease, step = lease_seconds(), settings.BULK_CLAIM_LEASE_STEP
    # The moves the state machine allows (pending, waiting to retry, in doubt -> in flight).
    claimable = batch_move_sources(BatchState.IN_FLIGHT, from_=CLAIMABLE_STATES)
    sql = _CLAIM_MANY_SQL.format(
        catalog=Catalog._meta.db_table, change_request=ChangeRequest._meta.db_table
    )
    params: dict[str, Any] = {
        "workspace": workspace_active().key,
        "running": JobState.RUNNING,
        "s1": claimable[0],
        "s2": claimable[1],
        "s3": claimable[2],
        "now": now,
        "limit": max(1, limit),
        "in_flight": BatchState.IN_FLIGHT,
        "lease": lease,
        "step": step,
        "create": RowOp.CREATE,
        "in_doubt": BatchState.IN_DOUBT,
        "replace": RowOp.REPLACE,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    claims: list[Claim] = []
    items: dict[int, list[tuple[str, Any]]] = {}
    for row in fetched:
        batch_id, job_id, claim_no, prev, send_as, op, catalog_id, name, full, place = row[:10]
        item, payload = row[10:]
        if batch_id not in items:
            items[batch_id] = []
            claims.append(
                Claim(
                    batch_id=batch_id,
                    job_id=job_id,
                    catalog_name=name,
                    claim_no=claim_no,
                    prev_state=prev,
                    send_as=send_as,
                    items=items[batch_id],
                    full_rate_limit=bool(full),
                    op=op,
                    catalog_id=catalog_id,
                    lease=lease + step * (place - 1),
                )
            )
        if item is not None:
            items[batch_id].append((item, json.loads(payload) if payload is not None else None))
    return claims


def batches_release(*, claims: list[Claim]) -> int:
    """Claims a sender will not send after all (the limit group is full): back to the state
    each was claimed in, due at once; nothing was sent, so nothing is counted."""
    released = 0
    for prev in dict.fromkeys(c.prev_state for c in claims):
        mine = Q()
        for claim in claims:
            if claim.prev_state == prev:
                mine |= Q(pk=claim.batch_id, claim_no=claim.claim_no)
        released += batches_move(
            BulkBatch.objects.filter(mine),
            BatchState(prev),
            from_=(BatchState.IN_FLIGHT,),
            lease_until=None,
        )
    return released


@dataclass(frozen=True)
class Outcome:
    state: str  # the batch's new state; "" when nothing was applied (it goes back)
    sent: bool  # the request reached Braze (or may have)
    error: BrazeError | None = None
    retry_at: datetime | None = None
    pause_job: bool = False


def _classify(exc: BrazeError | None, attempts_after: int) -> Outcome:
    now = timezone.now()
    if exc is None:
        return Outcome(BatchState.ACCEPTED, sent=True)
    if isinstance(exc, BrazeRateLimited):
        # Not sent (our limiter), or refused by Braze (429): nothing was applied either way.
        when = datetime.fromtimestamp(exc.retry_at, tz=now.tzinfo)
        return Outcome("", sent=False, error=exc, retry_at=max(when, now))
    if isinstance(exc, BrazeUnauthorized | BrazeForbidden | BrazeConfigurationError):
        return Outcome("", sent=False, error=exc, pause_job=True)
    if isinstance(exc, BrazeUnavailable):
        # Nothing reached Braze (connection refused, limiter down).
        delay = timedelta(seconds=backoff_seconds(1) + 0.1)
        return Outcome("", sent=False, error=exc, retry_at=now + delay)
    if isinstance(exc, BrazeNotFound):
        # The catalog itself is gone: splitting cannot help, and every batch would fail.
        return Outcome(BatchState.REJECTED, sent=True, error=exc, pause_job=True)
    if isinstance(exc, BrazeValidationError) and exc.storage_limit:
        # Nothing was applied; the batch waits for the job to be resumed.
        return Outcome(BatchState.RETRY_WAIT, sent=True, error=exc, pause_job=True)
    if isinstance(exc, BrazeValidationError):
        return Outcome(BatchState.REJECTED, sent=True, error=exc)
    maybe_applied = getattr(exc, "maybe_applied", True)
    if attempts_after >= settings.BULK_MAX_ATTEMPTS:
        return Outcome(BatchState.FAILED, sent=True, error=exc)
    state = BatchState.IN_DOUBT if maybe_applied else BatchState.RETRY_WAIT
    delay = timedelta(seconds=backoff_seconds(attempts_after))
    return Outcome(state, sent=True, error=exc, retry_at=now + delay)


def _next_state(outcome: Outcome, batch: BulkBatch, prev_state: str) -> str:
    """The batch's state after this answer, given the state it was claimed in."""
    if not outcome.state:
        # Not applied: back to where it was, due when the limit or Braze allows.
        return prev_state
    if outcome.state == BatchState.RETRY_WAIT and prev_state == BatchState.IN_DOUBT:
        # An earlier send may still have landed: it stays in doubt (creates go as PUT).
        return BatchState.IN_DOUBT
    if outcome.state == BatchState.REJECTED and batch.item_count > 1 and not outcome.pause_job:
        return BatchState.SPLIT
    return outcome.state


def _count_send(
    batch: BulkBatch, prev_state: str, *, counted: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Batch and row counters for one request that reached (or may have reached) Braze."""
    changes: dict[str, Any] = {} if counted else {"attempts": batch.attempts + 1}
    row_changes: dict[str, Any] = {} if counted else {"sends": F("sends") + 1}
    if prev_state == BatchState.IN_DOUBT:
        changes["resends"] = batch.resends + 1
        row_changes["resends"] = F("resends") + 1
    elif prev_state == BatchState.RETRY_WAIT:
        changes["retries"] = batch.retries + 1
    return changes, row_changes


def _mirror_accepted(batch: BulkBatch, rows: list[tuple[str, Any]]) -> None:
    """The mirror shows what Braze was asked to hold (it applies it a moment later)."""
    _mirror_store(batch.job.catalog, batch.op, rows)


def _mirror_store(catalog: Catalog, op: str, rows: list[tuple[str, Any]]) -> None:
    """Rows of accepted batches, in the order sent, into the mirror in one statement."""
    ids = [item_id for item_id, _ in rows]
    if op == RowOp.DELETE:
        catalog_items_mirror_store(catalog=catalog, items={}, deleted=ids)
        return
    merged: dict[str, dict[str, Any]] = {}
    if op == RowOp.UPDATE:
        existing = dict(
            CatalogItem.objects.filter(catalog=catalog, item_id__in=ids).values_list(
                "item_id", "data"
            )
        )
        for item_id, payload in rows:
            current = merged.get(item_id, existing.get(item_id))
            if current is None:  # Braze skips a PATCH of a missing item
                continue
            data = rules.merge_values(current, payload or {})
            for key in [k for k, v in data.items() if v is None]:
                del data[key]
            merged[item_id] = data
    else:
        merged = {item_id: dict(payload or {}) for item_id, payload in rows}
    catalog_items_mirror_store(catalog=catalog, items=merged)


def _split(batch: BulkBatch) -> None:
    """Two half batches in place of one refused batch (the job row serialises seq numbers)."""
    BulkJob.objects.select_for_update().filter(pk=batch.job_id).first()
    row_ids = list(
        BulkRow.objects.filter(batch_id=batch.pk).order_by("line").values_list("id", flat=True)
    )
    half = len(row_ids) // 2
    top = BulkBatch.objects.filter(job_id=batch.job_id).aggregate(m=Max("seq"))["m"] or 0
    for offset, part in enumerate((row_ids[:half], row_ids[half:]), start=1):
        child = BulkBatch.objects.create(
            job_id=batch.job_id,
            seq=top + offset,
            op=batch.op,
            send_as=batch.send_as,
            item_count=len(part),
            parent=batch,
        )
        BulkRow.objects.filter(id__in=part).update(batch=child)


def _pause_job(batch: BulkBatch, error: BrazeError | None) -> None:
    """Stop claiming the job's batches until a person resumes it, and say why."""
    reason = (", ".join(error.error_ids) or type(error).__name__) if error else ""
    # Another sender's refusal after this one finds the job paused already: one entry.
    job_move(
        batch.job,
        JobState.PAUSED,
        from_=(JobState.RUNNING,),
        actor=PIPELINE_ACTOR,
        action=events.CATALOG_BULK_PAUSED,
        data={"reason": reason, "batch": batch.seq, "http_status": error.status if error else None},
        error_message=describe_error(error) if error is not None else "",
    )


def batch_record(*, claim: Claim, error: BrazeError | None) -> str:
    """Record what Braze answered; returns the batch's new state ("" if no longer ours)."""
    with transaction.atomic():
        batch = (
            BulkBatch.objects.select_for_update()
            .select_related("job__catalog")
            .filter(pk=claim.batch_id)
            .first()
        )
        if batch is None or batch.claim_no != claim.claim_no:
            return ""  # the sweeper gave up on this claim and another sender took the batch
        if batch.state not in (BatchState.IN_FLIGHT, BatchState.IN_DOUBT):
            return ""
        # The sweeper already counted this request if it gave up waiting for the answer.
        counted = batch.state == BatchState.IN_DOUBT
        outcome = _classify(error, batch.attempts + (0 if counted else 1))
        changes: dict[str, Any] = {"lease_until": None, "next_attempt_at": outcome.retry_at}
        row_changes: dict[str, Any] = {}
        if outcome.sent:
            batch_counts, row_changes = _count_send(batch, claim.prev_state, counted=counted)
            changes.update(batch_counts)
        if error is not None:
            changes["error_message"] = describe_error(error)
            changes["error_ids"] = ", ".join(error.error_ids)[:500]
            changes["http_status"] = error.status
        else:
            changes.update(http_status=202, error_message="", error_ids="")
        if isinstance(error, BrazeRateLimited) and error.from_braze:
            changes["rate_limited"] = batch.rate_limited + 1
        state = _next_state(outcome, batch, claim.prev_state)
        if state in _SETTLED:
            changes["finished_at"] = timezone.now()
        this_batch = BulkBatch.objects.filter(pk=batch.pk)
        batches_move(this_batch, BatchState(state), from_=(batch.state,), **changes)
        rows = BulkRow.objects.filter(batch_id=batch.pk)
        if state == BatchState.ACCEPTED:
            rows_move(rows, RowOutcome.ACCEPTED, outcome_error="", **row_changes)
        elif state in (BatchState.REJECTED, BatchState.FAILED):
            to = RowOutcome.FAILED if state == BatchState.FAILED else RowOutcome.REJECTED
            rows_move(rows, to, outcome_error=changes["error_message"], **row_changes)
        elif row_changes:
            rows.update(**row_changes)
        if state == BatchState.ACCEPTED:
            _mirror_accepted(batch, claim.items)
        elif state == BatchState.SPLIT:
            _split(batch)
        if outcome.pause_job:
            _pause_job(batch, error)
    return str(state)


# Every accepted batch of a sender's round in one statement, with its rows: the same changes
# batch_record makes for one (attempts and sends counted unless the sweeper counted them
# already, when it gave up waiting; a re-send or a retry counted by the state it was claimed
# in), for the batches still held by these claims.
_ACCEPT_MANY_SQL = """
WITH answered AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(claims)s::integer[], %(prevs)s::text[])
        AS a(id, claim_no, prev_state)
), held AS (
    SELECT b.id, b.state AS was, answered.prev_state
    FROM catalogs_bulkbatch b JOIN answered ON answered.id = b.id
    WHERE b.claim_no = answered.claim_no AND b.state IN (%(in_flight)s, %(in_doubt)s)
    FOR UPDATE OF b
), moved AS (
    UPDATE catalogs_bulkbatch b
    SET state = %(accepted)s, lease_until = NULL, next_attempt_at = NULL, http_status = 202,
        error_message = '', error_ids = '', finished_at = %(now)s,
        attempts = b.attempts + CASE WHEN held.was = %(in_flight)s THEN 1 ELSE 0 END,
        resends = b.resends + CASE WHEN held.prev_state = %(in_doubt)s THEN 1 ELSE 0 END,
        retries = b.retries + CASE WHEN held.prev_state = %(retry_wait)s THEN 1 ELSE 0 END
    FROM held
    WHERE b.id = held.id
    RETURNING b.id, held.was, held.prev_state
), rows AS (
    UPDATE catalogs_bulkrow r
    SET outcome = %(row_accepted)s, outcome_error = '',
        sends = r.sends + CASE WHEN moved.was = %(in_flight)s THEN 1 ELSE 0 END,
        resends = r.resends + CASE WHEN moved.prev_state = %(in_doubt)s THEN 1 ELSE 0 END
    FROM moved
    WHERE r.batch_id = moved.id AND r.outcome = ANY(%(row_sources)s)
)
SELECT id FROM moved
"""


def batches_record_accepted(*, claims: list[Claim]) -> list[Claim]:
    """Record Braze's 202 for several claims at once, and show their items in the mirror;
    returns the claims recorded (a claim the sweeper gave to another sender is not)."""
    if not claims:
        return []
    # The moves the state machine allows, checked here as batches_move would.
    batch_move_sources(BatchState.ACCEPTED, from_=(BatchState.IN_FLIGHT, BatchState.IN_DOUBT))
    params: dict[str, Any] = {
        "ids": [c.batch_id for c in claims],
        "claims": [c.claim_no for c in claims],
        "prevs": [c.prev_state for c in claims],
        "in_flight": BatchState.IN_FLIGHT,
        "in_doubt": BatchState.IN_DOUBT,
        "retry_wait": BatchState.RETRY_WAIT,
        "accepted": BatchState.ACCEPTED,
        "row_accepted": RowOutcome.ACCEPTED,
        "row_sources": row_move_sources(RowOutcome.ACCEPTED),
        "now": timezone.now(),
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_ACCEPT_MANY_SQL, params)
            moved = {row[0] for row in cursor.fetchall()}
        recorded = [c for c in claims if c.batch_id in moved]
        _mirror_accepted_many(recorded)
    return recorded


def _mirror_accepted_many(claims: list[Claim]) -> None:
    """The mirror shows what Braze was asked to hold, in the order the batches were sent:
    one statement for each run of batches with the same catalog and operation."""
    catalogs: dict[int, Catalog] = {}
    run: list[Claim] = []
    for claim in [*claims, None]:
        if run and (
            claim is None or (claim.catalog_id, claim.op) != (run[0].catalog_id, run[0].op)
        ):
            first = run[0]
            if first.catalog_id not in catalogs:
                catalogs[first.catalog_id] = Catalog.objects.get(pk=first.catalog_id)
            _mirror_store(
                catalogs[first.catalog_id], first.op, [row for c in run for row in c.items]
            )
            run = []
        if claim is not None:
            run.append(claim)


def batches_expire(*, now: datetime) -> int:
    """In-flight batches whose lease ran out: their sender died mid-request -> in doubt."""
    message = (
        "The sender stopped while this batch was in flight; Braze may or may not "
        "have received it, so it is sent again (counted as a re-send)."
    )
    count = 0
    with transaction.atomic():
        expired = list(
            BulkBatch.objects.select_for_update(skip_locked=True).filter(
                job__workspace=workspace_active().key,
                state=BatchState.IN_FLIGHT,
                lease_until__lt=now,
            )[:500]
        )
        for batch in expired:
            attempts = batch.attempts + 1
            rows = BulkRow.objects.filter(batch_id=batch.pk)
            rows.update(sends=F("sends") + 1)
            this_batch = BulkBatch.objects.filter(pk=batch.pk)
            changes: dict[str, Any] = {
                "attempts": attempts,
                "lease_until": None,
                "error_message": message,
            }
            if attempts >= settings.BULK_MAX_ATTEMPTS:
                batches_move(
                    this_batch, BatchState.FAILED, from_=(batch.state,), finished_at=now, **changes
                )
                rows_move(rows, RowOutcome.FAILED, outcome_error=message)
            else:
                batches_move(
                    this_batch,
                    BatchState.IN_DOUBT,
                    from_=(batch.state,),
                    next_attempt_at=now,
                    **changes,
                )
            count += 1
    return count


def next_due_in(*, now: datetime | None = None) -> float | None:
    """Seconds until the next batch of a running job of the workspace being worked in is due;
    None when nothing is open."""
    now = now or timezone.now()
    open_batches = BulkBatch.objects.filter(
        job__workspace=workspace_active().key,
        job__state=JobState.RUNNING,
        state__in=CLAIMABLE_STATES,
    )
    earliest = open_batches.aggregate(m=Min("next_attempt_at"), n=Max("id"))
    if earliest["n"] is None:
        return None
    if earliest["m"] is None:
        return 0.0
    # Any batch without a next attempt time is due now.
    if open_batches.filter(next_attempt_at__isnull=True).exists():
        return 0.0
    due: datetime = earliest["m"]
    return max(0.0, (due - now).total_seconds())


def batch_totals(job: BulkJob) -> dict[str, int]:
    """Per-batch outcome totals, for the audit trail and the job page."""
    agg = BulkBatch.objects.filter(job=job).aggregate(
        batches=Count("id", filter=~Q(state=BatchState.SPLIT)),
        accepted=Count("id", filter=Q(state=BatchState.ACCEPTED)),
        rejected=Count("id", filter=Q(state=BatchState.REJECTED)),
        failed=Count("id", filter=Q(state=BatchState.FAILED)),
        split=Count("id", filter=Q(state=BatchState.SPLIT)),
        cancelled=Count("id", filter=Q(state=BatchState.CANCELLED)),
        requests=Sum("attempts"),
        resent_batches=Sum("resends"),
        retried_batches=Sum("retries"),
        rate_limited=Sum("rate_limited"),
    )
    rows = BulkRow.objects.filter(job=job).aggregate(
        items_resent=Count("id", filter=Q(resends__gt=0)),
        accepted=Count("id", filter=Q(outcome=RowOutcome.ACCEPTED)),
        rejected=Count("id", filter=Q(outcome=RowOutcome.REJECTED)),
        failed=Count("id", filter=Q(outcome=RowOutcome.FAILED)),
        cancelled=Count("id", filter=Q(outcome=RowOutcome.CANCELLED)),
    )
    totals = {k: int(v or 0) for k, v in agg.items()}
    totals.update(
        {f"items_{k}" if k != "items_resent" else k: int(v or 0) for k, v in rows.items()}
    )
    return totals
