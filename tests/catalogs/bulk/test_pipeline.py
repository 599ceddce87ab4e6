"""The pipeline against the sandbox: batches of 50, split on 400, retries, in-doubt re-sends."""

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from catalogs.bulk.models import BatchState, BulkBatch, BulkRow, JobState, RowOutcome
from catalogs.bulk.pipeline import batch_claim, bulk_sweep
from catalogs.bulk.selectors import bulk_job_progress
from catalogs.models import Catalog, CatalogItem
from console.audit.models import AuditEntry
from tests.catalogs.bulk.conftest import MakeJob
from tests.catalogs.bulk.helpers import accepted_item_writes, approve, drain, sandbox_items
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


def test_it_sends_batches_of_at_most_50_and_every_item_lands(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    since = time.time()
    job = approve(make_job(_csv(range(120))), editor=editor, reviewer=reviewer)
    assert job.state == JobState.RUNNING
    assert sorted(BulkBatch.objects.filter(job=job).values_list("item_count", flat=True)) == [
        20, 50, 50,
    ]  # fmt: skip
    job = drain(job)
    assert job.state == JobState.DONE
    writes = accepted_item_writes(braze, since)
    assert len(writes) == 120
    assert set(writes.values()) == {1}
    held = sandbox_items(braze, "products")
    assert held["new-00007"]["name"] == "Item 7"
    assert held["new-00007"]["price"] == 7
    # The mirror reflects the result at once.
    assert CatalogItem.objects.get(catalog=job.catalog, item_id="new-00007").data == {
        "name": "Item 7", "price": 7,
    }  # fmt: skip
    assert set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True)) == {"accepted"}
    actions = set(AuditEntry.objects.filter(resource_type="catalog_bulk").values_list(
        "action", flat=True))  # fmt: skip
    assert {"catalog_bulk.uploaded", "catalog_bulk.approved_start",
            "catalog_bulk.finished"} <= actions  # fmt: skip


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
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, settings: Settings,
    fast_retries: None,
) -> None:  # fmt: skip
    settings.BRAZE_READ_TIMEOUT = 0.3
    from console.braze import close_client

    close_client()
    job = approve(make_job(_csv(range(400))), editor=editor, reviewer=reviewer)
    since = time.time()
    braze.admin.set_injection(
        error_rate=0.3, timeout_rate=0.3, timeout_mode="hold", timeout_seconds=0.6,
        groups=["catalog_items_async"],
    )  # fmt: skip
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
        e for e in braze.admin.log(since=since, group="catalog_items_async")
        if e["status"] == 429 and not e.get("external")
    ]  # fmt: skip
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


