"""Reading back a sample of a finished job: does Braze hold what it accepted?

Braze's bulk item endpoints answer 202 *before* applying, and say nothing per item. So
some time after a job finishes (``BULK_READBACK_DELAY_SECONDS``, longer than Braze takes
to apply; Braze advises up to 5 minutes between dependent calls) a random sample of the
accepted items (``BULK_READBACK_SAMPLE``) is read through the single-item GET endpoint,
in the background lane, and compared with what was sent. The mirror takes what was read.
A difference is shown on the job page and in its report as a warning: it may be an item
Braze did not apply, or a later edit (someone in the dashboard, another job).

As with the senders, PostgreSQL is the record and the broker only a hint: the job row
says when the read-back is due, and the sweeper enqueues it again if its task was lost.
Single-item reads share 50 requests a minute, so a task reads for a few seconds at most
(``BULK_READBACK_STEP_SECONDS``) or until the limiter says wait, then hands over.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from catalog_bulk.models import (
    BulkJob,
    BulkReadBack,
    BulkRow,
    JobState,
    ReadBackOutcome,
    ReadBackState,
    RowOp,
    RowOutcome,
)
from catalog_bulk.outbox import backoff_seconds
from catalog_bulk.preview import same_value
from catalog_bulk.states import readback_move, samples_move
from catalogs import rules
from catalogs.services import catalog_item_mirror_write
from console.audit import events
from console.braze import get_client
from console.braze.client import BrazeClient
from console.braze.errors import (
    BrazeConfigurationError,
    BrazeError,
    BrazeForbidden,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeUnauthorized,
    describe_error,
)
from console.celery import task_enqueue
from console.workspaces import workspace_active

logger = logging.getLogger(__name__)

ITEM = "(item)"  # the "field" of a difference about the item as a whole
# The sweeper enqueues a read-back again once it is this late (its task was lost).
_GRACE = timedelta(seconds=30)
# How many read-backs the broker may have lost before the sweeper stops caring this round.
_SWEEP_BATCH = 100


def readback_client() -> BrazeClient:
    return get_client(lane="background", max_wait=settings.BULK_MAX_INLINE_WAIT)


def _enqueue(job_id: int, workspace: str, countdown: float) -> None:
    def send() -> None:
        task_enqueue(
            "catalogs.bulk.tasks.bulk_readback_task",
            job_id,
            workspace,
            countdown=max(0.0, countdown),
        )

    transaction.on_commit(send)


def readback_schedule(*, job: BulkJob, accepted: int) -> None:
    """Plan the read-back of a job that just finished (inside the caller's transaction)."""
    BulkReadBack.objects.filter(job=job).delete()  # a job finished again after a retry
    if settings.BULK_READBACK_SAMPLE <= 0 or accepted == 0:
        readback_move(job, ReadBackState.NONE, from_=ReadBackState.values)
        return
    delay = settings.BULK_READBACK_DELAY_SECONDS
    readback_move(
        job,
        ReadBackState.SCHEDULED,
        from_=ReadBackState.values,
        readback_due_at=timezone.now() + timedelta(seconds=delay),
        readback_failures=0,
        readback_error="",
        readback_finished_at=None,
    )
    _enqueue(job.pk, job.workspace, delay)


def differences(
    *, op: str, sent: dict[str, Any] | None, found: dict[str, Any] | None, types: dict[str, str]
) -> list[dict[str, Any]]:
    """What Braze holds that differs from what the row sent (empty: it matches).

    An update sent only the changed columns, so only those are compared; a create or a
    replace sent the whole item, so a value Braze holds beyond them is a difference too.
    """
    if op == RowOp.DELETE:
        if found is None:
            return []
        return [{"field": ITEM, "sent": "deleted", "found": "still in the catalog"}]
    if found is None:
        return [{"field": ITEM, "sent": "the item", "found": "not in the catalog"}]
    values = sent or {}
    result = []
    for name, value in values.items():
        held = found.get(name)
        if value is None:
            if held is not None:
                result.append({"field": name, "sent": None, "found": held})
        elif rules.is_array_ops(value):
            # Braze applied the operators to whatever it held: the added values must be
            # there and the removed ones gone.
            have = held if isinstance(held, list) else []
            if any(v not in have for v in value.get(rules.ARRAY_ADD, [])) or any(
                v in have for v in value.get(rules.ARRAY_REMOVE, [])
            ):
                result.append({"field": name, "sent": value, "found": held})
        elif not same_value(types.get(name), held, value):
            result.append({"field": name, "sent": value, "found": held})
    if op in (RowOp.CREATE, RowOp.REPLACE):
        for name, held in found.items():
            if name != "id" and name not in values and held is not None:
                result.append({"field": name, "sent": None, "found": held})
    return result


def _pick_sample(job: BulkJob) -> int:
    rows = list(
        BulkRow.objects.filter(job=job, outcome=RowOutcome.ACCEPTED)
        .order_by("?")
        .values_list("pk", "item_id")[: settings.BULK_READBACK_SAMPLE]
    )
    BulkReadBack.objects.bulk_create(
        [BulkReadBack(job=job, row_id=pk, item_id=item_id) for pk, item_id in rows]
    )
    return len(rows)


def _lease() -> timedelta:
    return timedelta(
        seconds=settings.BULK_READBACK_STEP_SECONDS
        + settings.BULK_MAX_INLINE_WAIT
        + settings.BRAZE_CONNECT_TIMEOUT
        + settings.BRAZE_READ_TIMEOUT
        + 5.0
    )


def _claim(job_id: int) -> BulkJob | None:
    """Take the job's read-back for one step, when it is due and no worker holds it."""
    now = timezone.now()
    with transaction.atomic():
        job = (
            BulkJob.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("catalog")
            .filter(
                pk=job_id,
                # Read with the client of the workspace being worked in: a job of another
                # (a message from before tasks named theirs) waits for the sweeper's.
                workspace=workspace_active().key,
                state=JobState.DONE,
                readback_state__in=(ReadBackState.SCHEDULED, ReadBackState.READING),
                readback_due_at__lte=now,
            )
            .first()
        )
        if job is None:
            return None
        if not BulkReadBack.objects.filter(job=job).exists():
            _pick_sample(job)
        readback_move(job, ReadBackState.READING, readback_due_at=now + _lease())
    return job


def _reschedule(job_id: int, *, at: datetime, failed: BrazeError | None = None) -> str:
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job_id)
        if job.readback_state != ReadBackState.READING:
            return ""
        if failed is not None:
            job.readback_failures += 1
            job.readback_error = describe_error(failed)
            if job.readback_failures >= settings.BULK_MAX_ATTEMPTS:
                return _close(job, ReadBackState.FAILED)
        readback_move(
            job,
            ReadBackState.SCHEDULED,
            readback_due_at=at,
            readback_failures=job.readback_failures,
            readback_error=job.readback_error,
        )
        _enqueue(job.pk, job.workspace, (at - timezone.now()).total_seconds())
    return "later"


