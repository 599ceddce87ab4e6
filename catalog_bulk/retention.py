"""Retention: uploaded files and the detail of old jobs are removed; what happened stays.

Uploaded files older than BULK_RETENTION_DAYS are deleted (a file is normally deleted once it
is read; this catches the ones a failure left behind). The rows, batches and read-backs of a
job that ended more than BULK_JOB_RETENTION_DAYS ago are deleted; its BulkJob row stays as the
job's report (who uploaded what, when, the counts of creates, updates, deletes and errors, how
it ended) and its audit entries are never touched.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog_bulk.models import (
    BulkBatch,
    BulkJob,
    BulkReadBack,
    BulkRow,
    JobState,
    ReadBackState,
)
from catalog_bulk.services import upload_dir

logger = logging.getLogger(__name__)

# Jobs that can change no more: their detail may go.
ENDED_STATES = (JobState.DONE, JobState.CANCELLED, JobState.INVALID)


class RetentionResult(NamedTuple):
    files_removed: int
    jobs_trimmed: int


def bulk_uploads_expire(*, now: datetime | None = None) -> int:
    """Delete uploaded files older than BULK_RETENTION_DAYS (0: keep them); returns how many.

    A file whose job is still being read is kept whatever its age.
    """
    days = settings.BULK_RETENTION_DAYS
    directory = upload_dir()
    if days <= 0 or not directory.is_dir():
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    in_use = set(BulkJob.objects.filter(state=JobState.PARSING).values_list("file_path", flat=True))
    removed = 0
    for path in directory.iterdir():
        if not path.is_file() or str(path) in in_use:
            continue
        if datetime.fromtimestamp(path.stat().st_mtime, tz=cutoff.tzinfo) < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def bulk_jobs_expire(*, now: datetime | None = None) -> int:
    """Delete the rows, batches and read-backs of jobs that ended more than
    BULK_JOB_RETENTION_DAYS ago (0: keep them); the jobs themselves stay. Returns how many."""
    days = settings.BULK_JOB_RETENTION_DAYS
    if days <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    ended_at = Coalesce("finished_at", "parsed_at", "created_at")
    job_ids = list(
        BulkJob.objects.annotate(ended_at=ended_at)
        .filter(state__in=ENDED_STATES, ended_at__lt=cutoff, details_removed_at__isnull=True)
        .exclude(readback_state__in=[ReadBackState.SCHEDULED, ReadBackState.READING])
        .values_list("pk", flat=True)
    )
    for job_id in job_ids:
        with transaction.atomic():
            BulkReadBack.objects.filter(job_id=job_id).delete()
            BulkRow.objects.filter(job_id=job_id).delete()
            # Children first: a batch split in two points at its parent.
            BulkBatch.objects.filter(job_id=job_id, parent__isnull=False).delete()
            BulkBatch.objects.filter(job_id=job_id).delete()
            BulkJob.objects.filter(pk=job_id).update(details_removed_at=now)
    return len(job_ids)


def bulk_retention_run(*, now: datetime | None = None) -> RetentionResult:
    result = RetentionResult(
        files_removed=bulk_uploads_expire(now=now), jobs_trimmed=bulk_jobs_expire(now=now)
    )
    if any(result):
        logger.info("bulk retention: %s uploaded files removed, %s jobs' detail removed", *result)
    return result
