"""Reading back a sample after a job, against the sandbox (the referee of what Braze holds)."""

import csv
import io
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from catalog_bulk.models import BulkJob, BulkReadBack, JobState, ReadBackState
from catalog_bulk.readback import bulk_job_read_back
from catalog_bulk.services import bulk_sweep
from catalogs.models import Catalog, CatalogItem
from console.audit.models import AuditEntry
from console.roles import Role
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.helpers import approve, drain
from tests.fixtures.sandbox import SandboxHandle

pytestmark = pytest.mark.django_db

GET_ITEM = "/catalogs/products/items/"


@pytest.fixture
def catalog(shop: Catalog) -> Catalog:
    return shop


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """Read-back tasks sent to the broker (on commit), as (job id, countdown)."""
    from catalog_bulk import tasks

    sent: list[tuple[int, float]] = []
    monkeypatch.setattr(
        tasks.bulk_readback_task,
        "apply_async",
        lambda args, countdown: sent.append((args[0], countdown)),
    )
    monkeypatch.setattr(tasks.bulk_send_task, "apply_async", lambda *a, **kw: None)
    return sent


def _csv(n: int) -> bytes:
    lines = ["id,name,price"] + [f"new-{i:05d},Item {i},{i}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def finished(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, n: int
) -> BulkJob:
    """A job of ``n`` creates, sent, and applied by Braze (the sandbox applies at once)."""
    job = drain(approve(make_job(_csv(n)), editor=editor, reviewer=reviewer))
    assert job.state == JobState.DONE
    braze.admin.flush_async()
    return job


def item_reads(braze: SandboxHandle, since: float) -> list[dict[str, Any]]:
    return [e for e in braze.admin.log(since=since) if GET_ITEM in e["path"]]


def report(client: Client, job: BulkJob) -> list[dict[str, str]]:
    url = reverse("catalog_bulk:report", args=[job.catalog.name, job.pk])
    body = b"".join(client.get(url).streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(body)))