def _record(job: BulkJob, check: BulkReadBack, found: dict[str, Any] | None) -> None:
    row = BulkRow.objects.only("op", "payload").get(pk=check.row_id)
    held = None if found is None else {k: v for k, v in found.items() if k != "id"}
    diff = differences(op=row.op, sent=row.payload, found=held, types=job.catalog.field_types())
    with transaction.atomic():
        samples_move(
            BulkReadBack.objects.filter(pk=check.pk),
            ReadBackOutcome.MISMATCH if diff else ReadBackOutcome.MATCH,
            found=held,
            mismatches=diff,
            read_at=timezone.now(),
        )
        # The mirror shows what Braze holds, whatever the job asked for.
        catalog_item_mirror_write(
            catalog=job.catalog,
            item_id=check.item_id,
            action="delete" if held is None else "replace",
            values=held,
        )


def _close(job: BulkJob, state: ReadBackState) -> str:
    """Finish the read-back (inside a transaction holding the job row) and audit it."""
    counts = BulkReadBack.objects.filter(job=job).aggregate(
        sampled=Count("id"),
        matched=Count("id", filter=Q(outcome=ReadBackOutcome.MATCH)),
        mismatched=Count("id", filter=Q(outcome=ReadBackOutcome.MISMATCH)),
        unread=Count("id", filter=Q(outcome__in=(ReadBackOutcome.PENDING, ReadBackOutcome.ERROR))),
    )
    if state == ReadBackState.FAILED:
        samples_move(
            BulkReadBack.objects.filter(job=job),
            ReadBackOutcome.ERROR,
            error_message=job.readback_error,
        )
    mismatches = [
        {"item": item_id, **difference}
        for item_id, found in BulkReadBack.objects.filter(
            job=job, outcome=ReadBackOutcome.MISMATCH
        ).values_list("item_id", "mismatches")[:20]
        for difference in found
    ]
    of = BulkRow.objects.filter(job=job, outcome=RowOutcome.ACCEPTED).count()
    readback_move(
        job,
        state,
        action=events.CATALOG_BULK_READ_BACK,
        data={
            **counts,
            "of": of,
            "state": state,
            "error": job.readback_error,
            "mismatches": mismatches,
        },
        readback_due_at=None,
        readback_finished_at=timezone.now(),
        readback_failures=job.readback_failures,
        readback_error=job.readback_error,
    )
    return str(state)


