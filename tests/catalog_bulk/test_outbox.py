"""The outbox against the sandbox: what each answer makes of a batch (split on 400, retries,
in-doubt re-sends, 429s), and what is claimed."""

import time

import pytest
from django.contrib.auth.models import User
from django.db.models import F
from django.utils import timezone
from pytest_django.fixtures import Settings

from catalog_bulk.models import BatchState, BulkBatch, BulkRow, JobState, RowOutcome
from catalog_bulk.outbox import batch_claim, batches_claim, batches_record_accepted, lease_seconds
from catalog_bulk.selectors import bulk_job_progress
from catalog_bulk.services import bulk_sweep
from catalogs.models import Catalog, CatalogItem
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.helpers import (
    accepted_item_writes,
    approve,
    drain,
    drain_many,
    referee_log_settled,
    sandbox_items,
)
from tests.fixtures.sandbox import SandboxHandle

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(shop: Catalog) -> Catalog:
    return shop


@pytest.fixture
def fast_retries(settings: Settings) -> None:
    settings.BULK_BACKOFF_BASE = 0.05
    settings.BULK_BACKOFF_CAP = 0.2
    settings.BULK_MAX_ATTEMPTS = 30


def _csv(ids: range, **extra: str) -> bytes:
    lines = ["id,name,price"] + [f"new-{n:05d},Item {n},{n}" for n in ids]
    return ("\n".join(lines) + "\n").encode()


def test_a_400_splits_the_batch_so_one_bad_item_does_not_sink_the_others(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, shop: Catalog
) -> None:
    # A field the mirror knows and Braze does not: it passes the console's checks, Braze
    # refuses the request (invalid-fields), as with any rule only Braze knows.
    shop.fields = [*shop.fields, {"name": "ghost", "type": "string"}]
    shop.save()
    lines = ["id,name,ghost"] + [f"new-{n:03d},Item {n}," for n in range(50)]
    lines[31] = "new-030,Item 30,boo"
    job = approve(make_job(("\n".join(lines) + "\n").encode()), editor=editor, reviewer=reviewer)
    job = drain(job)
    outcomes = dict(BulkRow.objects.filter(job=job).values_list("item_id", "outcome"))
    assert outcomes.pop("new-030") == RowOutcome.REJECTED
    assert set(outcomes.values()) == {RowOutcome.ACCEPTED}
    bad = BulkRow.objects.get(job=job, item_id="new-030")
    assert "invalid-fields" in bad.outcome_error
    assert BulkBatch.objects.filter(job=job, state=BatchState.SPLIT).count() >= 5
    assert len(sandbox_items(braze, "products")) == 10 + 49


def test_5xx_and_timeouts_are_retried_until_the_job_finishes_and_resends_are_counted(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    fast_retries: None,
) -> None:
    settings.BRAZE_READ_TIMEOUT = 0.3
    from console.braze import close_client

    close_client()
    job = approve(make_job(_csv(range(400))), editor=editor, reviewer=reviewer)
    since = time.time()
    braze.admin.set_injection(
        error_rate=0.3,
        timeout_rate=0.3,
        timeout_mode="hold",
        timeout_seconds=0.6,
        groups=["catalog_items_async"],
    )
    job = drain(job, timeout=90)
    braze.admin.set_injection(error_rate=0, timeout_rate=0)
    assert job.state == JobState.DONE
    writes = accepted_item_writes(braze, since)
    ids = {f"new-{n:05d}" for n in range(400)}
    # Nothing lost: every item is in a request the referee accepted.
    assert ids <= set(writes)
    assert set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True)) == {"accepted"}
    progress = bulk_job_progress(job=job)
    assert progress.retries + progress.resends > 0
    # Every item the referee saw more than once was counted as re-sent by the console.
    twice = {i for i, n in writes.items() if n > 1}
    counted = set(BulkRow.objects.filter(job=job, resends__gt=0).values_list("item_id", flat=True))
    assert twice <= counted
    held = sandbox_items(braze, "products")
    assert ids <= set(held)


