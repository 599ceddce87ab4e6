"""Driving a bulk job through review and the pipeline inside the test process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User

from catalog_bulk.models import BulkJob, JobState
from catalog_bulk.outbox import batch_claim, batches_claim
from catalog_bulk.senders import batch_send, batches_send, bulk_job_finish_if_done
from catalog_bulk.services import bulk_job_propose, bulk_sweep
from console.changes.services import change_request_apply, change_request_approve

# Settings that make a real worker's bulk pipeline quick to test (given to the worker and to
# the test process alike through `worker_environment(overrides=...)`).
FAST_WORKER_SETTINGS = {
    "BULK_SENDERS": "2",
    "BULK_SENDER_TTL": "2",
    "BULK_MAX_INLINE_WAIT": "1",
    "BULK_BACKOFF_BASE": "0.05",
    "BULK_BACKOFF_CAP": "0.3",
    "BULK_MAX_ATTEMPTS": "20",
    "BRAZE_CONNECT_TIMEOUT": "1",
    "BRAZE_READ_TIMEOUT": "2",
}


def wait_for_job(
    job: BulkJob, done: Callable[[BulkJob], bool], *, timeout: float, poll: float = 0.25
) -> BulkJob:
    """Run the sweeper (what Celery beat runs every BULK_SWEEP_SECONDS) until `done(job)`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bulk_sweep()
        job.refresh_from_db()
        if done(job):
            return job
        time.sleep(poll)
    raise AssertionError(f"job {job.pk} is {job.state} after {timeout} s")


def approve(job: BulkJob, *, editor: User, reviewer: User) -> BulkJob:
    """Propose as the editor, approve as the reviewer, and run the apply step."""
    cr = bulk_job_propose(actor=editor, job=job)
    change_request_approve(actor=reviewer, change_request=cr)
    change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    job.refresh_from_db()
    return job


def drain(job: BulkJob, *, timeout: float = 60.0) -> BulkJob:
    """Send every batch in this process, as sender tasks would, until the job is over."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claim = batch_claim()
        if claim is not None:
            batch_send(claim=claim)
            bulk_job_finish_if_done(job_id=claim.job_id)
            continue
        bulk_sweep()
        job.refresh_from_db()
        if job.state in (JobState.DONE, JobState.CANCELLED, JobState.PAUSED):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job.pk} did not finish in {timeout} s")


def drain_many(job: BulkJob, *, per_claim: int, timeout: float = 60.0) -> BulkJob:
    """`drain`, claiming up to `per_claim` batches a round trip, as a sender with room does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claimed_at = time.monotonic()
        claims = batches_claim(limit=per_claim)
        if claims:
            batches_send(claims=claims, claimed_at=claimed_at)
            bulk_job_finish_if_done(job_id=claims[0].job_id)
            continue
        bulk_sweep()
        job.refresh_from_db()
        if job.state in (JobState.DONE, JobState.CANCELLED, JobState.PAUSED):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job.pk} did not finish in {timeout} s")


def sandbox_items(braze: Any, catalog: str) -> dict[str, dict[str, Any]]:
    """Every item Braze (the sandbox) holds, after applying accepted async requests."""
    braze.admin.flush_async()
    items: dict[str, dict[str, Any]] = {}
    with braze.client() as http:
        url: str | None = f"/catalogs/{catalog}/items"
        while url:
            response = http.get(url)
            response.raise_for_status()
            for item in response.json()["items"]:
                items[item["id"]] = item
            links = response.headers.get("link", "")
            url = None
            for part in links.split(","):
                if 'rel="next"' in part:
                    url = part.split(";")[0].strip()[1:-1]
    return items


def accepted_item_writes(braze: Any, since: float) -> dict[str, int]:
    """How many accepted (2xx) bulk requests carried each item id: the referee's count."""
    counts: dict[str, int] = {}
    for entry in braze.admin.log(since=since, group="catalog_items_async"):
        if entry.get("external") or not 200 <= entry["status"] < 300:
            continue
        for item_id in entry.get("item_ids") or []:
            counts[item_id] = counts.get(item_id, 0) + 1
    return counts


def referee_log_settled(
    braze: Any, *, since: float, group: str, expected: int, hold: float
) -> list[dict[str, Any]]:
    """The referee's log once the requests still held when the job finished have ended.

    The sandbox logs a request when it answers, so one it holds past the console's read
    timeout is logged up to `hold` seconds after the console gave up on it and moved on. The
    log is read until it holds `expected` entries (or a deadline passes), then once more after
    another hold, so a request arriving late is counted too.
    """
    deadline = time.monotonic() + hold + 10
    while True:
        log = braze.admin.log(since=since, group=group)
        if len(log) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(hold)
    return list(braze.admin.log(since=since, group=group))
