"""Writes of bulk item jobs: upload, parse and preview, proposal, start, pause, cancel, finish.

A job is a change request (action "bulk"). Approving it does not send anything inline: the
applier (catalogs/bulk/appliers.py) cuts the plan into batches of at most 50 items and
starts the senders (pipeline.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from catalogs.bulk import parsing, preview, validation
from catalogs.bulk.models import (
    ACTIVE_JOB_STATES,
    CLAIMABLE_STATES,
    OPEN_BATCH_STATES,
    SENT_OPS,
    BatchState,
    BulkBatch,
    BulkJob,
    BulkOperation,
    BulkRow,
    JobState,
    RowOp,
    RowOutcome,
)
from catalogs.bulk.readback import readback_schedule
from catalogs.models import Catalog, CatalogItem
from console.audit.hashing import canonical_json
from console.audit.services import Actor, SystemActor, audit_append
from console.braze.errors import STORAGE_LIMIT_IDS
from console.changes.models import ChangeRequest, ChangeState

logger = logging.getLogger(__name__)

BULK_RESOURCE = "catalog_bulk"
PIPELINE_ACTOR = SystemActor("catalog-bulk")
CHUNK_ROWS = 1000
_PARSE_LOCK_CLASS = 0x42554C4B  # "BULK"; the second key is the job id
# Batches go out creates first, deletes last (order between items of one job is free:
# an id appears once per file).
_SEND_ORDER = [RowOp.CREATE, RowOp.REPLACE, RowOp.UPDATE, RowOp.DELETE]


class BulkError(Exception):
    """A refused operation; the message is shown to the user as is."""


def _identifier(job: BulkJob) -> str:
    return f"{job.catalog.name}/bulk-{job.pk}"


def bulk_job_audit(
    *, actor: Actor, job: BulkJob, action: str, data: dict[str, Any] | None = None
) -> None:
    """Record a step of the job in the audit trail, in the caller's transaction."""
    audit_append(
        actor=actor,
        action=f"catalog_bulk.{action}",
        resource_type=BULK_RESOURCE,
        resource_id=_identifier(job),
        change_request_id=job.change_request_id,
        data={"job": job.pk, "catalog": job.catalog.name, "operation": job.operation,
              **(data or {})},
    )  # fmt: skip


# --- upload and parse -----------------------------------------------------------------------


def upload_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "bulk"


def bulk_job_upload(
    *, actor: AbstractBaseUser, catalog: Catalog, operation: str, upload: File[bytes]
) -> BulkJob:
    """Stream the upload to disk (never whole into memory) and queue its parsing."""
    from catalogs.bulk.tasks import bulk_parse_task

    size = upload.size or 0
    if size > settings.BULK_MAX_UPLOAD_BYTES:
        limit_mb = settings.BULK_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise BulkError(f"The file is larger than {limit_mb} MB; split it and upload the parts.")
    if size == 0:
        raise BulkError("The file is empty.")
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.upload"
    head = b""
    with path.open("wb") as out:
        for chunk in upload.chunks():
            if not head:
                head = chunk[:4096]
            out.write(chunk)
    file_name = (upload.name or "upload")[:255]
    with transaction.atomic(durable=True):
        job = BulkJob.objects.create(
            catalog=catalog,
            operation=BulkOperation(operation),
            file_name=file_name,
            file_path=str(path),
            file_size=size,
            file_format=parsing.detect_format(file_name, head),
            created_by_id=actor.pk,
        )
        bulk_job_audit(actor=actor, job=job, action="uploaded",
                       data={"file_name": file_name, "bytes": size})  # fmt: skip
        job_id = job.pk
        transaction.on_commit(lambda: bulk_parse_task.delay(job_id))
    return job


