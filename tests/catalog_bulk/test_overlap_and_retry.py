"""Jobs over the same items never run at once, and a late retry is checked against the mirror.

Start, resume and "Send failed batches again" take one lock per catalog before they look for
an overlapping job, so two of them deciding at the same moment cannot both miss each other.
A retry long after its job (or after a newer job touched its items) diffs its items against
the mirror again; when any changed, sending them needs another person's approval.
"""

import contextlib
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from catalog_bulk import services
from catalog_bulk.models import BatchState, BulkBatch, BulkJob, BulkRow, JobState, RowOutcome
from catalog_bulk.senders import bulk_job_finish_if_done
from catalog_bulk.services import (
    BulkError,
    bulk_job_cancel,
    bulk_job_pause,
    bulk_job_propose,
    bulk_job_resume,
    bulk_job_retry_failed,
    bulk_sweep,
)
from catalogs.models import Catalog, CatalogItem
from console.audit.models import AuditEntry
from console.changes.models import ChangeState
from console.changes.services import (
    FourEyesViolation,
    change_request_apply,
    change_request_approve,
    change_request_reject,
)
from console.roles import Role
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.helpers import approve

pytestmark = pytest.mark.django_db

PRICES = b"id,price\nsku-1,12\nsku-2,6\n"


def _fail_everything(job: BulkJob, *, ago: timedelta = timedelta(0)) -> BulkJob:
    """Every batch failed (Braze down past the last attempt) `ago`, and the job closed."""
    when = timezone.now() - ago
    BulkBatch.objects.filter(job=job).update(state=BatchState.FAILED, finished_at=when)
    BulkRow.objects.filter(job=job, batch__isnull=False).update(outcome=RowOutcome.FAILED)
    assert bulk_job_finish_if_done(job_id=job.pk)
    job.refresh_from_db()
    return job


def _states(job: BulkJob) -> set[str]:
    return set(BulkBatch.objects.filter(job=job).values_list("state", flat=True))


def _mirror_price(catalog: Catalog, item_id: str, price: int) -> None:
    """The mirror learns that someone changed the item in Braze (a sync pass saw it)."""
    item = CatalogItem.objects.get(catalog=catalog, item_id=item_id)
    item.data = {**item.data, "price": price}
    item.save(update_fields=["data"])


# --- two jobs deciding at the same moment -----------------------------------------------------


@pytest.mark.django_db(transaction=True)  # two real transactions on two connections
def test_two_overlapping_jobs_approved_together_do_not_both_run(
    make_job: MakeJob, editor: User, reviewer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_job(PRICES), make_job(b"id,price\nsku-2,7\n")
    requests = []
    for job in (first, second):
        cr = bulk_job_propose(actor=editor, job=job)
        change_request_approve(actor=reviewer, change_request=cr)
        requests.append(cr.pk)

    # Both apply steps reach the overlap check together unless something makes one wait for
    # the other; the barrier lets them (it gives up after 3 s when one is held elsewhere).
    barrier = threading.Barrier(2, timeout=3)
    check = services._overlapping_job

    def meet_then_check(job: BulkJob, **kwargs: Any) -> int | None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return check(job, **kwargs)

    monkeypatch.setattr(services, "_overlapping_job", meet_then_check)
    errors: list[BaseException] = []

    def apply(cr_id: int) -> None:
        try:
            change_request_apply(change_request_id=cr_id, actor_id=reviewer.pk)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=apply, args=(cr_id,)) for cr_id in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors

    first.refresh_from_db()
    second.refresh_from_db()
    by_state = {first.state: first, second.state: second}
    assert set(by_state) == {JobState.RUNNING, JobState.WAITING}
    # The one that waits names the one that runs (the job page says so).
    assert by_state[JobState.WAITING].waiting_for_id == by_state[JobState.RUNNING].pk


