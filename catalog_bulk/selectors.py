"""Reads of bulk jobs: preview samples, progress with an ETA from the limiter, reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from catalog_bulk.models import (
    CLAIMABLE_STATES,
    ITEM_FIELD,
    OPEN_BATCH_STATES,
    BatchState,
    BulkBatch,
    BulkJob,
    BulkReadBack,
    BulkRow,
    JobState,
    ReadBackOutcome,
    ReadBackState,
    RowOp,
    RowOutcome,
)
from catalog_bulk.parsing import ERRORS_COLUMN
from catalog_bulk.preview import row_kind
from catalogs.models import Catalog
from console.braze import get_limiter
from console.braze.errors import (
    STORAGE_LIMIT_IDS,
    STORAGE_SURGE,
    BrazeErrorDetail,
    BrazeValidationError,
    describe_error,
)
from console.changes.diff import field_diff
from console.changes.models import ChangeRequest, ChangeState

SAMPLES_PER_KIND = 5


def bulk_job_get(*, catalog: Catalog, job_id: int) -> BulkJob:
    job = (
        BulkJob.objects.select_related("catalog", "change_request", "retry_request", "created_by")
        .filter(catalog=catalog, pk=job_id)
        .first()
    )
    if job is None:
        raise Http404("No such bulk job.")
    return job


def bulk_job_may_withdraw(*, job: BulkJob, user: Any) -> bool:
    """Cancelling the job now would withdraw its change request, and this user may do that
    (a change request is withdrawn only by its author, as on its own page)."""
    cr = job.change_request
    if cr is None or job.state != JobState.REVIEW:
        return False
    return user.pk in (cr.author_id, cr.last_editor_id)


def bulk_jobs_for_catalog(*, catalog: Catalog) -> QuerySet[BulkJob]:
    return BulkJob.objects.filter(catalog=catalog).select_related("created_by")


@dataclass(frozen=True)
class JobPercent:
    job: BulkJob
    percent: int  # of the items to send that Braze answered, as bulk_job_progress counts


_JOB_STATES_OVER = (JobState.DONE, JobState.CANCELLED, JobState.INVALID)


def _with_percent(jobs: list[BulkJob]) -> list[JobPercent]:
    """Each job's progress, from one query for all of them (the home page lists several)."""
    done = dict(
        BulkRow.objects.filter(
            job__in=jobs, batch__isnull=False, outcome__in=("accepted", "rejected", "failed")
        )
        .values_list("job_id")
        .annotate(n=Count("id"))
    )
    found = []
    for job in jobs:
        total = job.items_to_send
        if job.state == JobState.DONE:
            percent = 100
        else:
            percent = min(99, done.get(job.pk, 0) * 100 // total) if total else 0
        found.append(JobPercent(job=job, percent=percent))
    return found


def bulk_jobs_open_of(*, user: Any, limit: int = 5) -> list[JobPercent]:
    """The person's bulk jobs not yet over (newest first), with their progress."""
    jobs = list(
        BulkJob.objects.filter(created_by_id=user.pk)
        .exclude(state__in=_JOB_STATES_OVER)
        .select_related("catalog")
        .order_by("-id")[:limit]
    )
    return _with_percent(jobs)


def bulk_jobs_paused(*, limit: int = 5) -> list[JobPercent]:
    """Jobs stopped part way (by a person, or by Braze's storage limit) until someone resumes."""
    jobs = list(
        BulkJob.objects.filter(state=JobState.PAUSED)
        .select_related("catalog")
        .order_by("id")[:limit]
    )
    return _with_percent(jobs)


@dataclass(frozen=True)
class Sample:
    line: int
    item_id: str
    kind: str
    diff: list[dict[str, Any]]


def bulk_job_samples(*, job: BulkJob, per_kind: int = SAMPLES_PER_KIND) -> list[Sample]:
    """The first rows of each kind of change, with their field-level diff."""
    samples: list[Sample] = []
    filters = {
        "create": Q(op=RowOp.CREATE) | Q(op=RowOp.REPLACE, before__isnull=True),
        "update": Q(op=RowOp.UPDATE) | Q(op=RowOp.REPLACE, before__isnull=False),
        "delete": Q(op=RowOp.DELETE),
    }
    for kind, condition in filters.items():
        rows = BulkRow.objects.filter(condition, job=job).order_by("line")[:per_kind]
        for row in rows:
            after = None if row.op == RowOp.DELETE else row.payload
            if row.op == RowOp.UPDATE:
                after = {**(row.before or {}), **(row.payload or {})}
            samples.append(Sample(row.line, row.item_id, kind, field_diff(row.before, after)))
    return samples


def bulk_job_error_rows(*, job: BulkJob, limit: int | None = None) -> QuerySet[BulkRow]:
    rows = BulkRow.objects.filter(job=job, op=RowOp.ERROR).order_by("line")
    return rows[:limit] if limit else rows


def bulk_job_review_summary(*, job_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    """What a reviewer sees on the change request: the counts and the sample diffs."""
    summary = {k: v for k, v in payload.items() if k != "plan_hash"}
    job = BulkJob.objects.select_related("catalog").filter(pk=job_id).first()
    if job is None:
        return summary
    for sample in bulk_job_samples(job=job, per_kind=3):
        changes = "; ".join(f"{d['field']}: {d['before']!r} → {d['after']!r}" for d in sample.diff)
        summary[f"sample {sample.kind} line {sample.line} ({sample.item_id})"] = changes or "—"
    return summary


# --- send failed batches again ----------------------------------------------------------------


@dataclass(frozen=True)
class RetryDifference:
    line: int
    item_id: str
    field: str
    at_preview: str
    now: str
    sent: str


@dataclass(frozen=True)
class RetryRequest:
    """A request to send failed batches again, open while it waits for approval."""

    change_request: ChangeRequest
    batches: int
    items: int
    changed_items: int
    differences: list[RetryDifference]  # the first RETRY_CHANGES_SHOWN
    more: int  # differences not listed


def _retry_cell(change: dict[str, Any], key: str) -> str:
    value = change.get(key)
    if change.get("field") == ITEM_FIELD and value is None:
        return "deleted" if key == "sent" else "not in the catalog"
    if key == "sent" and change.get("op") == RowOp.DELETE:
        return "(item deleted)"
    return _shown(value)


def retry_differences(changes: Iterable[dict[str, Any]]) -> list[RetryDifference]:
    return [
        RetryDifference(
            line=int(c["line"]),
            item_id=str(c["item_id"]),
            field=str(c["field"]),
            at_preview=_retry_cell(c, "at_preview"),
            now=_retry_cell(c, "now"),
            sent=_retry_cell(c, "sent"),
        )
        for c in changes
    ]


def bulk_job_retry_request(*, job: BulkJob) -> RetryRequest | None:
    """The job's open request to send its failed batches again, with the differences."""
    cr = job.retry_request
    if cr is None or cr.state in (ChangeState.APPLIED, ChangeState.REJECTED, ChangeState.CANCELLED):
        return None
    payload = cr.payload
    changes = list(payload.get("changes") or [])
    total = _retry_change_count(payload)
    return RetryRequest(
        change_request=cr,
        batches=int(payload.get("batches", 0)),
        items=int(payload.get("items", 0)),
        changed_items=int(payload.get("changed_items", 0)),
        differences=retry_differences(changes),
        more=max(0, total - len(changes)),
    )


def _retry_change_count(payload: dict[str, Any]) -> int:
    return int(payload.get("changes_total", len(payload.get("changes") or [])))


def bulk_job_retry_summary(*, payload: dict[str, Any]) -> dict[str, Any]:
    """What a reviewer sees on a retry's change request: counts and each difference."""
    summary: dict[str, Any] = {
        "job": payload.get("job"),
        "catalog": payload.get("catalog"),
        "failed batches to send again": payload.get("batches"),
        "items in them": payload.get("items"),
        "items changed since the preview": payload.get("changed_items"),
    }
    for d in retry_differences(payload.get("changes") or []):
        summary[f"line {d.line:>7} ({d.item_id}) {d.field}"] = (
            f"at the preview: {d.at_preview}; in the mirror now: {d.now}; to be sent: {d.sent}"
        )
    more = _retry_change_count(payload) - len(payload.get("changes") or [])
    if more > 0:
        summary["further differences (not listed)"] = more
    return summary


# --- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    items_total: int
    items_done: int
    items_accepted: int
    items_rejected: int
    items_failed: int
    items_resent: int
    # Items of the retried requests (a full storage, a 5xx that did not land): sent again
    # after an answer that nothing was applied, so never a double write.
    items_retried: int
    batches_total: int
    batches_open: int
    batches_in_doubt: int
    requests: int
    retries: int
    resends: int
    rate_limited: int
    rate_items_per_minute: float
    eta_seconds: float | None
    limit_per_minute: int
    percent: int


def _requests_per_second(job: BulkJob | None = None) -> float:
    # Background work's share of the group, less what other integrations are seen using;
    # the whole limit (less theirs) for a job an approver allowed it.
    change_request = job.change_request if job is not None else None
    full = change_request is not None and change_request.full_rate_limit
    return get_limiter().requests_per_second(
        group="catalog_items_async", lane="background", share=1.0 if full else None
    )


def bulk_job_eta(*, job: BulkJob) -> float | None:
    """Seconds to go: the requests left, at the limiter's rate, shared round robin.

    Each running job gets one request in turn, so a job with ``a`` requests left finishes
    after ``a`` of its own plus up to ``a`` of every other running job's.
    """
    if job.state not in (JobState.RUNNING, JobState.WAITING):
        return None
    open_counts: dict[int, int] = dict(
        BulkBatch.objects.filter(
            job__state__in=(JobState.RUNNING, JobState.WAITING), state__in=OPEN_BATCH_STATES
        )
        .values_list("job_id")
        .annotate(n=Count("id"))
    )
    mine = open_counts.pop(job.pk, 0)
    if job.state == JobState.WAITING and job.waiting_for_id:
        mine += open_counts.get(job.waiting_for_id, 0)
    shared = sum(min(n, mine) for n in open_counts.values())
    return (mine + shared) / _requests_per_second(job)


def bulk_job_progress(*, job: BulkJob) -> Progress:
    batches = BulkBatch.objects.filter(job=job).aggregate(
        total=Count("id", filter=~Q(state=BatchState.SPLIT)),
        open=Count("id", filter=Q(state__in=OPEN_BATCH_STATES)),
        in_doubt=Count("id", filter=Q(state=BatchState.IN_DOUBT)),
        requests=Sum("attempts"),
        retries=Sum("retries"),
        resends=Sum("resends"),
        rate_limited=Sum("rate_limited"),
    )
    retried = BulkBatch.objects.filter(job=job, retries__gt=0).aggregate(n=Sum("item_count"))
    rows = BulkRow.objects.filter(job=job, batch__isnull=False).aggregate(
        accepted=Count("id", filter=Q(outcome="accepted")),
        rejected=Count("id", filter=Q(outcome="rejected")),
        failed=Count("id", filter=Q(outcome="failed")),
        resent=Count("id", filter=Q(resends__gt=0)),
    )
    window = timedelta(seconds=30)
    recent = (
        BulkBatch.objects.filter(
            job=job, state=BatchState.ACCEPTED, finished_at__gte=timezone.now() - window
        ).aggregate(n=Sum("item_count"))["n"]
        or 0
    )
    total = job.items_to_send
    done = rows["accepted"] + rows["rejected"] + rows["failed"]
    percent = 100 if job.state == JobState.DONE else min(99, done * 100 // total) if total else 0
    return Progress(
        items_total=total,
        items_done=done,
        items_accepted=rows["accepted"],
        items_rejected=rows["rejected"],
        items_failed=rows["failed"],
        items_resent=rows["resent"],
        items_retried=retried["n"] or 0,
        batches_total=batches["total"] or 0,
        batches_open=batches["open"] or 0,
        batches_in_doubt=batches["in_doubt"] or 0,
        requests=batches["requests"] or 0,
        retries=batches["retries"] or 0,
        resends=batches["resends"] or 0,
        rate_limited=batches["rate_limited"] or 0,
        rate_items_per_minute=recent * 60 / window.total_seconds(),
        eta_seconds=bulk_job_eta(job=job),
        limit_per_minute=round(_requests_per_second(job) * 60 * 50),
        percent=percent,
    )


@dataclass(frozen=True)
class StoragePause:
    """A job paused because Braze's catalog storage is full: what waits, and why."""

    error_id: str  # Braze's id: company-size-limit-already-reached or company-size-limit-surge
    batches: int  # refused, nothing applied, sent again on resume
    items: int

    @property
    def message(self) -> str:
        """The words every screen shows for this refusal (a change request's too)."""
        detail = BrazeErrorDetail(self.error_id, "")
        return describe_error(BrazeValidationError("", status=400, errors=(detail,)))

    @property
    def surge(self) -> bool:
        return self.error_id == STORAGE_SURGE


def bulk_job_storage_pause(*, job: BulkJob) -> StoragePause | None:
    """Why a paused job stopped, when it stopped for storage (None otherwise)."""
    if job.state != JobState.PAUSED:
        return None
    refused = BulkBatch.objects.filter(
        job=job, state__in=CLAIMABLE_STATES, error_ids__in=STORAGE_LIMIT_IDS
    )
    totals = refused.aggregate(n=Count("id"), items=Sum("item_count"))
    if not totals["n"]:
        return None
    latest = refused.order_by("-sent_at").values_list("error_ids", flat=True).first()
    return StoragePause(error_id=latest or "", batches=totals["n"], items=totals["items"] or 0)


def bulk_job_problem_batches(*, job: BulkJob, limit: int = 20) -> QuerySet[BulkBatch]:
    """Batches a person may need to look at: rejected, failed, in doubt, waiting to retry."""
    states = (BatchState.REJECTED, BatchState.FAILED, BatchState.IN_DOUBT, BatchState.RETRY_WAIT)
    return BulkBatch.objects.filter(job=job, state__in=states).order_by("seq")[:limit]


# --- read-back --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    item_id: str
    field: str
    sent: str
    found: str


@dataclass(frozen=True)
class ReadBackSummary:
    state: str  # ReadBackState
    due_at: datetime | None
    planned: int  # items the sample holds (or will hold)
    of: int  # items Braze accepted
    read: int
    matched: int
    mismatched: int
    unread: int  # could not be read
    error: str
    differences: list[Difference]


def _shown(value: Any) -> str:

    if value is None:
        return "(not set)"
    if isinstance(value, dict | list | bool):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def bulk_job_read_back_summary(*, job: BulkJob) -> ReadBackSummary | None:
    """What reading back a sample of the job found; None when no read-back is planned."""

    if job.readback_state == ReadBackState.NONE:
        return None
    counts = BulkReadBack.objects.filter(job=job).aggregate(
        sampled=Count("id"),
        matched=Count("id", filter=Q(outcome=ReadBackOutcome.MATCH)),
        mismatched=Count("id", filter=Q(outcome=ReadBackOutcome.MISMATCH)),
        unread=Count("id", filter=Q(outcome=ReadBackOutcome.ERROR)),
    )
    accepted = BulkRow.objects.filter(job=job, outcome=RowOutcome.ACCEPTED).count()
    differences = [
        Difference(item_id, d["field"], _shown(d["sent"]), _shown(d["found"]))
        for item_id, found in BulkReadBack.objects.filter(
            job=job, outcome=ReadBackOutcome.MISMATCH
        ).values_list("item_id", "mismatches")
        for d in found
    ]
    matched, mismatched = counts["matched"], counts["mismatched"]
    return ReadBackSummary(
        state=job.readback_state,
        due_at=job.readback_due_at,
        planned=counts["sampled"] or min(settings.BULK_READBACK_SAMPLE, accepted),
        of=accepted,
        read=matched + mismatched,
        matched=matched,
        mismatched=mismatched,
        unread=counts["unread"],
        error=job.readback_error,
        differences=differences,
    )


# --- downloads --------------------------------------------------------------------------------

REPORT_HEADER = [
    "line",
    "id",
    "operation",
    "sent_as",
    "outcome",
    "requests",
    "re_sent",
    "batch",
    "error",
    "read_back",
    "read_back_detail",
]


def _read_back_cells(job: BulkJob) -> dict[int, tuple[str, str]]:
    """Row id -> (read-back outcome, its differences) for the sampled rows."""
    cells = {}
    for row_id, outcome, found, error in BulkReadBack.objects.filter(job=job).values_list(
        "row_id", "outcome", "mismatches", "error_message"
    ):
        detail = "; ".join(
            f"{d['field']}: sent {_shown(d['sent'])}, found {_shown(d['found'])}" for d in found
        )
        cells[row_id] = (outcome, detail or error)
    return cells


def bulk_job_report_rows(*, job: BulkJob) -> Iterator[list[Any]]:
    """One line per row of the file: what was asked, and what happened to it."""
    read_back = _read_back_cells(job)
    rows = (
        BulkRow.objects.filter(job=job)
        .order_by("line")
        .values_list(
            "line",
            "item_id",
            "op",
            "before",
            "outcome",
            "sends",
            "resends",
            "batch__seq",
            "batch__send_as",
            "errors",
            "outcome_error",
            "pk",
        )
    )
    for (
        line,
        item_id,
        op,
        before,
        outcome,
        sends,
        resends,
        seq,
        send_as,
        errors,
        error,
        pk,
    ) in rows.iterator(chunk_size=2000):
        text = error or "; ".join(errors or [])
        kind = row_kind(op, before)
        checked, detail = read_back.get(pk, ("", ""))
        yield [
            line,
            item_id,
            kind,
            send_as or "",
            outcome,
            sends,
            resends,
            seq or "",
            text,
            checked,
            detail,
        ]


def bulk_job_error_csv_rows(*, job: BulkJob) -> Iterator[list[Any]]:
    """The refused rows as they were given, plus the reasons, ready to fix and upload again."""

    rows = bulk_job_error_rows(job=job).values_list("line", "raw", "errors", "item_id")
    fields = set(job.catalog.field_types())
    extra = settings.BULK_UNKNOWN_COLUMNS_NAMED
    columns: dict[str, None] = {} if job.columns else {"id": None}

    def add(names: Iterable[str]) -> None:
        # The id, the catalog's fields, and the first few other columns: a file of a million
        # made-up keys would otherwise give a million columns on every line.
        nonlocal extra
        for name in names:
            if name in columns or name == ERRORS_COLUMN:
                continue
            if name == "id" or name in fields:
                columns[name] = None
            elif extra > 0:
                columns[name] = None
                extra -= 1

    if job.columns:
        add(job.columns)
    else:  # JSON Lines: the keys the error rows used
        for _line, raw, _errors, _item_id in rows.iterator(chunk_size=2000):
            add(raw or {})
    yield [*columns, ERRORS_COLUMN]
    for line, raw, errors, item_id in rows.iterator(chunk_size=2000):
        values = raw or {"id": item_id}
        reasons = " | ".join([f"line {line}: {e}" for e in errors or []])
        yield [_cell(values.get(c)) for c in columns] + [reasons]


def _cell(value: Any) -> Any:

    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return value