_COPY_SQL = (
    "COPY catalogs_bulkrow (job_id, line, item_id, op, payload, before, errors, raw, outcome, "
    "sends, resends, outcome_error) FROM STDIN"
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


class _Planner:
    """Checks, de-duplicates, diffs and stores rows in chunks (COPY), keeping counts."""

    def __init__(self, job: BulkJob) -> None:
        self.job = job
        self.catalog = job.catalog
        self.types = job.catalog.field_types()
        self.counts: Counter[str] = Counter()
        self.digest = hashlib.sha256()
        self.seen: set[int] = set()
        self.chunk: list[tuple[parsing.RawRow, validation.CheckedRow]] = []
        self.chunk_lines: dict[str, int] = {}
        self.rows_read = 0

    def _first_line(self, item_id: str) -> int | None:
        if item_id in self.chunk_lines:
            return self.chunk_lines[item_id]
        return (
            BulkRow.objects.filter(job=self.job, item_id=item_id)
            .order_by("line").values_list("line", flat=True).first()
        )  # fmt: skip

    def add(self, raw: parsing.RawRow, *, from_csv: bool) -> None:
        self.rows_read += 1
        if raw.error:
            checked = validation.CheckedRow(str(raw.values.get("id", ""))[:300], errors=[raw.error])
        else:
            checked = validation.check_row(
                values=raw.values, types=self.types, operation=self.job.operation,
                from_csv=from_csv,
            )  # fmt: skip
        if checked.item_id:
            # 64-bit digests keep memory small; a digest hit is confirmed exactly.
            key = int.from_bytes(hashlib.blake2b(checked.item_id.encode(), digest_size=8).digest())
            if key in self.seen:
                first = self._first_line(checked.item_id)
                if first is not None:
                    checked.errors.append(
                        f"The id “{checked.item_id}” is already on line {first} of this file "
                        "(ids-not-unique)."
                    )
            else:
                self.seen.add(key)
            self.chunk_lines.setdefault(checked.item_id, raw.line)
        self.chunk.append((raw, checked))
        if len(self.chunk) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.chunk:
            return
        valid_ids = [c.item_id for _, c in self.chunk if not c.errors]
        mirror = dict(
            CatalogItem.objects.filter(catalog=self.catalog, item_id__in=valid_ids).values_list(
                "item_id", "data"
            )
        )
        records = []
        for raw, checked in self.chunk:
            if checked.errors:
                planned = preview.Planned(RowOp.ERROR, "error")
                errors = checked.errors
            else:
                planned = preview.plan_row(
                    operation=self.job.operation, values=checked.values,
                    current=mirror.get(checked.item_id), types=self.types,
                )  # fmt: skip
                errors = [planned.error] if planned.error else []
            self.counts[planned.kind] += 1
            if planned.op in SENT_OPS:
                self.digest.update(
                    canonical_json(
                        [raw.line, planned.op, checked.item_id, planned.payload]
                    ).encode()
                )
            outcome = RowOutcome.PENDING if planned.op in SENT_OPS else RowOutcome.SKIPPED
            records.append((
                self.job.pk, raw.line, checked.item_id, planned.op, _json(planned.payload),
                _json(planned.before), _json(errors), _json(raw.values) if errors else None,
                outcome, 0, 0, "",
            ))  # fmt: skip
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.copy(_COPY_SQL) as copy:
                for record in records:
                    copy.write_row(record)
            BulkJob.objects.filter(pk=self.job.pk).update(rows_read=self.rows_read)
        self.chunk, self.chunk_lines = [], {}


def bulk_job_parse(*, job_id: int) -> BulkJob:
    """Read, check and diff the uploaded file against the mirror (run by a worker).

    Safe to run again after a crash: it starts over from the file.
    """
    job = BulkJob.objects.select_related("catalog").get(pk=job_id)
    if job.state != JobState.PARSING:
        return job
    # A redelivered task must not parse beside a running one (rows would be stored twice);
    # a session lock ends with its worker, so a killed parse can be started again.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_PARSE_LOCK_CLASS, job.pk])
        if not cursor.fetchone()[0]:
            return job
    try:
        job.refresh_from_db()
        if job.state != JobState.PARSING:
            return job
        return _parse(job)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_PARSE_LOCK_CLASS, job.pk])


