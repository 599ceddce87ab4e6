"""Real Celery workers: a worker killed with SIGKILL mid-job loses no item, hides no re-send."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from catalog_bulk.models import BulkJob, BulkRow, JobState
from catalogs.models import Catalog
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.helpers import (
    FAST_WORKER_SETTINGS,
    accepted_item_writes,
    approve,
    wait_for_job,
)
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.workers import StartWorker, worker_environment

SCALE = 30

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(braze: SandboxHandle, settings: Settings) -> dict[str, str]:
    """A worker that shares this test's database, broker and limiter, with short timings."""
    settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "clock_scale": float(SCALE)}
    return worker_environment(braze=braze, settings=settings, overrides=FAST_WORKER_SETTINGS)


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], start_celery_worker: StartWorker
) -> Callable[[str], subprocess.Popen[bytes]]:
    return lambda name: start_celery_worker(worker_env, name)


@pytest.fixture
def products(shop: Catalog, braze: SandboxHandle) -> Catalog:
    braze.admin.set_clock_scale(SCALE)
    # Slow answers keep the job running long enough to kill a worker in the middle of it.
    braze.admin.set_injection(latency_ms=120, groups=["catalog_items_async"])
    return shop


@pytest.fixture
def catalog(products: Catalog) -> Catalog:
    return products


def _accepted(job: BulkJob) -> int:
    return BulkRow.objects.filter(job=job, outcome="accepted").count()


def test_a_worker_killed_mid_job_loses_no_item_and_every_resend_is_counted(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    n = 4000
    lines = ["id,name,price"] + [f"new-{i:05d},Item {i},{i}" for i in range(n)]
    job = make_job(("\n".join(lines) + "\n").encode())
    first, second = start_worker("one"), start_worker("two")
    since = time.time()
    job = approve(job, editor=editor, reviewer=reviewer)
    assert job.state == JobState.RUNNING
    wait_for_job(job, lambda j: _accepted(j) >= n // 4, timeout=30)
    os.killpg(first.pid, signal.SIGKILL)  # no warm shutdown, no ack, no clean-up
    wait_for_job(job, lambda j: _accepted(j) >= n // 2, timeout=30)
    os.killpg(second.pid, signal.SIGKILL)
    start_worker("three")
    job = wait_for_job(job, lambda j: j.state == JobState.DONE, timeout=45)

    outcomes = set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True))
    assert outcomes == {"accepted"}
    writes = accepted_item_writes(braze, since)
    assert {f"new-{i:05d}" for i in range(n)} <= set(writes), "an item was lost"
    twice = {item for item, count in writes.items() if count > 1}
    counted = set(BulkRow.objects.filter(job=job, resends__gt=0).values_list("item_id", flat=True))
    assert twice <= counted, "a re-send was not counted"
    report = [r for r in BulkRow.objects.filter(job=job, resends__gt=0)]
    assert all(r.sends >= 2 for r in report)


def test_workers_meeting_full_storage_pause_the_job_without_a_storm_and_finish_on_resume(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    from catalog_bulk.services import bulk_job_resume

    n = 1000
    lines = ["id,name,price"] + [f"new-{i:05d},Item {i},{i}" for i in range(n)]
    job = make_job(("\n".join(lines) + "\n").encode())
    start_worker("one")
    since = time.time()
    job = approve(job, editor=editor, reviewer=reviewer)
    wait_for_job(job, lambda j: _accepted(j) >= 100, timeout=30)
    braze.admin.set_storage_limit("reached")
    job = wait_for_job(job, lambda j: j.state == JobState.PAUSED, timeout=30)
    time.sleep(1.0)  # a sender that was mid-request has answered by now

    # Nothing was refused before storage filled up, so every 400 of the job is a storage one.
    refused = [e for e in braze.admin.log(since=since) if e["status"] == 400]
    # At most one refusal per sender slot (BULK_SENDERS=2), not one per item.
    assert 1 <= len(refused) <= 2
    braze.admin.set_storage_limit("none")
    bulk_job_resume(actor=reviewer, job=job)
    job = wait_for_job(job, lambda j: j.state == JobState.DONE, timeout=45)

    assert set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True)) == {"accepted"}
    writes = accepted_item_writes(braze, since)
    assert set(writes) == {f"new-{i:05d}" for i in range(n)}
    assert set(writes.values()) == {1}
    stats = braze.admin.group_stats("catalog_items_async", since=since)
    assert stats["duplicate_item_writes"] == 0
