"""Real Celery workers: a worker killed with SIGKILL mid-job loses no item, hides no re-send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections
from pytest_django.fixtures import Settings

from catalogs.bulk.models import BulkJob, BulkRow, JobState
from catalogs.bulk.pipeline import bulk_sweep
from catalogs.models import Catalog
from tests.catalogs.bulk.conftest import MakeJob
from tests.catalogs.bulk.helpers import accepted_item_writes, approve
from tests.fixtures.sandbox import SandboxHandle

ROOT = Path(__file__).resolve().parents[3]
SCALE = 30

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(braze: SandboxHandle, settings: Settings) -> dict[str, str]:
    """The environment of a worker that shares this test's database, broker and limiter."""
    db = connections["default"].settings_dict
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + db["NAME"]
    workspace = f"test-{uuid.uuid4().hex}"
    fast = {
        "BULK_SENDERS": "2", "BULK_SENDER_TTL": "2", "BULK_MAX_INLINE_WAIT": "1",
        "BULK_BACKOFF_BASE": "0.05", "BULK_BACKOFF_CAP": "0.3", "BULK_MAX_ATTEMPTS": "20",
        "BRAZE_CONNECT_TIMEOUT": "1", "BRAZE_READ_TIMEOUT": "2",
    }  # fmt: skip
    for name, value in fast.items():
        setattr(settings, name, type(getattr(settings, name))(value))
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS, "workspace": workspace, "clock_scale": float(SCALE),
        "margin_seconds": 0.05,
    }  # fmt: skip
    return {
        **os.environ, **fast, "DATABASE_URL": url,
        "BRAZE_REST_ENDPOINT": braze.url, "BRAZE_API_KEY": braze.api_key,
        "BRAZE_WORKSPACE": workspace, "BRAZE_RATE_LIMIT_CLOCK_SCALE": str(SCALE),
        "BRAZE_RATE_LIMIT_MARGIN_SECONDS": "0.05", "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }  # fmt: skip


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        # Output goes to a file in tmp_path, which the canary guard scans after the test.
        with (tmp_path / f"worker-{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool=prefork",
                 "--concurrency=1", "-l", "info", "-n", f"{name}@%h", "--without-gossip",
                 "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=worker_env, start_new_session=True,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def products(db: None, braze: SandboxHandle) -> Catalog:
    braze.admin.reset(products=10)
    braze.admin.set_clock_scale(SCALE)
    # Slow answers keep the job running long enough to kill a worker in the middle of it.
    braze.admin.set_injection(latency_ms=120, groups=["catalog_items_async"])
    from catalogs.services import catalog_mirror_refresh
    from console.braze import get_client

    catalog_mirror_refresh(client=get_client(lane="background", max_wait=5))
    return Catalog.objects.get(name="products")


@pytest.fixture
def catalog(products: Catalog) -> Catalog:
    return products


def _wait(job: BulkJob, done: Callable[[BulkJob], bool], timeout: float) -> BulkJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bulk_sweep()  # what Celery beat runs every BULK_SWEEP_SECONDS
        job.refresh_from_db()
        if done(job):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job.pk} is {job.state} after {timeout} s")


def _accepted(job: BulkJob) -> int:
    return BulkRow.objects.filter(job=job, outcome="accepted").count()


def test_a_worker_killed_mid_job_loses_no_item_and_every_resend_is_counted(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    n = 4000
    lines = ["id,name,price"] + [f"new-{i:05d},Item {i},{i}" for i in range(n)]
    job = make_job(("\n".join(lines) + "\n").encode())
    first, second = start_worker("one"), start_worker("two")
    since = time.time()
    job = approve(job, editor=editor, reviewer=reviewer)
    assert job.state == JobState.RUNNING
    _wait(job, lambda j: _accepted(j) >= n // 4, timeout=30)
    os.killpg(first.pid, signal.SIGKILL)  # no warm shutdown, no ack, no clean-up
    _wait(job, lambda j: _accepted(j) >= n // 2, timeout=30)
    os.killpg(second.pid, signal.SIGKILL)
    start_worker("three")
    job = _wait(job, lambda j: j.state == JobState.DONE, timeout=45)

    outcomes = set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True))
    assert outcomes == {"accepted"}
    writes = accepted_item_writes(braze, since)
    assert {f"new-{i:05d}" for i in range(n)} <= set(writes), "an item was lost"
    twice = {item for item, count in writes.items() if count > 1}
    counted = set(BulkRow.objects.filter(job=job, resends__gt=0).values_list("item_id", flat=True))
    assert twice <= counted, "a re-send was not counted"
    report = [r for r in BulkRow.objects.filter(job=job, resends__gt=0)]
    assert all(r.sends >= 2 for r in report)
