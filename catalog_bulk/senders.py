"""Senders: short Celery tasks that send claimed batches to Braze and hand over.

A sender claims batches from the outbox (outbox.py): one at a time at the reference limits,
several in one round trip when its share of the limit group allows. It sends them one after
another with no transaction open, records the answers (the accepted ones together), and after
a few seconds hands its slot to a successor task. Each workspace has its own senders
(``BULK_SENDERS`` slots each), which claim only that workspace's batches and send with its
client: its limits are its own, so one workspace's full group never holds back another's
jobs. A Redis key per sender slot (renewed each step) tells the sweeper which slots lost
their task (a killed worker, a Redis flush), and it starts them again: the broker is only a
hint, PostgreSQL is the record.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog_bulk.models import OPEN_BATCH_STATES, BatchState, BulkBatch, BulkJob, JobState, RowOp
from catalog_bulk.outbox import (
    LEASE_SLACK_SECONDS,
    Claim,
    batch_record,
    batch_totals,
    batches_claim,
    batches_record_accepted,
    batches_release,
    next_due_in,
    request_seconds,
)
from catalog_bulk.readback import readback_schedule
from catalog_bulk.states import PIPELINE_ACTOR, job_move
from catalogs.services import catalog_mirror_count_refresh
from console.audit import events
from console.braze import get_client, get_limiter
from console.braze.client import BrazeClient, RetryPolicy
from console.braze.errors import BrazeError, BrazeRateLimited, BrazeTimeout
from console.braze.limiter import Lane
from console.celery import task_enqueue
from console.metrics import held, held_flush
from console.workspaces import workspace_active, workspace_default, workspace_override

logger = logging.getLogger(__name__)

GROUP = "catalog_items_async"
_SLOT_KEY = "catalogs:bulk:sender:{slot}"
_WORKSPACE_SLOT_KEY = "catalogs:bulk:sender:{workspace}:{slot}"
# Senders with nothing due sleep at most this long before looking again.
_IDLE_MAX_SECONDS = 5.0


def bulk_client() -> BrazeClient:
    """The Braze client for bulk sends: no retries inside the call, the pipeline owns them."""
    lane: Lane = "background" if settings.BULK_LIMITER_LANE == "background" else "interactive"
    client = get_client(lane=lane, max_wait=settings.BULK_MAX_INLINE_WAIT)
    return client.with_options(retry=RetryPolicy(attempts=1, rate_limited_attempts=1))


def _send(client: BrazeClient, claim: Claim) -> None:
    if claim.full_rate_limit:
        client = client.with_options(background_share=1.0)
    name = claim.catalog_name
    if claim.send_as == RowOp.DELETE:
        client.catalog_items_bulk_delete(catalog_name=name, item_ids=[i for i, _ in claim.items])
        return
    items = [{"id": item_id, **(payload or {})} for item_id, payload in claim.items]
    if claim.send_as == RowOp.CREATE:
        client.catalog_items_bulk_create(catalog_name=name, items=items)
    elif claim.send_as == RowOp.REPLACE:
        client.catalog_items_bulk_replace(catalog_name=name, items=items)
    else:
        client.catalog_items_bulk_edit(catalog_name=name, items=items)


@dataclass(frozen=True)
class Sent:
    state: str  # the batch's new state, as batch_record returns it
    # Seconds until the limit group has room again, when it had none for this batch.
    group_full_for: float | None = None


def _send_one(client: BrazeClient, claim: Claim) -> tuple[BrazeError | None, float | None]:
    """Send one claimed batch (no transaction is open): the error, if any, and how long the
    limit group is full when that is why it was not sent."""
    try:
        _send(client, claim)
    except BrazeError as exc:
        if isinstance(exc, BrazeRateLimited):
            return exc, max(0.0, exc.retry_at - time.time())
        return exc, None
    except Exception as exc:  # an unknown failure mid-request: the batch may have landed
        logger.exception("bulk batch %s: unexpected error while sending", claim.batch_id)
        return BrazeTimeout(f"Unexpected error while sending ({type(exc).__name__})."), None
    return None, None


def batch_send(*, claim: Claim, client: BrazeClient | None = None) -> Sent:
    """Send one claimed batch (no transaction is open during the request) and record it."""
    error, full_for = _send_one(client or bulk_client(), claim)
    return Sent(state=batch_record(claim=claim, error=error), group_full_for=full_for)


def batches_send(
    *, claims: list[Claim], claimed_at: float, client: BrazeClient | None = None
) -> Sent:
    """Send claimed batches one after another and record their answers: the accepted ones
    together (one statement, batches_record_accepted), any other as batch_send does.

    A claim is sent only while a whole request, and half the lease's slack to record its
    answer, fit in its lease; accepted answers are recorded before the next request could
    outlast the earliest one's lease. Any answer but a 202 ends the round: the group may be
    full, the job paused (storage), or Braze failing, and the claims not sent go back as they
    were, unsent and uncounted. ``claimed_at`` is ``time.monotonic()`` taken before the claim.
    Returns the last batch's state and, when the group was full, for how long.
    """
    client = client or bulk_client()
    budget = request_seconds() + LEASE_SLACK_SECONDS / 2
    accepted: list[Claim] = []  # answered 202, not yet recorded
    state, full_for = "", None

    def record_accepted() -> None:
        # The answers are counted before their batches are recorded: a scrape never shows
        # more batches accepted than answers.
        held_flush()
        batches_record_accepted(claims=accepted)
        accepted.clear()

    # The round's metrics in one round trip to Redis, not one per request.
    with held():
        for place, claim in enumerate(claims):
            elapsed = time.monotonic() - claimed_at
            if accepted and elapsed + budget > accepted[0].lease:
                record_accepted()
            if elapsed + budget > claim.lease:
                batches_release(claims=claims[place:])
                break
            error, full_for = _send_one(client, claim)
            if error is None:
                accepted.append(claim)
                state = BatchState.ACCEPTED
                continue
            # The accepted before it first, so the mirror follows the order they were sent in.
            record_accepted()
            state = batch_record(claim=claim, error=error)
            batches_release(claims=claims[place + 1 :])
            break
        record_accepted()
    return Sent(state=state, group_full_for=full_for)


def claim_size() -> int:
    """How many batches a sender claims at once: what its share of the limit group lets it
    send in BULK_CLAIM_SECONDS, at least one and at most BULK_CLAIM_BATCHES.

    At the reference limits (100 requests a minute) that is one, as it always was; at
    Braze's current ones (16,000 a minute) or with limits off, a claim round trip carries
    several batches.
    """
    limiter = get_limiter()
    rate = limiter.limit(GROUP) / max(limiter.limits.window(GROUP), 1e-6)
    share = rate / max(settings.BULK_SENDERS, 1) * settings.BULK_CLAIM_SECONDS
    return max(1, min(settings.BULK_CLAIM_BATCHES, int(share)))


def bulk_job_finish_if_done(*, job_id: int) -> bool:
    """Close a running (or paused) job whose batches are all settled."""
    with transaction.atomic():
        job = (
            BulkJob.objects.select_for_update(skip_locked=True)
            .select_related("catalog")
            .filter(pk=job_id, state__in=(JobState.RUNNING, JobState.PAUSED))
            .first()
        )
        if job is None:
            return False
        if BulkBatch.objects.filter(job=job, state__in=OPEN_BATCH_STATES).exists():
            return False
        catalog_mirror_count_refresh(catalog_id=job.catalog_id)
        totals = batch_totals(job)
        job_move(
            job,
            JobState.DONE,
            actor=PIPELINE_ACTOR,
            action=events.CATALOG_BULK_FINISHED,
            data=totals,
            finished_at=timezone.now(),
        )
        readback_schedule(job=job, accepted=totals["items_accepted"])
    return True


# --- sender slots --------------------------------------------------------------------------


def _redis() -> Any:
    return get_limiter().redis


def _slot_key(slot: int) -> str:
    """The slot's key in the workspace being worked in. The default workspace keeps the key
    of the time before workspaces, so senders running across an upgrade stay valid."""
    workspace = workspace_active().key
    if workspace == workspace_default().key:
        return _SLOT_KEY.format(slot=slot)
    return _WORKSPACE_SLOT_KEY.format(workspace=workspace, slot=slot)


def _ttl_ms() -> int:
    return int(settings.BULK_SENDER_TTL * 1000)


def _enqueue_sender(slot: int, token: str, countdown: float = 0.0) -> None:
    workspace = workspace_active().key

    def send() -> None:
        task_enqueue(
            "catalogs.bulk.tasks.bulk_send_task", slot, token, workspace, countdown=countdown
        )

    transaction.on_commit(send)


def senders_kick(*, workspace: str | None = None) -> int:
    """Start a sender in every slot of ``workspace`` (a key; default: the workspace being
    worked in) that has none; returns how many were started."""
    if workspace is not None and workspace != workspace_active().key:
        with workspace_override(workspace):
            return senders_kick()
    started = 0
    try:
        redis = _redis()
        for slot in range(settings.BULK_SENDERS):
            token = uuid.uuid4().hex
            if redis.set(_slot_key(slot), token, nx=True, px=_ttl_ms()):
                _enqueue_sender(slot, token)
                started += 1
    except Exception:  # Redis down: the next sweep tries again
        logger.warning("bulk senders: cannot reach Redis to start senders", exc_info=True)
    return started


def _finish_if_done(job_ids: set[int]) -> None:
    for job_id in sorted(job_ids):
        bulk_job_finish_if_done(job_id=job_id)
    job_ids.clear()


def sender_step(*, slot: int, token: str) -> str:
    """One sender task: send due batches for a few seconds, then hand the slot over.

    A task stays short (``BULK_SENDER_STEP_SECONDS``, a claim at most beyond it) so a
    killed worker costs little, yet does not pay a broker round trip for every batch.
    """
    redis = _redis()
    key = _slot_key(slot)
    if (redis.get(key) or b"").decode() != token:
        return "superseded"
    ends = time.monotonic() + settings.BULK_SENDER_STEP_SECONDS
    delay, result = 0.0, "sent"
    # Claims grow from one batch to the most the group lets this sender send at once, and
    # fall back to one when the group was full: a full group refuses every batch, and those
    # claimed with it would only be handed back.
    size, most = 1, claim_size()
    # Jobs this step sent batches of, checked for their end when the claims run short (their
    # last batches are out) and when the step ends, not after every claim; the sweeper
    # closes any other.
    sent_for: set[int] = set()
    while True:
        redis.pexpire(key, _ttl_ms())
        claimed_at = time.monotonic()
        claims = batches_claim(limit=size)
        if not claims:
            _finish_if_done(sent_for)
            due = next_due_in()
            if due is None:
                if (redis.get(key) or b"").decode() == token:
                    redis.delete(key)
                return "idle"
            delay, result = min(due, _IDLE_MAX_SECONDS), "waiting"
            break
        sent = batches_send(claims=claims, claimed_at=claimed_at)
        sent_for.update(claim.job_id for claim in claims)
        if len(claims) < size:
            _finish_if_done(sent_for)
        size = 1 if sent.group_full_for is not None else min(size * 2, most)
        if sent.group_full_for is not None:
            # Every other batch would be handed back the same way (and cost the database a
            # claim each): wait for the room instead, here, since a countdown task would
            # wait in some worker's memory and be lost with it if that worker is killed.
            pause = min(sent.group_full_for, _IDLE_MAX_SECONDS)
            redis.pexpire(key, _ttl_ms() + int(pause * 1000))
            time.sleep(pause)
        if time.monotonic() >= ends or (redis.get(key) or b"").decode() != token:
            break
    _finish_if_done(sent_for)
    if (redis.get(key) or b"").decode() != token:
        return "superseded"
    successor = uuid.uuid4().hex
    redis.set(key, successor, px=_ttl_ms() + int(delay * 1000))
    _enqueue_sender(slot, successor, countdown=delay)
    return result