def test_several_batches_at_a_time_through_5xx_and_timeouts_lose_nothing_and_count_resends(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    fast_retries: None,
) -> None:
    settings.BRAZE_READ_TIMEOUT = 0.3
    from console.braze import close_client

    close_client()
    job = approve(make_job(_csv(range(400))), editor=editor, reviewer=reviewer)
    since = time.time()
    braze.admin.set_injection(
        error_rate=0.3,
        timeout_rate=0.3,
        timeout_mode="hold",
        timeout_seconds=0.6,
        groups=["catalog_items_async"],
    )
    job = drain_many(job, per_claim=4, timeout=90)
    braze.admin.set_injection(error_rate=0, timeout_rate=0)
    assert job.state == JobState.DONE
    writes = accepted_item_writes(braze, since)
    ids = {f"new-{n:05d}" for n in range(400)}
    assert ids <= set(writes)
    assert set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True)) == {"accepted"}
    assert bulk_job_progress(job=job).retries + bulk_job_progress(job=job).resends > 0
    twice = {i for i, n in writes.items() if n > 1}
    counted = set(BulkRow.objects.filter(job=job, resends__gt=0).values_list("item_id", flat=True))
    assert twice <= counted
    # Every request that reached the referee is counted once on its batch.
    attempts = sum(BulkBatch.objects.filter(job=job).values_list("attempts", flat=True))
    requests = referee_log_settled(
        braze, since=since, group="catalog_items_async", expected=attempts, hold=0.6
    )
    assert attempts == len(requests)
    assert ids <= set(sandbox_items(braze, "products"))


def test_a_claim_of_several_takes_the_due_batches_in_order_with_leases_a_step_apart(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, settings: Settings
) -> None:
    job = approve(make_job(_csv(range(180))), editor=editor, reviewer=reviewer)
    before = timezone.now()
    claims = batches_claim(limit=3)
    assert [BulkBatch.objects.get(pk=c.batch_id).seq for c in claims] == [1, 2, 3]
    assert [c.items[0][0] for c in claims] == ["new-00000", "new-00050", "new-00100"]
    assert claims[1].items[1] == ("new-00051", {"name": "Item 51", "price": 51})
    assert {(c.prev_state, c.send_as, c.op, c.claim_no) for c in claims} == {
        ("pending", "create", "create", 1)
    }
    lease, step = lease_seconds(), settings.BULK_CLAIM_LEASE_STEP
    # Sent one after another: each holds its lease a step longer than the one before it.
    assert [c.lease for c in claims] == [lease, lease + step, lease + 2 * step]
    for claim in claims:
        batch = BulkBatch.objects.get(pk=claim.batch_id)
        assert batch.state == BatchState.IN_FLIGHT
        assert batch.lease_until is not None
        held = (batch.lease_until - before).total_seconds()
        assert claim.lease <= held < claim.lease + 5
    job.refresh_from_db()
    assert job.last_dispatch_at is not None
    assert job.last_dispatch_at >= before
    rest = batches_claim(limit=3)
    assert [(BulkBatch.objects.get(pk=c.batch_id).seq, len(c.items)) for c in rest] == [(4, 30)]
    assert rest[0].lease == lease
    assert batches_claim(limit=3) == []