def _parse(job: BulkJob) -> BulkJob:
    started = time.monotonic()
    BulkRow.objects.filter(job=job).delete()
    path = Path(job.file_path)
    planner = _Planner(job)
    columns: list[str] = []
    file_errors: list[str] = []
    try:
        if job.file_format == "csv":
            columns = parsing.read_csv_header(path)
            file_errors = parsing.csv_header_errors(columns)
            if not file_errors:
                for raw in parsing.read_csv(path):
                    planner.add(raw, from_csv=True)
        else:
            for raw in parsing.read_jsonl(path):
                planner.add(raw, from_csv=False)
        planner.flush()
    except parsing.FileRefused as exc:
        file_errors = [str(exc)]
    except FileNotFoundError:
        file_errors = ["The uploaded file is no longer on the server; upload it again."]
    counts = planner.counts
    if not file_errors and planner.rows_read == 0:
        file_errors = ["The file has no item rows."]
    if file_errors:
        BulkRow.objects.filter(job=job).delete()
    BulkJob.objects.filter(pk=job.pk).update(
        state=JobState.INVALID if file_errors else JobState.READY,
        columns=columns,
        file_errors=file_errors,
        rows_read=planner.rows_read,
        n_create=counts["create"],
        n_update=counts["update"],
        n_unchanged=counts["unchanged"],
        n_delete=counts["delete"],
        n_error=counts["error"],
        plan_hash=planner.digest.hexdigest(),
        parse_seconds=time.monotonic() - started,
        parsed_at=timezone.now(),
    )
    path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job


# --- proposal and start ---------------------------------------------------------------------


def bulk_job_summary(job: BulkJob) -> dict[str, Any]:
    return {
        "job": job.pk,
        "catalog": job.catalog.name,
        "operation": job.operation,
        "file": job.file_name,
        "rows": job.rows_read,
        "create": job.n_create,
        "update": job.n_update,
        "unchanged": job.n_unchanged,
        "delete": job.n_delete,
        "error": job.n_error,
        "plan_hash": job.plan_hash,
    }


def bulk_job_propose(*, actor: AbstractBaseUser, job: BulkJob) -> ChangeRequest:
    """Ask for a Reviewer's approval of exactly this plan (its hash is in the payload)."""
    from console.changes.services import change_request_propose

    if job.state != JobState.READY:
        raise BulkError(f"This job is {job.get_state_display().lower()}; it cannot be proposed.")
    if job.items_to_send == 0:
        raise BulkError("Nothing to send: every row is unchanged or has an error.")
    cr = change_request_propose(
        actor=actor,
        resource_type=BULK_RESOURCE,
        identifier=_identifier(job),
        action="bulk",
        payload=bulk_job_summary(job),
        base_snapshot=None,
        title=(
            f"Bulk {job.operation} of {job.items_to_send:,} items in {job.catalog.name} "
            f"(job #{job.pk})"
        ),
    )
    BulkJob.objects.filter(pk=job.pk, state=JobState.READY).update(
        state=JobState.REVIEW, change_request=cr
    )
    job.refresh_from_db()
    return job.change_request or cr


_BATCH_SQL = """
WITH numbered AS (
  SELECT id, op, (row_number() OVER (PARTITION BY op ORDER BY line) - 1) / 50 AS n
  FROM catalogs_bulkrow WHERE job_id = %(job)s AND op = ANY(%(ops)s)
), groups AS (
  SELECT op, n, count(*) AS c,
         row_number() OVER (ORDER BY array_position(%(ops)s, op::text), n) AS seq
  FROM numbered GROUP BY op, n
), inserted AS (
  INSERT INTO catalogs_bulkbatch (job_id, seq, op, send_as, state, item_count, claim_no,
      attempts, resends, retries, rate_limited, error_ids, error_message)
  SELECT %(job)s, seq, op, op, 'pending', c, 0, 0, 0, 0, 0, '', '' FROM groups
  RETURNING id, seq
)
UPDATE catalogs_bulkrow r SET batch_id = i.id
FROM numbered nb JOIN groups g ON g.op = nb.op AND g.n = nb.n JOIN inserted i ON i.seq = g.seq
WHERE r.id = nb.id
"""

# One pass over the rows of the jobs concerned, grouped by item: no join, so no plan in which
# the statistics matter. They often do not know a new job's rows yet (autovacuum lags a big
# upload and the run-time role may not ANALYZE); a join planned on them became a nested
# loop over both jobs' rows, which held a job's start for 5 minutes in the two-job
# benchmark (25,000 items each). This form takes about 80 ms on the same rows.
_OVERLAP_SQL = """
SELECT min(job_id) FILTER (WHERE job_id <> %(job)s) FROM catalogs_bulkrow
WHERE job_id = ANY(%(jobs)s) AND op = ANY(%(ops)s)
GROUP BY item_id
HAVING bool_or(job_id = %(job)s) AND bool_or(job_id <> %(job)s)
LIMIT 1
"""


