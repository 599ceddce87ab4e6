"""Senders against the sandbox: batches of 50, every item landing, the limit group's room,
and sending jobs paused, cancelled or over the same items."""

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from catalog_bulk.models import BatchState, BulkBatch, BulkRow, JobState
from catalog_bulk.outbox import batch_claim
from catalogs.models import Catalog, CatalogItem
from console.audit.models import AuditEntry
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.helpers import accepted_item_writes, approve, drain, sandbox_items
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
        20,
        50,
        50,
    ]
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
        "name": "Item 7",
        "price": 7,
    }
    assert set(BulkRow.objects.filter(job=job).values_list("outcome", flat=True)) == {"accepted"}
    actions = set(
        AuditEntry.objects.filter(resource_type="catalog_bulk").values_list("action", flat=True)
    )
    assert {
        "catalog_bulk.uploaded",
        "catalog_bulk.approved_start",
        "catalog_bulk.finished",
    } <= actions


def test_pause_stops_claims_and_resume_finishes(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    from catalog_bulk.services import bulk_job_pause, bulk_job_resume

    job = approve(make_job(_csv(range(120))), editor=editor, reviewer=reviewer)
    bulk_job_pause(actor=editor, job=job)
    assert batch_claim() is None
    bulk_job_resume(actor=editor, job=job)
    assert drain(job).state == JobState.DONE


def test_cancel_reports_unsent_items_as_cancelled(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    from catalog_bulk.senders import batch_send
    from catalog_bulk.services import bulk_job_cancel

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

    from catalog_bulk.services import _OVERLAP_SQL

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

    from catalog_bulk.services import _BATCH_SQL

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
    from catalog_bulk import senders
    from console.braze import get_limiter

    settings.BULK_SENDER_STEP_SECONDS = 0.1
    job = approve(make_job(_csv(range(200))), editor=editor, reviewer=reviewer)
    enqueued: list[float] = []
    monkeypatch.setattr(
        senders, "_enqueue_sender", lambda slot, token, countdown=0.0: enqueued.append(countdown)
    )
    limiter = get_limiter()
    limiter.block(group="catalog_items_async", seconds=3.0)  # past the 2 s wait budget
    limiter.redis.set(senders._slot_key(0), "token-0", px=10_000)
    started = time.monotonic()
    try:
        senders.sender_step(slot=0, token="token-0")
    finally:
        limiter.redis.delete(senders._slot_key(0), limiter.keys("catalog_items_async").blocked)
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
    from catalog_bulk.services import bulk_job_propose
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


def _full_after(client: Any, sends: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Braze client, its limit group full from its n-th request on (nothing sent)."""
    from console.braze.errors import BrazeRateLimited

    real = client.catalog_items_bulk_create
    left = [sends]

    def create(**kwargs: Any) -> None:
        if left[0] <= 0:
            raise BrazeRateLimited(
                "full", group="catalog_items_async", retry_at=time.time() + 3, from_braze=False
            )
        left[0] -= 1
        real(**kwargs)

    monkeypatch.setattr(client, "catalog_items_bulk_create", create)
    return client


def test_claims_not_sent_because_the_group_is_full_go_back_unsent_and_uncounted(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from catalog_bulk.outbox import batches_claim
    from catalog_bulk.senders import batches_send, bulk_client

    since = time.time()
    job = approve(make_job(_csv(range(200))), editor=editor, reviewer=reviewer)
    claims = batches_claim(limit=4)
    client = _full_after(bulk_client(), 1, monkeypatch)
    sent = batches_send(claims=claims, claimed_at=time.monotonic(), client=client)
    assert sent.group_full_for is not None
    assert 0 < sent.group_full_for <= 3
    batches = list(BulkBatch.objects.filter(job=job).order_by("seq"))
    assert [b.state for b in batches] == ["accepted", "pending", "pending", "pending"]
    assert [b.attempts for b in batches] == [1, 0, 0, 0]
    assert [b.lease_until for b in batches[1:]] == [None, None, None]
    # The one the limiter refused waits for the group's room; the others were never tried.
    assert batches[1].next_attempt_at is not None
    assert len(accepted_item_writes(braze, since)) == 50
    assert set(BulkRow.objects.filter(batch__in=batches[1:]).values_list("sends", flat=True)) == {0}
    assert drain(job).state == JobState.DONE
    writes = accepted_item_writes(braze, since)
    assert len(writes) == 200
    assert set(writes.values()) == {1}


def test_a_sender_claims_what_its_share_of_the_limit_sends_in_a_quarter_second(
    braze: SandboxHandle, settings: Settings
) -> None:
    from catalog_bulk.senders import claim_size
    from console.braze import close_client

    settings.BULK_SENDERS = 2
    settings.BULK_CLAIM_SECONDS = 0.25
    settings.BULK_CLAIM_BATCHES = 16
    # The reference limits (100 requests a minute): one batch at a time, as ever; Braze's
    # current ones (16,000): the most a claim takes.
    for limit, expected in ((100, 1), (16_000, 16), (1_200, 2)):
        groups = {**settings.BRAZE_RATE_LIMITS["groups"], "catalog_items_async": (limit, 60.0)}
        settings.BRAZE_RATE_LIMITS = {
            **settings.BRAZE_RATE_LIMITS,
            "groups": groups,
            "overrides": ["catalog_items_async"],
            "margin_seconds": 0,
        }
        close_client()
        assert claim_size() == expected


def test_any_answer_but_a_202_ends_the_round_and_the_rest_go_back_unsent(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    fast_retries: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from catalog_bulk.outbox import batches_claim
    from catalog_bulk.senders import batches_send, bulk_client
    from console.braze.errors import BrazeServerError

    job = approve(make_job(_csv(range(200))), editor=editor, reviewer=reviewer)
    client = bulk_client()
    real, calls = client.catalog_items_bulk_create, []

    def create(**kwargs: Any) -> None:  # Braze fails the second request (500)
        calls.append(1)
        if len(calls) == 2:
            raise BrazeServerError("down", status=500, maybe_applied=False)
        real(**kwargs)

    monkeypatch.setattr(client, "catalog_items_bulk_create", create)
    batches_send(claims=batches_claim(limit=4), claimed_at=time.monotonic(), client=client)
    assert len(calls) == 2
    batches = list(BulkBatch.objects.filter(job=job).order_by("seq"))
    assert [(b.state, b.attempts) for b in batches] == [
        ("accepted", 1),
        ("retry_wait", 1),
        ("pending", 0),
        ("pending", 0),
    ]


def test_claims_whose_lease_has_no_room_left_for_a_request_go_back_unsent(
    make_job: MakeJob, editor: User, reviewer: User, braze: SandboxHandle, settings: Settings
) -> None:
    from catalog_bulk.outbox import LEASE_SLACK_SECONDS, batches_claim
    from catalog_bulk.senders import batches_send

    settings.BULK_CLAIM_LEASE_STEP = 0.5
    since = time.time()
    job = approve(make_job(_csv(range(150))), editor=editor, reviewer=reviewer)
    claims = batches_claim(limit=3)
    # The sender was held up since it claimed (a slow database, a stopped process): a request
    # and half the slack to record it no longer fit in the first claim's lease. It and the
    # ones after it (kept in order) go back, and nothing is sent.
    held_up = LEASE_SLACK_SECONDS / 2 + 0.2
    batches_send(claims=claims, claimed_at=time.monotonic() - held_up)
    batches = BulkBatch.objects.filter(job=job).order_by("seq")
    assert (
        list(batches.values_list("state", "attempts", "lease_until")) == [("pending", 0, None)] * 3
    )
    assert accepted_item_writes(braze, since) == {}