def _finish(job_id: int) -> str:
    with transaction.atomic():
        job = (
            BulkJob.objects.select_for_update(of=("self",)).select_related("catalog").get(pk=job_id)
        )
        if job.readback_state != ReadBackState.READING:
            return ""
        return _close(job, ReadBackState.DONE)


def bulk_job_read_back(*, job_id: int, client: BrazeClient | None = None) -> str:
    """One read-back step (run by its task): read due sample items, compare, record.

    Returns "done", "failed", "later" (handed over: time's up or the limiter said wait) or
    "" (not due, or another worker holds it).
    """
    job = _claim(job_id)
    if job is None:
        return ""
    client = client or readback_client()
    ends = time.monotonic() + settings.BULK_READBACK_STEP_SECONDS
    pending = BulkReadBack.objects.filter(job=job, outcome=ReadBackOutcome.PENDING).order_by("id")
    for check in pending:
        if time.monotonic() >= ends:
            return _reschedule(job.pk, at=timezone.now())
        try:
            found: dict[str, Any] | None = client.catalog_item_get(
                catalog_name=job.catalog.name, item_id=check.item_id
            )
        except BrazeNotFound:
            found = None
        except BrazeRateLimited as exc:
            at = datetime.fromtimestamp(exc.retry_at, tz=UTC)
            return _reschedule(job.pk, at=max(at, timezone.now()))
        except (BrazeUnauthorized, BrazeForbidden, BrazeConfigurationError) as exc:
            # Reading again will not help (e.g. the key lacks catalogs.get_item): say so.
            with transaction.atomic():
                locked = BulkJob.objects.select_for_update().get(pk=job.pk)
                if locked.readback_state != ReadBackState.READING:
                    return ""
                locked.readback_error = describe_error(exc)
                return _close(locked, ReadBackState.FAILED)
        except BrazeError as exc:
            delay = timedelta(seconds=backoff_seconds(job.readback_failures + 1))
            return _reschedule(job.pk, at=timezone.now() + delay, failed=exc)
        _record(job, check, found)
    return _finish(job.pk)


def readback_sweep(*, now: datetime | None = None) -> int:
    """Enqueue the read-backs of the workspace being worked in whose task was lost (a Redis
    flush, a killed worker)."""
    now = now or timezone.now()
    workspace = workspace_active().key
    late = list(
        BulkJob.objects.filter(
            workspace=workspace,
            state=JobState.DONE,
            readback_state__in=(ReadBackState.SCHEDULED, ReadBackState.READING),
            readback_due_at__lt=now - _GRACE,
        ).values_list("pk", flat=True)[:_SWEEP_BATCH]
    )
    for job_id in late:
        _enqueue(job_id, workspace, 0.0)
    return len(late)
