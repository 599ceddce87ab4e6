"""The outbox of a running job: its batches, claimed, recorded, split and expired.

Delivery is at least once, never exactly once: Braze's bulk endpoints take no idempotency
key and answer 202 before applying. So:

* a batch is claimed (``SELECT … FOR UPDATE SKIP LOCKED``) and committed as *in flight*
  with a lease **before** its request leaves; a sender that dies leaves a row the sweeper
  turns *in doubt* when the lease runs out (``batches_expire``);
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
from catalog_bulk.states import PIPELINE_ACTOR, batches_move, job_move, rows_move
from catalogs import rules
from catalogs.models import CatalogItem
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
from console.workspaces import workspace_active

# Parameters: the workspace, the running state, the three CLAIMABLE_STATES (one each: the
# planner then sees the partial index's own IN list), and now.
_CLAIM_SQL = """
SELECT b.id FROM catalogs_bulkbatch b JOIN catalogs_bulkjob j ON j.id = b.job_id
WHERE j.workspace = %s AND j.state = %s AND b.state IN (%s, %s, %s)
  AND (b.next_attempt_at IS NULL OR b.next_attempt_at <= %s)
ORDER BY j.last_dispatch_at ASC NULLS FIRST, j.id, b.seq
LIMIT 1
FOR UPDATE OF b SKIP LOCKED
"""
# Batches whose answer settles them: the batch and its rows are finished.
_SETTLED = (BatchState.ACCEPTED, BatchState.REJECTED, BatchState.FAILED, BatchState.SPLIT)


def lease_seconds() -> float:
    # Long enough for the limiter's inline wait plus a full request with its timeouts.
    return float(
        settings.BULK_MAX_INLINE_WAIT
        + settings.BRAZE_CONNECT_TIMEOUT
        + settings.BRAZE_READ_TIMEOUT
        + 5.0
    )


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


def batch_claim(*, now: datetime | None = None) -> Claim | None:
    """Take the next due batch, round robin between the running jobs of the workspace being
    worked in (its sender holds its client), and mark it in flight."""
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL, [workspace_active().key, JobState.RUNNING, *CLAIMABLE_STATES, now]
            )
            row = cursor.fetchone()
        if row is None:
            return None
        batch = BulkBatch.objects.select_related("job__catalog", "job__change_request").get(
            pk=row[0]
        )
        send_as = batch.send_as
        if batch.op == RowOp.CREATE and batch.state == BatchState.IN_DOUBT:
            send_as = RowOp.REPLACE
        batches_move(
            BulkBatch.objects.filter(pk=batch.pk),
            BatchState.IN_FLIGHT,
            from_=(batch.state,),
            lease_until=now + timedelta(seconds=lease_seconds()),
            claim_no=F("claim_no") + 1,
            send_as=send_as,
            sent_at=now,
        )
        BulkJob.objects.filter(pk=batch.job_id).update(last_dispatch_at=now)
        items = list(
            BulkRow.objects.filter(batch_id=batch.pk)
            .order_by("line")
            .values_list("item_id", "payload")
        )
    return Claim(
        batch_id=batch.pk,
        job_id=batch.job_id,
        catalog_name=batch.job.catalog.name,
        claim_no=batch.claim_no + 1,
        prev_state=batch.state,
        send_as=send_as,
        items=items,
        full_rate_limit=bool(batch.job.change_request and batch.job.change_request.full_rate_limit),
    )


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
    catalog = batch.job.catalog
    ids = [item_id for item_id, _ in rows]
    if batch.op == RowOp.DELETE:
        catalog_items_mirror_store(catalog=catalog, items={}, deleted=ids)
        return
    merged: dict[str, dict[str, Any]] = {}
    if batch.op == RowOp.UPDATE:
        existing = dict(
            CatalogItem.objects.filter(catalog=catalog, item_id__in=ids).values_list(
                "item_id", "data"
            )
        )
        for item_id, payload in rows:
            if item_id in existing:  # Braze skips a PATCH of a missing item
                merged[item_id] = rules.merge_values(existing[item_id], payload or {})
        for data in merged.values():
            for key in [k for k, v in data.items() if v is None]:
                del data[key]
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
