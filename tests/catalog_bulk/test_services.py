"""A bulk job and its change request end together: cancel one, the other cannot go on."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from catalog_bulk.models import BulkBatch, BulkJob, JobState, RowOutcome
from catalog_bulk.services import (
    BulkError,
    bulk_job_cancel,
    bulk_job_propose,
    bulk_job_start,
    bulk_sweep,
)
from catalog_bulk.states import PIPELINE_ACTOR
from console.audit.models import AuditEntry
from console.changes.models import ChangeRequest, ChangeState
from console.changes.selectors import change_requests_awaiting_review
from console.changes.services import (
    change_request_apply,
    change_request_approve,
    change_request_cancel,
    change_request_reject,
)
from console.roles import Role
from tests.catalog_bulk.conftest import MakeJob
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db

CSV = b"id,name,price\nsku-2,Cup,6\nsku-3,Bowl,2\n"


def in_review(make_job: MakeJob, editor: User) -> tuple[BulkJob, ChangeRequest]:
    job = make_job(CSV)
    cr = bulk_job_propose(actor=editor, job=job)
    job.refresh_from_db()
    return job, cr


def audit_data(action: str) -> list[dict[str, object]]:
    return [e.data for e in AuditEntry.objects.filter(action=action).order_by("seq")]


def test_cancelling_a_job_in_review_withdraws_its_change_request_from_the_reviewers_queue(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job, cr = in_review(make_job, editor)
    assert cr in change_requests_awaiting_review(user=reviewer)

    bulk_job_cancel(actor=editor, job=job)

    job.refresh_from_db()
    cr.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert cr.state == ChangeState.CANCELLED
    assert cr not in change_requests_awaiting_review(user=reviewer)
    assert set(job.rows.values_list("outcome", flat=True)) == {RowOutcome.CANCELLED}
    [withdrawn] = audit_data("change_request.cancelled")
    assert withdrawn["comment"] == f"Bulk job #{job.pk} was cancelled."
    [cancelled] = audit_data("catalog_bulk.cancelled")
    assert cancelled["change_request_withdrawn"] == cr.pk


def test_an_approved_job_cancelled_before_it_starts_is_never_started(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job, cr = in_review(make_job, editor)
    change_request_approve(actor=reviewer, change_request=cr)  # its apply task is queued

    bulk_job_cancel(actor=editor, job=job)
    change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)  # the task runs

    cr.refresh_from_db()
    job.refresh_from_db()
    assert cr.state == ChangeState.CANCELLED
    assert job.state == JobState.CANCELLED
    assert not BulkBatch.objects.filter(job=job).exists()


def test_only_the_author_can_withdraw_the_request_by_cancelling_the_job(
    make_job: MakeJob, editor: User
) -> None:
    job, cr = in_review(make_job, editor)
    other_editor = user_with_role(Role.EDITOR)

    with pytest.raises(BulkError, match=f"Only the author of change request #{cr.pk}"):
        bulk_job_cancel(actor=other_editor, job=job)

    job.refresh_from_db()
    cr.refresh_from_db()
    assert (job.state, cr.state) == (JobState.REVIEW, ChangeState.PENDING)
    assert not audit_data("catalog_bulk.cancelled")


def test_cancelling_while_the_request_is_applied_cancels_the_started_job_instead(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job, cr = in_review(make_job, editor)
    change_request_approve(actor=reviewer, change_request=cr)
    ChangeRequest.objects.filter(pk=cr.pk).update(state=ChangeState.APPLYING)  # a worker is on it

    bulk_job_cancel(actor=editor, job=job)

    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLYING  # left to finish: it will find the job cancelled
    note = bulk_job_start(job_id=job.pk, plan_hash=job.plan_hash, actor=PIPELINE_ACTOR)
    assert note["note"] == "The job was cancelled."
    assert not BulkBatch.objects.filter(job=job).exists()
    [cancelled] = audit_data("catalog_bulk.cancelled")
    assert cancelled["change_request_withdrawn"] is None


def test_a_rejected_change_request_leaves_its_job_cancelled_and_never_startable(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job, cr = in_review(make_job, editor)
    change_request_reject(actor=reviewer, change_request=cr, comment="Prices are wrong")

    # Even before the sweeper closes the job, nothing can start it.
    with pytest.raises(BulkError, match="is rejected; nothing was sent"):
        bulk_job_start(job_id=job.pk, plan_hash=job.plan_hash, actor=PIPELINE_ACTOR)
    assert bulk_sweep().closed_unapproved == 1

    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.error_message == f"Change request #{cr.pk} was rejected; nothing was sent."
    assert set(job.rows.values_list("outcome", flat=True)) == {RowOutcome.CANCELLED}
    [cancelled] = audit_data("catalog_bulk.cancelled")
    assert cancelled["reason"] == "change_request_rejected"
    assert not BulkBatch.objects.filter(job=job).exists()


def test_a_withdrawn_change_request_leaves_its_job_cancelled(
    make_job: MakeJob, editor: User
) -> None:
    job, cr = in_review(make_job, editor)
    change_request_cancel(actor=editor, change_request=cr)

    assert bulk_sweep().closed_unapproved == 1
    assert bulk_sweep().closed_unapproved == 0  # closed once

    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert "was withdrawn" in job.error_message
    with pytest.raises(BulkError, match="already cancelled"):
        bulk_job_cancel(actor=editor, job=job)


def test_a_rejection_closes_its_job_at_once_in_the_reviewers_name(
    make_job: MakeJob, editor: User, reviewer: User, django_capture_on_commit_callbacks: Any
) -> None:
    job, cr = in_review(make_job, editor)

    with django_capture_on_commit_callbacks(execute=True):
        change_request_reject(actor=reviewer, change_request=cr, comment="Prices are wrong")

    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.error_message == f"Change request #{cr.pk} was rejected; nothing was sent."
    [entry] = AuditEntry.objects.filter(action="catalog_bulk.cancelled")
    assert entry.actor_id == reviewer.pk
    assert bulk_sweep().closed_unapproved == 0  # nothing left for the backstop


@pytest.mark.django_db(transaction=True)  # commits for real: the hook runs in between
def test_cancelling_a_job_whose_withdrawal_closed_it_reports_no_error(
    make_job: MakeJob, editor: User
) -> None:
    job, cr = in_review(make_job, editor)

    bulk_job_cancel(actor=editor, job=job)

    job.refresh_from_db()
    cr.refresh_from_db()
    assert (job.state, cr.state) == (JobState.CANCELLED, ChangeState.CANCELLED)
    [entry] = AuditEntry.objects.filter(action="catalog_bulk.cancelled")
    assert entry.actor_id == editor.pk
    assert entry.data["reason"] == "change_request_withdrawn"


def test_a_job_whose_catalog_lost_a_field_since_the_preview_does_not_start(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job, cr = in_review(make_job, editor)
    change_request_approve(actor=reviewer, change_request=cr)
    catalog = job.catalog
    catalog.fields = [f for f in catalog.fields if f["name"] != "price"]  # deleted meanwhile
    catalog.save(update_fields=["fields"])

    with pytest.raises(
        BulkError, match=f"fields of {catalog.name} changed.*: price no longer exists"
    ):
        bulk_job_start(job_id=job.pk, plan_hash=job.plan_hash, actor=PIPELINE_ACTOR)

    assert not BulkBatch.objects.filter(job=job).exists()
    job.refresh_from_db()
    assert job.state == JobState.REVIEW


def test_a_job_whose_field_came_back_with_another_type_does_not_start(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job, cr = in_review(make_job, editor)
    change_request_approve(actor=reviewer, change_request=cr)
    assert job.field_types["price"] == "number"
    catalog = job.catalog
    # Deleted and added again as a string by approved schema changes since the preview.
    catalog.fields = [
        *(f for f in catalog.fields if f["name"] != "price"),
        {"name": "price", "type": "string"},
    ]
    catalog.save(update_fields=["fields"])

    with pytest.raises(BulkError, match="price is now a string field, not a number one"):
        bulk_job_start(job_id=job.pk, plan_hash=job.plan_hash, actor=PIPELINE_ACTOR)

    assert not BulkBatch.objects.filter(job=job).exists()
    job.refresh_from_db()
    assert job.state == JobState.REVIEW


def test_a_field_added_since_the_preview_does_not_stop_the_job(
    make_job: MakeJob, editor: User, reviewer: User
) -> None:
    job, cr = in_review(make_job, editor)
    change_request_approve(actor=reviewer, change_request=cr)
    catalog = job.catalog
    catalog.fields = [*catalog.fields, {"name": "colour", "type": "string"}]
    catalog.save(update_fields=["fields"])

    bulk_job_start(job_id=job.pk, plan_hash=job.plan_hash, actor=PIPELINE_ACTOR)

    assert BulkBatch.objects.filter(job=job).exists()