def test_claims_of_several_take_turns_between_running_jobs(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    first = approve(make_job(_csv(range(200))), editor=editor, reviewer=reviewer)
    second = approve(make_job(_csv(range(500, 700))), editor=editor, reviewer=reviewer)
    jobs = [{c.job_id for c in batches_claim(limit=2)} for _ in range(3)]
    assert len(jobs[0]) == 1
    assert jobs[1] != jobs[0]
    assert jobs[2] == jobs[0]
    assert {*jobs[0], *jobs[1]} == {first.pk, second.pk}


def test_accepted_claims_are_recorded_together_as_one_at_a_time_would(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    job = approve(make_job(_csv(range(150))), editor=editor, reviewer=reviewer)
    claims = batches_claim(limit=3)
    # The second's sender was presumed dead: the sweeper counted its request and made it in
    # doubt; the third was taken over by another sender since (a later claim).
    BulkBatch.objects.filter(pk=claims[1].batch_id).update(lease_until="2000-01-01T00:00:00Z")
    assert bulk_sweep().in_doubt == 1
    BulkBatch.objects.filter(pk=claims[2].batch_id).update(claim_no=F("claim_no") + 1)
    recorded = batches_record_accepted(claims=claims)
    assert [c.batch_id for c in recorded] == [claims[0].batch_id, claims[1].batch_id]
    first, second, third = (BulkBatch.objects.get(pk=c.batch_id) for c in claims)
    for batch in (first, second):
        assert (batch.state, batch.attempts, batch.http_status) == ("accepted", 1, 202)
        assert (batch.lease_until, batch.next_attempt_at, batch.resends) == (None, None, 0)
        assert batch.finished_at is not None
    assert third.state == BatchState.IN_FLIGHT
    rows = BulkRow.objects.filter(job=job)
    assert set(rows.filter(batch__in=[first, second]).values_list("outcome", "sends")) == {
        ("accepted", 1)
    }
    assert set(rows.filter(batch=third).values_list("outcome", "sends")) == {("pending", 0)}
    # The mirror shows what Braze was asked to hold, for the recorded batches only.
    mirrored = set(
        CatalogItem.objects.filter(catalog=job.catalog, item_id__startswith="new-").values_list(
            "item_id", flat=True
        )
    )
    assert mirrored == {f"new-{n:05d}" for n in range(100)}
    assert CatalogItem.objects.get(catalog=job.catalog, item_id="new-00060").data == {
        "name": "Item 60",
        "price": 60,
    }


def test_a_resend_and_a_retry_recorded_together_are_counted_as_such(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    job = approve(make_job(_csv(range(100))), editor=editor, reviewer=reviewer)
    first, second = BulkBatch.objects.filter(job=job).order_by("seq")
    BulkBatch.objects.filter(pk=first.pk).update(state=BatchState.IN_DOUBT, attempts=1)
    BulkRow.objects.filter(batch=first).update(sends=1)
    BulkBatch.objects.filter(pk=second.pk).update(state=BatchState.RETRY_WAIT, attempts=1)
    BulkRow.objects.filter(batch=second).update(sends=1)
    claims = batches_claim(limit=2)
    assert [c.prev_state for c in claims] == ["in_doubt", "retry_wait"]
    assert [c.send_as for c in claims] == ["replace", "create"]
    batches_record_accepted(claims=claims)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.attempts, first.resends, first.retries) == (2, 1, 0)
    assert (second.attempts, second.resends, second.retries) == (2, 0, 1)
    rows = BulkRow.objects.filter(job=job)
    assert set(rows.filter(batch=first).values_list("sends", "resends")) == {(2, 1)}
    assert set(rows.filter(batch=second).values_list("sends", "resends")) == {(2, 0)}
    assert bulk_job_progress(job=job).items_resent == 50


def test_a_create_in_doubt_is_resent_as_a_replace(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    job = approve(make_job(_csv(range(3))), editor=editor, reviewer=reviewer)
    claim = batch_claim()
    assert claim is not None
    assert claim.send_as == "create"
    # The sender dies after claiming (and perhaps sending): its lease runs out.
    BulkBatch.objects.filter(pk=claim.batch_id).update(lease_until="2000-01-01T00:00:00Z")
    assert bulk_sweep().in_doubt == 1
    since = time.time()
    job = drain(job)
    batch = BulkBatch.objects.get(pk=claim.batch_id)
    assert (batch.state, batch.send_as, batch.resends) == (BatchState.ACCEPTED, "replace", 1)
    assert [e["method"] for e in braze.admin.log(since=since, group="catalog_items_async")] == [
        "PUT"
    ]
    assert set(BulkRow.objects.filter(job=job).values_list("resends", flat=True)) == {1}
    assert bulk_job_progress(job=job).items_resent == 3


def test_429s_from_quota_used_elsewhere_wait_for_the_reset_and_are_not_resends(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, settings: Settings
) -> None:
    from console.braze import close_client

    # The console is set by hand far above what the workspace has (an override, so what Braze
    # announces does not replace it), and another integration takes half of a tiny quota:
    # Braze answers some requests 429.
    groups = {**settings.BRAZE_RATE_LIMITS["groups"], "catalog_items_async": (100, 60.0)}
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "groups": groups,
        "overrides": ["catalog_items_async"],
    }
    close_client()
    braze.admin.set_limit("catalog_items_async", 4, window_seconds=60)
    braze.admin.set_clock_scale(30)  # 2-second windows
    braze.admin.set_external_consumer("catalog_items_async", 0.5)
    since = time.time()
    job = approve(make_job(_csv(range(300))), editor=editor, reviewer=reviewer)
    job = drain(job, timeout=40)
    braze.admin.clear_external_consumers()
    assert job.state == JobState.DONE
    batches = BulkBatch.objects.filter(job=job)
    refused = [
        e
        for e in braze.admin.log(since=since, group="catalog_items_async")
        if e["status"] == 429 and not e.get("external")
    ]
    # Every 429 the referee sent is counted on its batch, and none is a re-send.
    assert sum(b.rate_limited for b in batches) == len(refused)
    assert sum(b.resends for b in batches) == 0
    assert set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True)) == {"accepted"}
    assert len(accepted_item_writes(braze, since)) == 300


def test_error_rows_and_unchanged_rows_are_never_sent(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, shop: Catalog
) -> None:
    from tests.factories import catalog_item_create

    catalog_item_create(shop, "same-1", name="Same", price=1)
    since = time.time()
    content = b"id,name,price\nsame-1,Same,1\nbad id,x,1\nnew-1,ok,cheap\nnew-2,ok,2\n"
    job = approve(make_job(content), editor=editor, reviewer=reviewer)
    drain(job)
    assert set(accepted_item_writes(braze, since)) == {"new-2"}