def test_a_finished_job_schedules_its_read_back_after_the_apply_delay(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    enqueued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.BULK_READBACK_DELAY_SECONDS = 120
    job = approve(make_job(_csv(3)), editor=editor, reviewer=reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        job = drain(job)
    assert enqueued == [(job.pk, 120)]
    assert job.readback_state == ReadBackState.SCHEDULED
    assert job.readback_due_at is not None
    assert job.finished_at is not None
    delay = (job.readback_due_at - job.finished_at).total_seconds()
    assert delay == pytest.approx(120, abs=1)
    # Before it is due nothing is read: Braze may not have applied the job yet.
    since = time.time()
    assert bulk_job_read_back(job_id=job.pk) == ""
    assert item_reads(braze, since) == []


def test_it_reads_back_a_random_sample_and_reports_that_all_match(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    client_for: Any,
) -> None:
    settings.BULK_READBACK_DELAY_SECONDS = 0
    settings.BULK_READBACK_SAMPLE = 10
    job = finished(make_job, editor, reviewer, braze, 30)
    since = time.time()

    assert bulk_job_read_back(job_id=job.pk) == ReadBackState.DONE

    reads = item_reads(braze, since)
    assert len(reads) == 10
    assert all(e["method"] == "GET" and e["status"] == 200 for e in reads)
    assert len({e["path"] for e in reads}) == 10  # ten different items
    viewer = client_for(Role.VIEWER)
    page = viewer.get(reverse("catalog_bulk:job", args=["products", job.pk]))
    assert "Read back 10 of 30 items: 10 match." in page.content.decode()
    rows = report(viewer, job)
    assert sum(1 for r in rows if r["read_back"] == "match") == 10
    assert sum(1 for r in rows if r["read_back"] == "") == 20
    [entry] = AuditEntry.objects.filter(action="catalog_bulk.read_back")
    assert (entry.data["sampled"], entry.data["matched"], entry.data["of"]) == (10, 10, 30)


def test_a_dashboard_edit_before_the_read_back_is_shown_as_a_mismatch_and_mirrored(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    client_for: Any,
) -> None:
    settings.BULK_READBACK_DELAY_SECONDS = 0
    job = finished(make_job, editor, reviewer, braze, 5)  # a sample of 50 takes all five
    # Someone changes two of the items in the Braze dashboard before the read-back.
    braze.admin.edit_catalog_item("products", "new-00002", {"price": 999})
    braze.admin.delete_catalog_item("products", "new-00003")

    assert bulk_job_read_back(job_id=job.pk) == ReadBackState.DONE

    outcomes = dict(BulkReadBack.objects.filter(job=job).values_list("item_id", "outcome"))
    assert outcomes == {
        "new-00000": "match",
        "new-00001": "match",
        "new-00002": "mismatch",
        "new-00003": "mismatch",
        "new-00004": "match",
    }
    viewer = client_for(Role.VIEWER)
    text = viewer.get(reverse("catalog_bulk:job", args=["products", job.pk])).content.decode()
    assert "Read back 5 of 5 items: 3 match, 2 differ from what was sent" in text
    assert "message-warning" in text
    assert "<td>new-00002</td><td>price</td><td>2</td><td>999</td>" in text
    assert "<td>new-00003</td><td>(item)</td><td>the item</td><td>not in the catalog</td>" in text
    # The mirror now shows what Braze holds.
    mirror = dict(CatalogItem.objects.filter(catalog=job.catalog).values_list("item_id", "data"))
    assert mirror["new-00002"]["price"] == 999
    assert "new-00003" not in mirror
    details = {r["id"]: r["read_back_detail"] for r in report(viewer, job)}
    assert details["new-00002"] == "price: sent 2, found 999"
    [entry] = AuditEntry.objects.filter(action="catalog_bulk.read_back")
    assert {"item": "new-00002", "field": "price", "sent": 2, "found": 999} in entry.data[
        "mismatches"
    ]


def test_items_braze_has_not_applied_are_mismatches_not_hidden(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, settings: Settings
) -> None:
    settings.BULK_READBACK_DELAY_SECONDS = 0  # too soon, on purpose
    braze.admin.set_async_delay(3600)  # Braze has accepted but not applied anything yet
    job = drain(approve(make_job(_csv(4)), editor=editor, reviewer=reviewer))

    assert bulk_job_read_back(job_id=job.pk) == ReadBackState.DONE

    assert set(BulkReadBack.objects.filter(job=job).values_list("outcome", flat=True)) == {
        "mismatch"
    }


def test_a_rate_limited_read_back_hands_over_and_finishes_later_without_a_429(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    enqueued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.BULK_READBACK_DELAY_SECONDS = 0
    settings.BULK_READBACK_SAMPLE = 8
    job = finished(make_job, editor, reviewer, braze, 8)
    # Three single-item reads per 0.5 s for the console, and it must not wait inline.
    settings.BULK_MAX_INLINE_WAIT = 0
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "clock_scale": 120.0,
        "margin_seconds": 0.05,
        "groups": {**settings.BRAZE_RATE_LIMITS["groups"], "catalog_items_sync": (3, 60.0)},
        "overrides": ["catalog_items_sync"],  # set by hand: not replaced by Braze's 50
    }
    since = time.time()

    with django_capture_on_commit_callbacks(execute=True):
        steps = [bulk_job_read_back(job_id=job.pk)]
    job.refresh_from_db()
    assert steps == ["later"]
    assert job.readback_state == ReadBackState.SCHEDULED
    assert enqueued[-1][0] == job.pk
    assert 0 < enqueued[-1][1] <= 0.6  # handed over to a task due when a slot frees
    deadline = time.monotonic() + 10
    while steps[-1] != ReadBackState.DONE and time.monotonic() < deadline:
        time.sleep(0.1)
        steps.append(bulk_job_read_back(job_id=job.pk))
    assert steps[-1] == ReadBackState.DONE
    reads = item_reads(braze, since)
    assert len(reads) == 8
    assert all(e["status"] == 200 for e in reads)


def test_the_sweeper_enqueues_a_read_back_whose_task_was_lost(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    enqueued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    job = finished(make_job, editor, reviewer, braze, 2)
    assert bulk_sweep().readbacks_requeued == 0  # not due for another five minutes
    BulkJob.objects.filter(pk=job.pk).update(readback_due_at=timezone.now() - timedelta(minutes=2))

    with django_capture_on_commit_callbacks(execute=True):
        assert bulk_sweep().readbacks_requeued == 1

    assert enqueued == [(job.pk, 0.0)]


def test_a_key_that_cannot_read_items_fails_the_read_back_with_a_warning(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    client_for: Any,
) -> None:
    settings.BULK_READBACK_DELAY_SECONDS = 0
    job = finished(make_job, editor, reviewer, braze, 2)
    settings.BRAZE_API_KEY = braze.admin.create_key(["catalogs.get", "catalogs.add_items"])

    assert bulk_job_read_back(job_id=job.pk) == ReadBackState.FAILED

    job.refresh_from_db()
    assert "catalogs.get_item" in job.readback_error
    page = client_for(Role.VIEWER).get(reverse("catalog_bulk:job", args=["products", job.pk]))
    assert "The sample could not be read back" in page.content.decode()
