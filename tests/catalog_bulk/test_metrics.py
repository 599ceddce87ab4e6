"""A scrape of /metrics in the middle of a bulk job sent by real Celery workers."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from catalog_bulk.models import BulkRow, JobState
from catalogs.models import Catalog
from console.braze.limiter import limits_from_settings
from console.metrics.collect import celery_queue_names
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.helpers import FAST_WORKER_SETTINGS, approve, wait_for_job
from tests.console.metrics.helpers import Samples, scrape, series, value
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.workers import StartWorker, worker_environment

SCALE = 30
GROUP = "catalog_items_async"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    # What is counted does not depend on which of Braze's documented behaviours runs.
    pytest.mark.one_profile("current"),
]


@pytest.fixture
def start_worker(
    braze: SandboxHandle, settings: Settings, start_celery_worker: StartWorker
) -> Callable[[str], subprocess.Popen[bytes]]:
    """Workers that record into this test's metrics prefix; the scrape reads them here."""
    settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "clock_scale": float(SCALE)}
    settings.METRICS_TOKEN = "bulk-metrics-token"
    shared = {"METRICS_KEY_PREFIX": f"test-metrics:{uuid.uuid4().hex}", **FAST_WORKER_SETTINGS}
    env = worker_environment(braze=braze, settings=settings, overrides=shared)
    return lambda name: start_celery_worker(env, name)


@pytest.fixture
def catalog(shop: Catalog, braze: SandboxHandle) -> Catalog:
    braze.admin.set_clock_scale(SCALE)
    # Slow answers keep the job running long enough to scrape it in the middle.
    braze.admin.set_injection(latency_ms=150, groups=[GROUP])
    return shop


def _scrape(settings: Settings) -> Samples:
    return scrape(token=settings.METRICS_TOKEN)


def test_a_scrape_during_a_bulk_job_shows_its_limiter_queue_and_job_series(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    settings: Settings,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    n = 3000
    lines = ["id,name,price"] + [f"new-{i:05d},Item {i},{i}" for i in range(n)]
    job = make_job(("\n".join(lines) + "\n").encode())
    start_worker("one")
    job = approve(job, editor=editor, reviewer=reviewer)
    wait_for_job(
        job,
        lambda j: BulkRow.objects.filter(job=j, outcome="accepted").count() >= 200,
        timeout=30,
        poll=0.1,
    )

    samples = _scrape(settings)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING, "the job ended before the scrape: make it longer"

    # The job, by state, with the items its batches carried so far.
    assert value(samples, "console_bulk_jobs", state="running") == 1
    assert value(samples, "console_bulk_jobs", state="done") == 0
    items = "console_bulk_job_items"
    assert value(samples, items, state="running", kind="to_send") == n
    sent = value(samples, items, state="running", kind="sent") or 0
    accepted = value(samples, items, state="running", kind="accepted") or 0
    assert 200 <= accepted <= sent <= n
    assert value(samples, items, state="running", kind="failed") == 0
    assert value(samples, items, state="paused", kind="to_send") == 0

    # The limiter: the configured limit, and the window's sends across processes within it.
    limit = limits_from_settings().limit(GROUP)
    assert value(samples, "console_braze_limit", group=GROUP) == limit
    assert value(samples, "console_braze_limit_configured", group=GROUP) == limit
    assert 1 <= (value(samples, "console_braze_limiter_used", group=GROUP) or 0) <= limit
    assert value(samples, "console_braze_limiter_blocked_seconds", group=GROUP) == 0
    assert {labels["group"] for labels in series(samples, "console_braze_limit")} >= {
        "catalogs_sync",
        "catalog_items_sync",
        GROUP,
        "scim",
        "default",
    }

    # Celery's queue, read from the broker.
    for queue in celery_queue_names():
        depth = value(samples, "console_celery_queue_length", queue=queue)
        assert depth is not None, queue
        assert depth >= 0
    unacked = value(samples, "console_celery_unacked")
    assert unacked is not None
    assert unacked >= 0

    # Recorded in the worker process, read in this one: Braze's answers and the waits.
    answered = sum(
        v
        for labels, v in samples["console_braze_request_duration_seconds_count"]
        if labels["group"] == GROUP
    )
    # Accepted batches are recorded after their answer was counted; a batch counted as sent
    # may still be waiting for its answer (a sender claims several at a time).
    assert answered * 50 >= accepted, "every batch Braze answered is counted"
    assert value(
        samples, "console_braze_limiter_wait_seconds_count", group=GROUP, lane="background"
    )
    assert value(samples, "console_metrics_source_up", source="celery") == 1

    job = wait_for_job(job, lambda j: j.state == JobState.DONE, timeout=60, poll=0.1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = _scrape(settings)
        done = value(
            after,
            "console_celery_tasks_total",
            task="catalogs.bulk.tasks.bulk_send_task",
            outcome="success",
        )
        if done:
            break
        time.sleep(0.5)
    assert done, "the sender tasks' outcomes were counted"
    assert value(after, "console_bulk_jobs", state="done") == 1
    assert value(after, "console_bulk_jobs", state="running") == 0
    assert value(after, items, state="running", kind="sent") == 0
    answered_in_all = sum(
        v
        for labels, v in after["console_braze_request_duration_seconds_count"]
        if labels["group"] == GROUP
    )
    assert answered_in_all * 50 >= n, "every batch of the job is counted once answered"
