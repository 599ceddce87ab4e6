"""Sending approved bulk jobs to Braze's asynchronous item endpoints.

Delivery is at least once, never exactly once: Braze's bulk endpoints take no idempotency
key and answer 202 before applying. So:

* a batch is claimed (``SELECT … FOR UPDATE SKIP LOCKED``) and committed as *in flight*
  with a lease **before** its request leaves; a sender that dies leaves a row the sweeper
  turns *in doubt* when the lease runs out;
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

Senders are short Celery tasks that claim one batch each and hand over to a successor. A
Redis key per sender slot (renewed each step) tells the sweeper which slots lost their task
(a killed worker, a Redis flush), and it starts them again: the broker is only a hint,
PostgreSQL is the record.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min
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
from catalogs import rules
from catalogs.models import CatalogItem
from console.braze.client import BrazeClient, RetryPolicy
from console.braze.errors import (
    BrazeConfigurationError,
    BrazeError,
    BrazeForbidden,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeTimeout,
    BrazeUnauthorized,
    BrazeUnavailable,
    BrazeValidationError,
    describe_error,
)
from console.braze.limiter import Lane

logger = logging.getLogger(__name__)

GROUP = "catalog_items_async"
_SLOT_KEY = "catalogs:bulk:sender:{slot}"
# Senders with nothing due sleep at most this long before looking again.
_IDLE_MAX_SECONDS = 5.0

_CLAIM_SQL = """
SELECT b.id FROM catalogs_bulkbatch b JOIN catalogs_bulkjob j ON j.id = b.job_id
WHERE j.state = 'running' AND b.state IN ('pending', 'retry_wait', 'in_doubt')
  AND (b.next_attempt_at IS NULL OR b.next_attempt_at <= %s)