def test_jobs_waiting_behind_the_same_job_do_not_wait_for_each_other_for_ever(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    first = approve(make_job(PRICES), editor=editor, reviewer=reviewer)
    second = approve(make_job(b"id,price\nsku-1,13\n"), editor=editor, reviewer=reviewer)
    third = approve(make_job(b"id,price\nsku-1,14\n"), editor=editor, reviewer=reviewer)
    assert (second.state, third.state) == (JobState.WAITING, JobState.WAITING)

    bulk_job_cancel(actor=editor, job=first)
    bulk_sweep()

    second.refresh_from_db()
    third.refresh_from_db()
    # The first in line starts; the other now waits for it.
    assert (second.state, third.state) == (JobState.RUNNING, JobState.WAITING)
    assert third.waiting_for_id == second.pk


def test_resuming_a_paused_job_does_not_queue_it_behind_a_job_that_waits_for_it(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    first = approve(make_job(PRICES), editor=editor, reviewer=reviewer)
    bulk_job_pause(actor=editor, job=first)
    second = approve(make_job(b"id,price\nsku-1,13\n"), editor=editor, reviewer=reviewer)
    assert (second.state, second.waiting_for_id) == (JobState.WAITING, first.pk)

    first = bulk_job_resume(actor=editor, job=first)
    bulk_sweep()

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == JobState.RUNNING
    assert (second.state, second.waiting_for_id) == (JobState.WAITING, first.pk)


# --- send failed batches again ---------------------------------------------------------------


def test_a_retry_while_a_newer_job_on_the_same_items_runs_is_refused_and_names_it(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    old = _fail_everything(approve(make_job(PRICES), editor=editor, reviewer=reviewer))
    newer = approve(make_job(b"id,price\nsku-1,20\n"), editor=editor, reviewer=reviewer)
    assert newer.state == JobState.RUNNING

    with pytest.raises(BulkError, match=rf"job #{newer.pk}"):
        bulk_job_retry_failed(actor=editor, job=old)

    old.refresh_from_db()
    assert old.state == JobState.DONE
    assert _states(old) == {BatchState.FAILED}  # nothing will be sent


def test_a_retry_soon_after_with_nothing_else_on_the_items_is_sent_at_once(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job = _fail_everything(approve(make_job(PRICES), editor=editor, reviewer=reviewer))

    job = bulk_job_retry_failed(actor=editor, job=job)

    assert job.state == JobState.RUNNING
    assert job.retry_request is None
    assert _states(job) == {BatchState.IN_DOUBT}


def test_a_late_retry_whose_items_are_unchanged_in_the_mirror_is_sent_at_once(
    make_job: MakeJob, editor: User, reviewer: User, settings: Settings
) -> None:
    settings.BULK_RETRY_REDIFF_AFTER_SECONDS = 3600
    job = approve(make_job(PRICES), editor=editor, reviewer=reviewer)
    job = _fail_everything(job, ago=timedelta(hours=3))

    job = bulk_job_retry_failed(actor=editor, job=job)

    assert job.state == JobState.RUNNING
    assert job.retry_request is None
    assert _states(job) == {BatchState.IN_DOUBT}
    [entry] = AuditEntry.objects.filter(action="catalog_bulk.retry_failed")
    assert entry.data["rediffed"] is True
    assert entry.data["changed_items"] == 0


def test_a_late_retry_with_an_item_changed_since_the_preview_needs_another_persons_approval(
    make_job: MakeJob, editor: User, reviewer: User, catalog: Catalog, settings: Settings
) -> None:
    settings.BULK_RETRY_REDIFF_AFTER_SECONDS = 3600
    job = approve(make_job(PRICES), editor=editor, reviewer=reviewer)
    job = _fail_everything(job, ago=timedelta(hours=3))
    _mirror_price(catalog, "sku-1", 11)  # someone set 11 in the dashboard meanwhile

    job = bulk_job_retry_failed(actor=editor, job=job)

    # Nothing is sent yet: the job stays closed and its batches failed.
    assert job.state == JobState.DONE
    assert _states(job) == {BatchState.FAILED}
    cr = job.retry_request
    assert cr is not None
    assert cr.state == ChangeState.PENDING
    assert cr.pk != job.change_request_id  # a new request: the first approval does not cover it
    assert cr.payload["changes"] == [
        {
            "line": 2,
            "item_id": "sku-1",
            "op": "update",
            "field": "price",
            "at_preview": 10,
            "now": 11,
            "sent": 12,
        },
    ]
    with pytest.raises(BulkError, match=rf"#{cr.pk}"):
        bulk_job_retry_failed(actor=editor, job=job)  # asked once is enough
    with pytest.raises(FourEyesViolation):
        change_request_approve(actor=editor, change_request=cr)

    change_request_approve(actor=reviewer, change_request=cr)
    change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    job.refresh_from_db()
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert job.state == JobState.RUNNING
    assert job.retry_request is None
    assert _states(job) == {BatchState.IN_DOUBT}
    [entry] = AuditEntry.objects.filter(action="catalog_bulk.retry_failed")
    assert entry.data["change_request"] == cr.pk


def test_a_retry_after_a_newer_job_changed_its_items_needs_approval_however_soon(
    make_job: MakeJob, editor: User, reviewer: User, catalog: Catalog, settings: Settings
) -> None:
    settings.BULK_RETRY_REDIFF_AFTER_SECONDS = 3600
    old = _fail_everything(approve(make_job(PRICES), editor=editor, reviewer=reviewer))
    newer = approve(make_job(b"id,price\nsku-2,30\n"), editor=editor, reviewer=reviewer)
    # The newer job sent its item and finished: the mirror holds what it sent.
    BulkBatch.objects.filter(job=newer).update(state=BatchState.ACCEPTED)
    _mirror_price(catalog, "sku-2", 30)
    assert bulk_job_finish_if_done(job_id=newer.pk)

    old = bulk_job_retry_failed(actor=editor, job=old)

    assert old.state == JobState.DONE
    assert _states(old) == {BatchState.FAILED}
    assert old.retry_request is not None
    assert [c["item_id"] for c in old.retry_request.payload["changes"]] == ["sku-2"]


def test_an_approved_retry_is_not_sent_when_the_mirror_moved_again_after_the_approval(
    make_job: MakeJob, editor: User, reviewer: User, catalog: Catalog, settings: Settings
) -> None:
    settings.BULK_RETRY_REDIFF_AFTER_SECONDS = 0  # every retry is checked
    job = _fail_everything(approve(make_job(PRICES), editor=editor, reviewer=reviewer))
    _mirror_price(catalog, "sku-1", 11)
    cr = bulk_job_retry_failed(actor=editor, job=job).retry_request
    assert cr is not None
    change_request_approve(actor=reviewer, change_request=cr)
    _mirror_price(catalog, "sku-1", 15)  # after the approval, before the apply

    change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    cr.refresh_from_db()
    job.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    assert "changed again" in cr.error_message
    assert _states(job) == {BatchState.FAILED}


def test_a_rejected_retry_sends_nothing_and_a_person_may_ask_again(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    catalog: Catalog,
    settings: Settings,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.BULK_RETRY_REDIFF_AFTER_SECONDS = 0
    job = _fail_everything(approve(make_job(PRICES), editor=editor, reviewer=reviewer))
    _mirror_price(catalog, "sku-1", 11)
    cr = bulk_job_retry_failed(actor=editor, job=job).retry_request
    assert cr is not None

    with django_capture_on_commit_callbacks(execute=True):
        change_request_reject(actor=reviewer, change_request=cr, comment="11 is right")

    job.refresh_from_db()
    assert job.retry_request is None
    assert job.state == JobState.DONE
    assert _states(job) == {BatchState.FAILED}
    again = bulk_job_retry_failed(actor=editor, job=job).retry_request
    assert again is not None
    assert again.pk != cr.pk


def test_the_job_page_shows_the_retry_waiting_for_approval_with_the_differences(
    make_job: MakeJob,
    editor: User,
    reviewer: User,
    catalog: Catalog,
    settings: Settings,
    client_for: Any,
) -> None:
    settings.BULK_RETRY_REDIFF_AFTER_SECONDS = 0
    job = _fail_everything(approve(make_job(PRICES), editor=editor, reviewer=reviewer))
    _mirror_price(catalog, "sku-1", 11)
    client = client_for(Role.EDITOR)
    url = reverse("catalog_bulk:job", args=[catalog.name, job.pk])

    response = client.post(
        reverse("catalog_bulk:control", args=[catalog.name, job.pk]),
        {"action": "retry"},
        follow=True,
    )

    job.refresh_from_db()
    cr = job.retry_request
    assert cr is not None
    html = response.content.decode()
    assert f"change request #{cr.pk}" in html.lower()
    assert "changed since the preview" in html
    assert _states(job) == {BatchState.FAILED}
    page = client.get(url).content.decode()
    assert f'href="{cr.get_absolute_url()}"' in page
    # Item, field, the value previewed, the value now, the value that would be sent.
    assert "<td>sku-1</td><td>price</td><td>10</td><td>11</td><td>12</td>" in page
    assert "Send failed batches again</button>" not in page  # asked once is enough
    # The reviewer sees the same differences on the change request.
    review = client_for(Role.REVIEWER).get(cr.get_absolute_url()).content.decode()
    assert "in the mirror now: 11; to be sent: 12" in review
    assert "replacing the ones Braze holds now" in review