def _overlapping_job(job: BulkJob) -> int | None:
    """A job on the same catalog, started and unfinished, that touches an item of this one.

    Braze does not promise the order in which asynchronous requests are applied, so two
    jobs on the same items must not run at once.
    """
    others = list(
        BulkJob.objects.filter(catalog_id=job.catalog_id, state__in=ACTIVE_JOB_STATES)
        .exclude(pk=job.pk).values_list("pk", flat=True)
    )  # fmt: skip
    if not others:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            _OVERLAP_SQL, {"jobs": [job.pk, *others], "job": job.pk, "ops": list(SENT_OPS)}
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def bulk_job_start(*, job_id: int, plan_hash: str, actor: Actor) -> dict[str, Any]:
    """Cut the approved plan into batches and start sending (the applier's apply step)."""
    from catalogs.bulk.pipeline import senders_kick

    with transaction.atomic(durable=True):
        job = (
            BulkJob.objects.select_for_update(of=("self",))
            .select_related("catalog", "change_request")
            .get(pk=job_id)
        )
        if job.plan_hash != plan_hash:
            raise BulkError("The job's plan is not the one that was approved; nothing was sent.")
        if job.state == JobState.CANCELLED:
            return {"job": job.pk, "state": job.state, "note": "The job was cancelled."}
        if BulkBatch.objects.filter(job=job).exists():
            return {"job": job.pk, "state": job.state, "note": "Already started."}
        if job.state not in (JobState.REVIEW, JobState.READY):
            raise BulkError(f"The job is {job.get_state_display().lower()}; it cannot start.")
        cr = job.change_request
        if cr is not None and cr.state not in (ChangeState.APPROVED, ChangeState.APPLYING):
            # A rejected or withdrawn request must never start its job, whoever calls.
            raise BulkError(
                f"Change request #{cr.pk} is {cr.get_state_display().lower()}; nothing was sent."
            )
        with connection.cursor() as cursor:
            # The statistics do not know this job's rows yet (autovacuum lags a big upload
            # and the run-time role may not ANALYZE), so the planner takes every CTE for one
            # row and nests loops over them, rows times batches: 7.9 s for 25,000 items and
            # (extrapolated) hours for a million. Hash joins keep it linear (0.6 s).
            cursor.execute("SELECT current_setting('enable_nestloop')")
            (nestloop,) = cursor.fetchone() or ("on",)
            cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")
            cursor.execute(_BATCH_SQL, {"job": job.pk, "ops": [str(op) for op in _SEND_ORDER]})
            cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [nestloop])
        batches = BulkBatch.objects.filter(job=job).count()
        blocker = _overlapping_job(job)
        job.state = JobState.WAITING if blocker else JobState.RUNNING
        job.waiting_for_id = blocker
        job.started_at = None if blocker else timezone.now()
        job.save(update_fields=["state", "waiting_for", "started_at"])
        bulk_job_audit(actor=actor, job=job, action="approved_start",
                       data={"batches": batches, "items": job.items_to_send, "plan_hash": plan_hash,
                             "waiting_for": blocker})  # fmt: skip
        if not blocker:
            transaction.on_commit(senders_kick)
    return {"job": job.pk, "state": job.state, "batches": batches, "waiting_for": blocker}


def bulk_job_try_start(*, job_id: int) -> bool:
    """Start a waiting job once no running job touches its items (called by the sweeper)."""
    from catalogs.bulk.pipeline import senders_kick

    with transaction.atomic():
        job = (
            BulkJob.objects.select_for_update(skip_locked=True).select_related("catalog")
            .filter(pk=job_id, state=JobState.WAITING).first()
        )  # fmt: skip
        if job is None:
            return False
        blocker = _overlapping_job(job)
        if blocker:
            if blocker != job.waiting_for_id:
                BulkJob.objects.filter(pk=job.pk).update(waiting_for_id=blocker)
            return False
        job.state, job.waiting_for_id, job.started_at = JobState.RUNNING, None, timezone.now()
        job.save(update_fields=["state", "waiting_for", "started_at"])
        bulk_job_audit(actor=PIPELINE_ACTOR, job=job, action="started")
        transaction.on_commit(senders_kick)
    return True


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
    totals.update({f"items_{k}" if k != "items_resent" else k: int(v or 0)
                   for k, v in rows.items()})  # fmt: skip
    return totals