ORDER BY j.last_dispatch_at ASC NULLS FIRST, j.id, b.seq
LIMIT 1
FOR UPDATE OF b SKIP LOCKED
"""


def bulk_client() -> BrazeClient:
    """The Braze client for bulk sends: no retries inside the call, the pipeline owns them."""
    from console.braze import get_client

    lane: Lane = "background" if settings.BULK_LIMITER_LANE == "background" else "interactive"
    client = get_client(lane=lane, max_wait=settings.BULK_MAX_INLINE_WAIT)
    return client.with_options(retry=RetryPolicy(attempts=1, rate_limited_attempts=1))


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
    """Take the next due batch, round robin between running jobs, and mark it in flight."""
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, [now])
            row = cursor.fetchone()
        if row is None:
            return None
        batch = BulkBatch.objects.select_related("job__catalog", "job__change_request").get(
            pk=row[0]
        )
        send_as = batch.send_as
        if batch.op == RowOp.CREATE and batch.state == BatchState.IN_DOUBT:
            send_as = RowOp.REPLACE
        BulkBatch.objects.filter(pk=batch.pk).update(
            state=BatchState.IN_FLIGHT,
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


def _send(client: BrazeClient, claim: Claim) -> None:
    if claim.full_rate_limit:
        client = client.with_options(background_share=1.0)
    name = claim.catalog_name
    if claim.send_as == RowOp.DELETE:
        client.catalog_items_bulk_delete(catalog_name=name, item_ids=[i for i, _ in claim.items])
        return
    items = [{"id": item_id, **(payload or {})} for item_id, payload in claim.items]
    if claim.send_as == RowOp.CREATE:
        client.catalog_items_bulk_create(catalog_name=name, items=items)
    elif claim.send_as == RowOp.REPLACE:
        client.catalog_items_bulk_replace(catalog_name=name, items=items)
    else:
        client.catalog_items_bulk_edit(catalog_name=name, items=items)


@dataclass(frozen=True)
class Outcome:
    state: str  # the batch's new state
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
    from catalogs.services import _search_text

    catalog = batch.job.catalog
    ids = [item_id for item_id, _ in rows]
    if batch.op == RowOp.DELETE:
        CatalogItem.objects.filter(catalog=catalog, item_id__in=ids).delete()
        return
    now, types = timezone.now(), catalog.field_types()
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
    CatalogItem.objects.bulk_create(
        [
            CatalogItem(
                catalog=catalog,
                item_id=item_id,
                data=data,
                mirrored_at=now,
                search_text=_search_text(item_id, data, types),
            )
            for item_id, data in merged.items()
        ],
        update_conflicts=True,
        unique_fields=["catalog", "item_id"],
        update_fields=["data", "search_text", "mirrored_at"],
    )


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
            job_id=batch.job_id, seq=top + offset, op=batch.op, send_as=batch.send_as,
            item_count=len(part), parent=batch,
        )  # fmt: skip
        BulkRow.objects.filter(id__in=part).update(batch=child)


def batch_record(*, claim: Claim, error: BrazeError | None) -> str:
    """Record what Braze answered; returns the batch's new state ("" if no longer ours)."""
    with transaction.atomic():
        batch = (
            BulkBatch.objects.select_for_update().select_related("job__catalog")
            .filter(pk=claim.batch_id).first()
        )  # fmt: skip
        if batch is None or batch.claim_no != claim.claim_no:
            return ""  # the sweeper gave up on this claim and another sender took the batch
        if batch.state not in (BatchState.IN_FLIGHT, BatchState.IN_DOUBT):
            return ""
        # The sweeper already counted this request if it gave up waiting for the answer.
        counted = batch.state == BatchState.IN_DOUBT
        outcome = _classify(error, batch.attempts + (0 if counted else 1))
        now = timezone.now()
        changes: dict[str, Any] = {"lease_until": None}
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
        state = outcome.state
        if not state:
            # Not applied: back to where it was, due when the limit or Braze allows.
            state = claim.prev_state
        elif state == BatchState.RETRY_WAIT and claim.prev_state == BatchState.IN_DOUBT:
            # An earlier send may still have landed: it stays in doubt (creates go as PUT).
            state = BatchState.IN_DOUBT
        elif state == BatchState.REJECTED and batch.item_count > 1 and not outcome.pause_job:
            state = BatchState.SPLIT
        changes["state"] = state
        changes["next_attempt_at"] = outcome.retry_at
        if state in (BatchState.ACCEPTED, BatchState.REJECTED, BatchState.FAILED,
                     BatchState.SPLIT):  # fmt: skip
            changes["finished_at"] = now
        BulkBatch.objects.filter(pk=batch.pk).update(**changes)
        if state == BatchState.ACCEPTED:
            row_changes.update(outcome=RowOutcome.ACCEPTED, outcome_error="")
        elif state in (BatchState.REJECTED, BatchState.FAILED):
            failed = state == BatchState.FAILED
            row_changes.update(
                outcome=RowOutcome.FAILED if failed else RowOutcome.REJECTED,
                outcome_error=changes["error_message"],
            )
        if row_changes:
            BulkRow.objects.filter(batch_id=batch.pk).update(**row_changes)
        if state == BatchState.ACCEPTED:
            _mirror_accepted(batch, claim.items)
        elif state == BatchState.SPLIT:
            _split(batch)
        if outcome.pause_job:
            _pause_job(batch, error)
    return str(state)


def _pause_job(batch: BulkBatch, error: BrazeError | None) -> None:
    """Stop claiming the job's batches until a person resumes it, and say why."""
    from catalog_bulk.services import PIPELINE_ACTOR, bulk_job_audit

    message = describe_error(error) if error is not None else ""
    paused = BulkJob.objects.filter(pk=batch.job_id, state=JobState.RUNNING).update(
        state=JobState.PAUSED, error_message=message
    )
    if paused:
        reason = (", ".join(error.error_ids) or type(error).__name__) if error else ""
        status = error.status if error else None
        # Another sender's refusal after this one finds the job paused already: one entry.
        bulk_job_audit(
            actor=PIPELINE_ACTOR,
            job=batch.job,
            action="paused",
            data={"reason": reason, "batch": batch.seq, "http_status": status},
        )


