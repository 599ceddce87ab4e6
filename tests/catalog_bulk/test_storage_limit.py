"""A bulk job that meets Braze's full catalog storage pauses after one refused request, says
so in words, and finishes on resume with every item written once."""

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from catalog_bulk.models import BatchState, BulkBatch, BulkJob, BulkRow, JobState, RowOutcome
from catalog_bulk.outbox import batch_claim
from catalog_bulk.selectors import bulk_job_progress
from catalog_bulk.senders import batch_send
from catalog_bulk.services import bulk_sweep
from catalogs.models import Catalog
from console.audit.models import AuditEntry
from console.braze.errors import BrazeErrorDetail, BrazeValidationError, describe_error
from console.roles import Role
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.helpers import accepted_item_writes, approve, drain, sandbox_items
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle

pytestmark = pytest.mark.django_db

GROUP = "catalog_items_async"
ERROR_IDS = {
    "reached": "company-size-limit-already-reached",
    "surge": "company-size-limit-surge",
}


@pytest.fixture
def catalog(shop: Catalog) -> Catalog:
    return shop


def storage_words(error_id: str) -> str:
    return describe_error(BrazeValidationError("", errors=(BrazeErrorDetail(error_id, ""),)))


def _csv(count: int) -> bytes:
    lines = ["id,name,price"] + [f"new-{n:05d},Item {n},{n}" for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


def _send_one() -> None:
    claim = batch_claim()
    assert claim is not None
    batch_send(claim=claim)


def _requests(braze: SandboxHandle, since: float) -> list[dict[str, Any]]:
    return [e for e in braze.admin.log(since=since, group=GROUP) if not e.get("external")]


def _page(job: BulkJob, role: Role = Role.VIEWER) -> str:
    client = Client()
    client.force_login(user_with_role(role))
    url = reverse("catalog_bulk:job", args=[job.catalog.name, job.pk])
    response = client.get(url)
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def _paused_by_storage(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, state: str
) -> tuple[BulkJob, float]:
    """A 300-item job (6 batches): two batches land, then storage is full."""
    job = approve(make_job(_csv(300)), editor=editor, reviewer=reviewer)
    _send_one()
    _send_one()
    braze.admin.set_storage_limit(state)
    since = time.time()
    return drain(job), since


@pytest.mark.parametrize("state", ["reached", "surge"])
def test_a_job_meeting_full_storage_pauses_after_one_refused_request(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, state: str
) -> None:
    job, since = _paused_by_storage(make_job, editor, reviewer, braze, state)

    assert job.state == JobState.PAUSED
    # One request met the limit; no splitting storm (the old pipeline sent 99 per batch).
    sent = _requests(braze, since)
    assert [e["status"] for e in sent] == [400]
    refused = BulkBatch.objects.get(job=job, error_ids=ERROR_IDS[state])
    assert refused.state == BatchState.RETRY_WAIT
    assert refused.item_count == 50
    assert not BulkBatch.objects.filter(job=job, state=BatchState.SPLIT).exists()
    # Nothing was applied of it, nothing is counted as rejected: the items wait.
    assert set(BulkRow.objects.filter(batch=refused).values_list("outcome", flat=True)) == {
        RowOutcome.PENDING
    }
    assert BulkRow.objects.filter(job=job, outcome=RowOutcome.ACCEPTED).count() == 100
    audit = AuditEntry.objects.get(action="catalog_bulk.paused")
    assert audit.actor_name == "catalog-bulk"
    assert audit.data["reason"] == ERROR_IDS[state]


@pytest.mark.parametrize(
    ("state", "headline"),
    [
        ("reached", "Paused: your company's catalog storage in Braze is full."),
        ("surge", "Paused: this job needs more catalog storage than your company has left"),
    ],
)
def test_the_job_page_says_why_it_stopped_and_what_to_do(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    state: str,
    headline: str,
) -> None:
    job, _ = _paused_by_storage(make_job, editor, reviewer, braze, state)

    page = _page(job, Role.REVIEWER)
    assert headline in page
    assert "Braze refused 1 batch (50 items) and applied none of it" in page
    # The words a single change refused for storage shows too (tests/catalogs/test_appliers).
    assert " ".join(escape(storage_words(ERROR_IDS[state])).split()) in page
    assert "Free some (delete items or catalogs no longer needed)" in " ".join(
        storage_words(ERROR_IDS[state]).split()
    )
    assert f"Braze error: {ERROR_IDS[state]}." in page
    assert "resume the job" in page
    assert 'value="resume"' in page
    # A viewer reads the same words but gets no button.
    viewer_page = _page(job, Role.VIEWER)
    assert headline in viewer_page
    assert 'value="resume"' not in viewer_page


def test_a_surge_pause_does_not_resume_by_itself(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    job, since = _paused_by_storage(make_job, editor, reviewer, braze, "surge")
    # Waiting frees no storage: the sweeper starts nothing and no sender finds work.
    time.sleep(0.3)
    bulk_sweep()
    assert batch_claim() is None
    job.refresh_from_db()
    assert job.state == JobState.PAUSED
    assert len(_requests(braze, since)) == 1


def test_senders_in_flight_together_add_one_refusal_each_and_pause_once(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    job = approve(make_job(_csv(300)), editor=editor, reviewer=reviewer)
    braze.admin.set_storage_limit("reached")
    since = time.time()
    claims = [batch_claim(), batch_claim()]  # two senders claimed before either heard back
    for claim in claims:
        assert claim is not None
        batch_send(claim=claim)

    assert batch_claim() is None
    job.refresh_from_db()
    assert job.state == JobState.PAUSED
    assert len(_requests(braze, since)) == 2
    assert BulkBatch.objects.filter(job=job, state=BatchState.RETRY_WAIT).count() == 2
    assert AuditEntry.objects.filter(action="catalog_bulk.paused").count() == 1


@pytest.mark.parametrize("state", ["reached", "surge"])
def test_resuming_once_storage_is_freed_writes_every_item_exactly_once(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, state: str
) -> None:
    started = time.time()
    job, _ = _paused_by_storage(make_job, editor, reviewer, braze, state)
    braze.admin.set_storage_limit("none")

    client = Client()
    client.force_login(reviewer)
    url = reverse("catalog_bulk:control", args=[job.catalog.name, job.pk])
    assert client.post(url, {"action": "resume"}).status_code == 302
    job = drain(job)

    assert job.state == JobState.DONE
    ids = {f"new-{n:05d}" for n in range(300)}
    writes = accepted_item_writes(braze, started)
    assert set(writes) == ids
    assert set(writes.values()) == {1}
    assert braze.admin.group_stats(GROUP, since=started)["duplicate_item_writes"] == 0
    assert ids <= set(sandbox_items(braze, "products"))
    assert set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True)) == {
        RowOutcome.ACCEPTED
    }
    # The refused batch went again once, counted as a retry, never as a re-send.
    progress = bulk_job_progress(job=job)
    assert (progress.retries, progress.items_retried) == (1, 50)
    assert (progress.resends, progress.items_resent) == (0, 0)
    assert progress.requests == 7  # 6 batches + the refused one
    page = _page(job)
    assert "<dd>1 requests, 50 items</dd>" in page
    assert "storage-pause" not in page
    resumed = AuditEntry.objects.get(action="catalog_bulk.resumed")
    assert resumed.data["storage_refused_batches"] == 1
    assert resumed.data["storage_items"] == 50


def test_a_batch_in_doubt_that_meets_full_storage_stays_in_doubt(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    """Its first send may have landed: after the refusal it is still re-sent as a PUT."""
    job = approve(make_job(_csv(50)), editor=editor, reviewer=reviewer)
    BulkBatch.objects.filter(job=job).update(state=BatchState.IN_DOUBT, attempts=1)
    braze.admin.set_storage_limit("reached")
    _send_one()
    batch = BulkBatch.objects.get(job=job)
    assert (batch.state, batch.send_as) == (BatchState.IN_DOUBT, "replace")

    braze.admin.set_storage_limit("none")
    from catalog_bulk.services import bulk_job_resume

    bulk_job_resume(actor=reviewer, job=job)
    job = drain(job)
    assert job.state == JobState.DONE
    assert bulk_job_progress(job=job).items_resent == 50