def test_pause_stops_claims_and_resume_finishes(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    from catalogs.bulk.services import bulk_job_pause, bulk_job_resume

    job = approve(make_job(_csv(range(120))), editor=editor, reviewer=reviewer)
    bulk_job_pause(actor=editor, job=job)
    assert batch_claim() is None
    bulk_job_resume(actor=editor, job=job)
    assert drain(job).state == JobState.DONE


def test_cancel_reports_unsent_items_as_cancelled(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    from catalogs.bulk.pipeline import batch_send
    from catalogs.bulk.services import bulk_job_cancel

    job = approve(make_job(_csv(range(120))), editor=editor, reviewer=reviewer)
    claim = batch_claim()
    assert claim is not None
    bulk_job_cancel(actor=editor, job=job)
    batch_send(claim=claim)  # the batch in flight finishes and is recorded
    outcomes: dict[str, Any] = {}
    for outcome in BulkRow.objects.filter(job=job).values_list("outcome", flat=True):
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes == {"accepted": 50, "cancelled": 70}
    assert batch_claim() is None


def test_two_jobs_on_the_same_items_do_not_run_at_once(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    first = approve(make_job(_csv(range(60))), editor=editor, reviewer=reviewer)
    second = approve(make_job(_csv(range(50, 80))), editor=editor, reviewer=reviewer)
    third = approve(make_job(_csv(range(100, 110))), editor=editor, reviewer=reviewer)
    assert (first.state, second.state, third.state) == ("running", "waiting", "running")
    assert second.waiting_for_id == first.pk
    drain(first)
    assert drain(second).state == JobState.DONE


def test_the_overlap_check_plans_no_join_whatever_the_statistics(db: None) -> None:
    # A join planned on statistics that did not know a new job's rows yet became a nested
    # loop over both jobs and held a start for minutes; a grouping cannot plan that way.
    from django.db import connection

    from catalogs.bulk.services import _OVERLAP_SQL

    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN " + _OVERLAP_SQL, {"jobs": [1, 2], "job": 1, "ops": ["create", "update"]}
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Join" not in plan
    assert "Nested Loop" not in plan


def test_the_batch_cut_plans_no_nested_loop_and_leaves_the_setting_as_it_was(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    # Statistics that do not know a new job's rows made the cut rows times batches: 7.9 s for
    # 25,000 items. Its plan is read where it runs, with the job's own parameters.
    from django.db import connection

    from catalogs.bulk.services import _BATCH_SQL

    plans: list[str] = []

    def explain_the_cut(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql == _BATCH_SQL:
            context["cursor"].execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain_the_cut):
        job = approve(make_job(_csv(range(120))), editor=editor, reviewer=reviewer)
    assert BulkBatch.objects.filter(job=job).count() == 3
    assert len(plans) == 1
    assert "Nested Loop" not in plans[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_nestloop')")
        assert cursor.fetchone() == ("on",)


def test_a_sender_facing_a_full_limit_group_waits_for_room_instead_of_handing_back_every_batch(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    from catalogs.bulk import pipeline
    from console.braze import get_limiter

    settings.BULK_SENDER_STEP_SECONDS = 0.1
    job = approve(make_job(_csv(range(200))), editor=editor, reviewer=reviewer)
    enqueued: list[float] = []
    monkeypatch.setattr(
        pipeline, "_enqueue_sender", lambda slot, token, countdown=0.0: enqueued.append(countdown)
    )
    limiter = get_limiter()
    limiter.block(group="catalog_items_async", seconds=3.0)  # past the 2 s wait budget
    limiter.redis.set(pipeline._slot_key(0), "token-0", px=10_000)
    started = time.monotonic()
    try:
        pipeline.sender_step(slot=0, token="token-0")
    finally:
        limiter.redis.delete(pipeline._slot_key(0), limiter.keys("catalog_items_async").blocked)
    assert time.monotonic() - started >= 2.5  # it waited in the task, the slot kept
    # One batch learnt the group was full; the other three were left alone meanwhile.
    assert BulkBatch.objects.filter(job=job, claim_no__gt=0).count() == 1
    assert BulkBatch.objects.filter(job=job, state=BatchState.PENDING).count() == 4
    assert enqueued == [0.0]  # and a successor goes on at once


@pytest.mark.parametrize(("full_rate_limit", "most_per_window"), [(False, 3), (True, 5)])
def test_a_job_keeps_to_background_work_s_share_unless_the_approver_allowed_the_whole_limit(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    settings: Settings,
    full_rate_limit: bool,
    most_per_window: int,
) -> None:
    from catalogs.bulk.services import bulk_job_propose
    from console.braze import close_client
    from console.changes.services import change_request_apply, change_request_approve

    # 5 requests per (scaled) minute of one real second; background work's share is 0.7.
    braze.admin.set_limit("catalog_items_async", 5, window_seconds=60)
    braze.admin.set_clock_scale(60)
    settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "clock_scale": 60.0}
    close_client()
    job = make_job(_csv(range(1000)))
    cr = bulk_job_propose(actor=editor, job=job)
    change_request_approve(actor=reviewer, change_request=cr, full_rate_limit=full_rate_limit)
    change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    since = time.time()
    job = drain(job, timeout=40)
    assert job.state == JobState.DONE
    stats = braze.admin.group_stats("catalog_items_async", since=since)
    assert stats["rate_limited"] == 0
    assert max(w["own_counted"] for w in stats["windows"]) == most_per_window