@dataclass(frozen=True)
class Sent:
    state: str  # the batch's new state, as batch_record returns it
    # Seconds until the limit group has room again, when it had none for this batch.
    group_full_for: float | None = None


def batch_send(*, claim: Claim, client: BrazeClient | None = None) -> Sent:
    """Send one claimed batch (no transaction is open during the request) and record it."""
    error: BrazeError | None = None
    full_for = None
    try:
        _send(client or bulk_client(), claim)
    except BrazeError as exc:
        error = exc
        if isinstance(exc, BrazeRateLimited):
            full_for = max(0.0, exc.retry_at - time.time())
    except Exception as exc:  # an unknown failure mid-request: the batch may have landed
        logger.exception("bulk batch %s: unexpected error while sending", claim.batch_id)
        error = BrazeTimeout(f"Unexpected error while sending ({type(exc).__name__}).")
    return Sent(state=batch_record(claim=claim, error=error), group_full_for=full_for)


def next_due_in(*, now: datetime | None = None) -> float | None:
    """Seconds until the next batch of a running job is due; None when nothing is open."""
    now = now or timezone.now()
    earliest = BulkBatch.objects.filter(
        job__state=JobState.RUNNING, state__in=CLAIMABLE_STATES
    ).aggregate(m=Min("next_attempt_at"), n=Max("id"))
    if earliest["n"] is None:
        return None
    if earliest["m"] is None:
        return 0.0
    # Any batch without a next attempt time is due now.
    if BulkBatch.objects.filter(
        job__state=JobState.RUNNING, state__in=CLAIMABLE_STATES, next_attempt_at__isnull=True
    ).exists():
        return 0.0
    return max(0.0, (earliest["m"] - now).total_seconds())


# --- sender slots --------------------------------------------------------------------------


def _redis() -> Any:
    from console.braze import get_limiter

    return get_limiter().redis


def _slot_key(slot: int) -> str:
    return _SLOT_KEY.format(slot=slot)


def _ttl_ms() -> int:
    return int(settings.BULK_SENDER_TTL * 1000)


def _enqueue_sender(slot: int, token: str, countdown: float = 0.0) -> None:
    from catalog_bulk.tasks import bulk_send_task

    def send() -> None:
        bulk_send_task.apply_async(args=(slot, token), countdown=countdown)

    transaction.on_commit(send)


def senders_kick() -> int:
    """Start a sender in every slot that has none; returns how many were started."""
    started = 0
    try:
        redis = _redis()
        for slot in range(settings.BULK_SENDERS):
            token = uuid.uuid4().hex
            if redis.set(_slot_key(slot), token, nx=True, px=_ttl_ms()):
                _enqueue_sender(slot, token)
                started += 1
    except Exception:  # Redis down: the next sweep tries again
        logger.warning("bulk senders: cannot reach Redis to start senders", exc_info=True)
    return started