def bulk_job_finish_if_done(*, job_id: int) -> bool:
    """Close a running (or paused) job whose batches are all settled."""
    with transaction.atomic():
        job = (
            BulkJob.objects.select_for_update(skip_locked=True).select_related("catalog")
            .filter(pk=job_id, state__in=(JobState.RUNNING, JobState.PAUSED)).first()
        )  # fmt: skip
        if job is None:
            return False
        if BulkBatch.objects.filter(job=job, state__in=OPEN_BATCH_STATES).exists():
            return False
        job.state, job.finished_at = JobState.DONE, timezone.now()
        job.save(update_fields=["state", "finished_at"])
        Catalog.objects.filter(pk=job.catalog_id).update(
            mirror_item_count=CatalogItem.objects.filter(catalog_id=job.catalog_id).count()
        )
        totals = batch_totals(job)
        bulk_job_audit(actor=PIPELINE_ACTOR, job=job, action="finished", data=totals)
        readback_schedule(job=job, accepted=totals["items_accepted"])
    return True


# --- pause, resume, cancel, retry -----------------------------------------------------------


def _locked(job: BulkJob) -> BulkJob:
    return BulkJob.objects.select_for_update().select_related("catalog").get(pk=job.pk)


def bulk_job_pause(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    """Stop claiming batches; a batch already in flight finishes and is recorded."""
    with transaction.atomic(durable=True):
        job = _locked(job)
        if job.state not in (JobState.RUNNING, JobState.WAITING):
            raise BulkError(f"A job that is {job.get_state_display().lower()} cannot be paused.")
        job.state = JobState.PAUSED
        job.save(update_fields=["state"])
        bulk_job_audit(actor=actor, job=job, action="paused")
    return job


def bulk_job_resume(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    from catalogs.bulk.pipeline import senders_kick

    with transaction.atomic(durable=True):
        job = _locked(job)
        if job.state != JobState.PAUSED:
            raise BulkError("Only a paused job can be resumed.")
        blocker = _overlapping_job(job)
        # Batches Braze refused for full storage go again now: the audit says how many.
        refused = BulkBatch.objects.filter(
            job=job, state__in=CLAIMABLE_STATES, error_ids__in=STORAGE_LIMIT_IDS
        ).aggregate(n=Count("id"), items=Sum("item_count"))
        job.state = JobState.WAITING if blocker else JobState.RUNNING
        job.waiting_for_id, job.error_message = blocker, ""
        job.started_at = job.started_at or (None if blocker else timezone.now())
        job.save(update_fields=["state", "waiting_for", "error_message", "started_at"])
        data = None
        if refused["n"]:
            data = {"storage_refused_batches": refused["n"], "storage_items": refused["items"]}
        bulk_job_audit(actor=actor, job=job, action="resumed", data=data)
        transaction.on_commit(senders_kick)
    return job


def bulk_job_retry_failed(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    """Send the failed batches again (a person decided to); each send counts as a retry."""
    from catalogs.bulk.pipeline import senders_kick

    with transaction.atomic(durable=True):
        job = _locked(job)
        failed = BulkBatch.objects.filter(job=job, state=BatchState.FAILED)
        if job.state not in (JobState.DONE, JobState.PAUSED, JobState.RUNNING) or not failed:
            raise BulkError("This job has no failed batches to send again.")
        count = failed.count()
        # A failed batch may have landed (timeouts): send it as in doubt, so creates go as PUT.
        BulkRow.objects.filter(batch__in=failed).update(outcome=RowOutcome.PENDING)
        failed.update(state=BatchState.IN_DOUBT, attempts=0, next_attempt_at=None,
                      finished_at=None)  # fmt: skip
        job.state, job.finished_at = JobState.RUNNING, None
        job.save(update_fields=["state", "finished_at"])
        bulk_job_audit(actor=actor, job=job, action="retry_failed", data={"batches": count})
        transaction.on_commit(senders_kick)
    return job


def _withdraw_change_request(*, actor: AbstractBaseUser, job: BulkJob) -> int | None:
    """Withdraw the change request of a job that has not started; returns its id.

    Only its author may withdraw a change request, here as on its own page; a reviewer
    rejects it instead. A request already being applied has started the job (or is about
    to): then nothing is withdrawn and the job is cancelled as a started one.
    """
    from console.changes.services import (
        CANCELLABLE,
        ChangeRequestError,
        InvalidTransition,
        change_request_cancel,
    )

    fresh = BulkJob.objects.select_related("change_request").get(pk=job.pk)
    cr = fresh.change_request
    if cr is None or fresh.state not in (JobState.READY, JobState.REVIEW):
        return None
    if cr.state not in CANCELLABLE:
        return None
    try:
        change_request_cancel(
            actor=actor, change_request=cr, comment=f"Bulk job #{job.pk} was cancelled."
        )
    except InvalidTransition:
        return None
    except ChangeRequestError:
        raise BulkError(
            f"Only the author of change request #{cr.pk} can withdraw it, and with it this "
            "job; a reviewer can reject it instead."
        ) from None
    return cr.pk


def _cancel_unsent_rows(job: BulkJob) -> int:
    """Every item not sent yet is reported as not sent; returns the batches cancelled."""
    pending = BulkBatch.objects.filter(job=job, state__in=CLAIMABLE_STATES)
    BulkRow.objects.filter(batch__in=pending).update(outcome=RowOutcome.CANCELLED)
    cancelled = pending.update(state=BatchState.CANCELLED, finished_at=timezone.now())
    if not BulkBatch.objects.filter(job=job).exists():
        BulkRow.objects.filter(job=job, outcome=RowOutcome.PENDING).update(
            outcome=RowOutcome.CANCELLED
        )
    return cancelled


def bulk_job_cancel(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    """Send nothing more. Batches in flight finish; the rest are reported as not sent.

    Before the job starts its change request is withdrawn as well, so it leaves the
    reviewers' queues and can no longer be approved.
    """
    fresh = BulkJob.objects.get(pk=job.pk)
    if fresh.state in (JobState.DONE, JobState.CANCELLED):
        raise BulkError(f"The job is already {fresh.get_state_display().lower()}.")
    withdrawn = _withdraw_change_request(actor=actor, job=fresh)
    with transaction.atomic(durable=True):
        job = _locked(job)
        if withdrawn is not None and job.state == JobState.CANCELLED:
            return job  # the withdrawal's hook closed it, in this actor's name
        if job.state in (JobState.DONE, JobState.CANCELLED):
            raise BulkError(f"The job is already {job.get_state_display().lower()}.")
        cancelled = _cancel_unsent_rows(job)
        job.state, job.finished_at = JobState.CANCELLED, timezone.now()
        job.save(update_fields=["state", "finished_at"])
        bulk_job_audit(actor=actor, job=job, action="cancelled",
                       data={"batches_cancelled": cancelled, "change_request_withdrawn": withdrawn,
                             **batch_totals(job)})  # fmt: skip
    return job


def bulk_jobs_close_unapproved(
    *, change_request_id: int | None = None, actor: Actor = PIPELINE_ACTOR
) -> int:
    """Cancel jobs whose change request was rejected or withdrawn.

    Such a request can never be approved again, so its job would wait for review for
    ever; it is closed, with the reason on the job page. The change-request hook calls
    this for one request right after the decision; the sweeper for all, in case that
    call was lost. Returns how many were closed.
    """
    from console.changes.models import ChangeState

    closed = (ChangeState.REJECTED, ChangeState.CANCELLED)
    count = 0
    waiting = BulkJob.objects.filter(state=JobState.REVIEW, change_request__state__in=closed)
    if change_request_id is not None:
        waiting = waiting.filter(change_request_id=change_request_id)
    job_ids = waiting.values_list("pk", flat=True)
    for job_id in job_ids:
        with transaction.atomic():
            job = (
                BulkJob.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("catalog", "change_request")
                .filter(pk=job_id, state=JobState.REVIEW, change_request__state__in=closed)
                .first()
            )
            if job is None or job.change_request is None:
                continue
            cr = job.change_request
            verb = "rejected" if cr.state == ChangeState.REJECTED else "withdrawn"
            _cancel_unsent_rows(job)
            job.state, job.finished_at = JobState.CANCELLED, timezone.now()
            job.error_message = f"Change request #{cr.pk} was {verb}; nothing was sent."
            job.save(update_fields=["state", "finished_at", "error_message"])
            reason = {"reason": f"change_request_{verb}", "change_request": cr.pk}
            bulk_job_audit(actor=actor, job=job, action="cancelled", data=reason)
            count += 1
    return count
