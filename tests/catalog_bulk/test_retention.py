"""Retention: old uploaded files and old jobs' row detail are removed by a scheduled task;
the job's summary and its audit entries stay."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from pytest_django.fixtures import Settings

from catalog_bulk.models import BulkBatch, BulkJob, BulkRow, JobState, RowOp
from catalog_bulk.retention import bulk_jobs_expire, bulk_uploads_expire
from catalog_bulk.services import upload_dir
from catalog_bulk.tasks import bulk_retention_task
from console.audit.models import AuditEntry
from tests.catalog_bulk.conftest import MakeJob

CSV = b"id,name,price\nsku-1,Mug,11\nsku-9,Bowl,3\n"


def _ended(job: BulkJob, *, days_ago: int, state: str = JobState.DONE) -> BulkJob:
    ended = timezone.now() - timedelta(days=days_ago)
    BulkJob.objects.filter(pk=job.pk).update(state=state, finished_at=ended)
    parent = BulkBatch.objects.create(
        job=job, seq=1, op=RowOp.UPDATE, send_as=RowOp.UPDATE, item_count=2
    )
    BulkBatch.objects.create(
        job=job, seq=2, op=RowOp.UPDATE, send_as=RowOp.UPDATE, item_count=1, parent=parent
    )
    job.refresh_from_db()
    return job


def _audit_entries(job: BulkJob) -> list[int]:
    return list(AuditEntry.objects.filter(data__job=job.pk).values_list("seq", flat=True))


@pytest.mark.django_db
def test_an_old_ended_jobs_rows_and_batches_go_and_its_summary_and_audit_entries_stay(
    make_job: MakeJob, settings: Settings
) -> None:
    settings.BULK_JOB_RETENTION_DAYS = 90
    old = _ended(make_job(CSV), days_ago=91)
    recent = _ended(make_job(CSV), days_ago=89)
    old_cancelled = _ended(make_job(CSV), days_ago=200, state=JobState.CANCELLED)
    unfinished = make_job(CSV)  # a preview never proposed is left to its owner
    BulkJob.objects.filter(pk=unfinished.pk).update(created_at=timezone.now() - timedelta(days=200))
    audit_before = {job.pk: _audit_entries(job) for job in (old, recent, old_cancelled)}
    assert audit_before[old.pk]

    assert bulk_jobs_expire() == 2

    for gone in (old, old_cancelled):
        assert not BulkRow.objects.filter(job=gone).exists()
        assert not BulkBatch.objects.filter(job=gone).exists()
        kept = BulkJob.objects.get(pk=gone.pk)
        assert kept.details_removed_at is not None
        assert (kept.rows_read, kept.n_create, kept.n_update) == (2, 1, 1)
        assert kept.state == gone.state
    for untouched in (recent, unfinished):
        assert BulkRow.objects.filter(job=untouched).count() == 2
    assert BulkBatch.objects.filter(job=recent).count() == 2
    assert {job.pk: _audit_entries(job) for job in (old, recent, old_cancelled)} == audit_before
    assert bulk_jobs_expire() == 0  # done once


def _file(name: str, *, days_old: float) -> Path:
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"id\nsku-1\n")
    when = (timezone.now() - timedelta(days=days_old)).timestamp()
    os.utime(path, (when, when))
    return path


@pytest.mark.django_db
def test_uploaded_files_older_than_the_retention_are_removed(
    make_job: MakeJob, settings: Settings
) -> None:
    settings.BULK_RETENTION_DAYS = 7
    old, new = _file("old.upload", days_old=8), _file("new.upload", days_old=6)
    being_read = _file("being-read.upload", days_old=30)
    job = make_job(CSV)
    BulkJob.objects.filter(pk=job.pk).update(state=JobState.PARSING, file_path=str(being_read))

    assert bulk_uploads_expire() == 1
    assert not old.exists()
    assert new.exists()
    assert being_read.exists()


@pytest.mark.django_db
def test_a_retention_of_zero_days_keeps_everything(make_job: MakeJob, settings: Settings) -> None:
    settings.BULK_RETENTION_DAYS = 0
    settings.BULK_JOB_RETENTION_DAYS = 0
    path = _file("ancient.upload", days_old=3650)
    job = _ended(make_job(CSV), days_ago=3650)
    assert bulk_uploads_expire() == 0
    assert bulk_jobs_expire() == 0
    assert path.exists()
    assert BulkRow.objects.filter(job=job).count() == 2


@pytest.mark.django_db
def test_retention_runs_on_a_schedule(make_job: MakeJob, settings: Settings) -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["catalog-bulk-retention"]
    assert entry["task"] == bulk_retention_task.name
    settings.BULK_RETENTION_DAYS = 1
    settings.BULK_JOB_RETENTION_DAYS = 1
    path = _file("stale.upload", days_old=2)
    job = _ended(make_job(CSV), days_ago=2)
    bulk_retention_task()
    assert not path.exists()
    assert not BulkRow.objects.filter(job=job).exists()