def sender_step(*, slot: int, token: str) -> str:
    """One sender task: send due batches for a few seconds, then hand the slot over.

    A task stays short (``BULK_SENDER_STEP_SECONDS``, a batch at most beyond it) so a
    killed worker costs little, yet does not pay a broker round trip for every batch.
    """
    from catalog_bulk.services import bulk_job_finish_if_done

    redis = _redis()
    key = _slot_key(slot)
    if (redis.get(key) or b"").decode() != token:
        return "superseded"
    ends = time.monotonic() + settings.BULK_SENDER_STEP_SECONDS
    delay, result = 0.0, "sent"
    while True:
        redis.pexpire(key, _ttl_ms())
        claim = batch_claim()
        if claim is None:
            due = next_due_in()
            if due is None:
                if (redis.get(key) or b"").decode() == token:
                    redis.delete(key)
                return "idle"
            delay, result = min(due, _IDLE_MAX_SECONDS), "waiting"
            break
        sent = batch_send(claim=claim)
        if sent.state != BatchState.IN_FLIGHT:
            bulk_job_finish_if_done(job_id=claim.job_id)
        if sent.group_full_for is not None:
            # Every other batch would be handed back the same way (and cost the database a
            # claim each): wait for the room instead, here, since a countdown task would
            # wait in some worker's memory and be lost with it if that worker is killed.
            pause = min(sent.group_full_for, _IDLE_MAX_SECONDS)
            redis.pexpire(key, _ttl_ms() + int(pause * 1000))
            time.sleep(pause)
        if time.monotonic() >= ends or (redis.get(key) or b"").decode() != token:
            break
    if (redis.get(key) or b"").decode() != token:
        return "superseded"
    successor = uuid.uuid4().hex
    redis.set(key, successor, px=_ttl_ms() + int(delay * 1000))
    _enqueue_sender(slot, successor, countdown=delay)
    return result


# --- the sweeper --------------------------------------------------------------------------


def _give_up_expired(now: datetime) -> int:
    """In-flight batches whose lease ran out: their sender died mid-request -> in doubt."""
    count = 0
    with transaction.atomic():
        expired = list(
            BulkBatch.objects.select_for_update(skip_locked=True).filter(
                state=BatchState.IN_FLIGHT, lease_until__lt=now
            )[:500]
        )
        for batch in expired:
            attempts = batch.attempts + 1
            BulkRow.objects.filter(batch_id=batch.pk).update(sends=F("sends") + 1)
            message = (
                "The sender stopped while this batch was in flight; Braze may or may not "
                "have received it, so it is sent again (counted as a re-send)."
            )
            changes: dict[str, Any] = {
                "attempts": attempts, "lease_until": None, "error_message": message,
            }  # fmt: skip
            if attempts >= settings.BULK_MAX_ATTEMPTS:
                changes.update(state=BatchState.FAILED, finished_at=now)
                BulkRow.objects.filter(batch_id=batch.pk).update(
                    outcome=RowOutcome.FAILED, outcome_error=message
                )
            else:
                changes.update(state=BatchState.IN_DOUBT, next_attempt_at=now)
            BulkBatch.objects.filter(pk=batch.pk).update(**changes)
            count += 1
    return count


@dataclass(frozen=True)
class SweepResult:
    in_doubt: int
    started: int
    finished: int
    senders_started: int
    closed_unapproved: int = 0
    readbacks_requeued: int = 0
    parses_requeued: int = 0


def bulk_sweep(*, now: datetime | None = None) -> SweepResult:
    """Re-queue what was lost: expired leases, waiting jobs, finished jobs, dead senders,
    late read-backs, unfinished parses; and close jobs whose change request was rejected or
    withdrawn."""
    from catalog_bulk.readback import readback_sweep
    from catalog_bulk.services import (
        bulk_job_finish_if_done,
        bulk_job_try_start,
        bulk_jobs_close_unapproved,
        bulk_jobs_parse_requeue,
    )

    now = now or timezone.now()
    in_doubt = _give_up_expired(now)
    closed = bulk_jobs_close_unapproved()
    started = sum(
        bulk_job_try_start(job_id=job_id)
        for job_id in BulkJob.objects.filter(state=JobState.WAITING).values_list("pk", flat=True)
    )
    finished = sum(
        bulk_job_finish_if_done(job_id=job_id)
        for job_id in BulkJob.objects.filter(
            state__in=(JobState.RUNNING, JobState.PAUSED)
        ).values_list("pk", flat=True)
    )
    senders = 0
    if BulkBatch.objects.filter(job__state=JobState.RUNNING, state__in=CLAIMABLE_STATES).exists():
        senders = senders_kick()
    readbacks = readback_sweep(now=now)
    parses = bulk_jobs_parse_requeue(now=now)
    return SweepResult(in_doubt, started, finished, senders, closed, readbacks, parses)
