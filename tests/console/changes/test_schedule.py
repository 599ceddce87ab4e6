"""Scheduled changes: approved with their time, applied by the worker at that time."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import (
    ChangeRequestError,
    InvalidTransition,
    change_request_approve,
    change_request_propose,
    change_request_schedule,
    change_request_unschedule,
    change_requests_apply_due,
    change_requests_sweep,
)
from console.roles import Role
from tests.factories import user_with_role

from .conftest import FakeBraze, clock_at


def _propose(fake: FakeBraze, author: User) -> ChangeRequest:
    return change_request_propose(
        actor=author,
        resource_type="fake_item",
        identifier="shoe-1",
        action="update",
        payload={"price": 12},
        base_snapshot=fake.read_current("shoe-1"),
    )


def _events(cr: ChangeRequest) -> list[str]:
    return list(
        AuditEntry.objects.filter(change_request_id=cr.pk)
        .order_by("seq")
        .values_list("action", flat=True)
    )


def _scheduled_and_approved(
    fake: FakeBraze, editor: User, reviewer: User, run_on_commit: Any, *, hours: int = 5
) -> ChangeRequest:
    cr = _propose(fake, editor)
    change_request_schedule(
        actor=editor, change_request=cr, apply_at=timezone.now() + timedelta(hours=hours)
    )
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    return cr


def test_an_approved_scheduled_change_waits_for_its_time_then_is_applied_once(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _scheduled_and_approved(fake_braze, editor, reviewer, run_on_commit)
    assert cr.state == ChangeState.APPROVED
    assert fake_braze.sent == []  # the approval did not apply it
    assert cr.apply_at is not None
    assert change_requests_apply_due(now=cr.apply_at - timedelta(seconds=1)) == []
    # The sweeper for lost tasks leaves a change that is waiting for its time alone.
    ChangeRequest.objects.filter(pk=cr.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert change_requests_sweep() == []
    with clock_at(cr.apply_at + timedelta(seconds=5)):
        assert change_requests_apply_due() == [cr.pk]
        assert change_requests_apply_due() == []  # idempotent: it is no longer approved
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert fake_braze.sent == [("update", "shoe-1", {"price": 12})]
    assert _events(cr)[-3:] == [
        "change_request.applying",
        "braze.write",
        "change_request.applied",
    ]
    write = AuditEntry.objects.get(change_request_id=cr.pk, action="braze.write")
    assert write.actor_id == reviewer.pk  # the approver, as for an immediate apply


def test_an_early_apply_task_sends_nothing(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    from console.changes.services import change_request_apply

    cr = _scheduled_and_approved(fake_braze, editor, reviewer, run_on_commit)
    change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPROVED
    assert fake_braze.sent == []


def test_at_its_time_a_conflict_is_still_detected(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _scheduled_and_approved(fake_braze, editor, reviewer, run_on_commit)
    fake_braze.store["shoe-1"]["price"] = 11  # someone changed it in Braze meanwhile
    assert cr.apply_at is not None
    with clock_at(cr.apply_at + timedelta(seconds=5)):
        change_requests_apply_due()
    cr.refresh_from_db()
    assert cr.state == ChangeState.CONFLICT
    assert fake_braze.sent == []


def test_at_its_time_an_approval_that_no_longer_counts_is_not_applied(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    settings: Settings,
) -> None:
    cr = _scheduled_and_approved(fake_braze, editor, reviewer, run_on_commit, hours=30)
    settings.APPROVAL_MAX_AGE_DAYS = 1  # shortened after the approval was given
    assert cr.apply_at is not None
    with clock_at(cr.apply_at + timedelta(seconds=5)):
        change_requests_apply_due()
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING
    assert fake_braze.sent == []
    assert _events(cr)[-1] == "change_request.apply_refused"


def test_scheduling_is_audited_and_dismisses_approvals_given_for_another_time(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _scheduled_and_approved(fake_braze, editor, reviewer, run_on_commit)
    later = timezone.now() + timedelta(days=1)
    with run_on_commit():
        change_request_schedule(actor=editor, change_request=cr, apply_at=later)
    cr.refresh_from_db()
    assert (cr.state, cr.apply_at) == (ChangeState.PENDING, later)
    assert cr.reviews.filter(dismissed_at__isnull=True).count() == 0
    moved = AuditEntry.objects.filter(action="change_request.scheduled").order_by("seq").last()
    assert moved is not None
    assert moved.actor_id == editor.pk
    assert moved.data["apply_at"] == later.isoformat()
    assert moved.data["approvals_dismissed"] == 1
    assert moved.data["time_zone"] == "UTC"
    # The reviewers are asked again, with the time.
    assert "Once approved it is applied at" in mail.outbox[-1].body


def test_a_reviewer_can_unschedule_an_approved_change_which_then_waits_in_review(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _scheduled_and_approved(fake_braze, editor, reviewer, run_on_commit)
    other_reviewer = user_with_role(Role.REVIEWER)
    change_request_unschedule(actor=other_reviewer, change_request=cr)
    cr.refresh_from_db()
    assert (cr.state, cr.apply_at, cr.apply_requested_by_id) == (ChangeState.PENDING, None, None)
    assert cr.reviews.filter(dismissed_at__isnull=True).count() == 0
    entry = AuditEntry.objects.get(action="change_request.unscheduled")
    assert entry.actor_id == other_reviewer.pk
    assert change_requests_apply_due(now=timezone.now() + timedelta(days=2)) == []
    with pytest.raises(InvalidTransition):
        change_request_unschedule(actor=editor, change_request=cr)


def test_only_the_author_schedules_and_only_a_future_time_within_an_approvals_life(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    cr = _propose(fake_braze, editor)
    soon = timezone.now() + timedelta(hours=1)
    with pytest.raises(ChangeRequestError, match="Only its author"):
        change_request_schedule(actor=reviewer, change_request=cr, apply_at=soon)
    with pytest.raises(ChangeRequestError, match="Only its author or a reviewer"):
        change_request_unschedule(actor=user_with_role(Role.EDITOR), change_request=cr)
    with pytest.raises(ChangeRequestError, match="in the future"):
        change_request_schedule(
            actor=editor, change_request=cr, apply_at=timezone.now() - timedelta(minutes=1)
        )
    with pytest.raises(ChangeRequestError, match="at most that far ahead"):
        change_request_schedule(
            actor=editor, change_request=cr, apply_at=timezone.now() + timedelta(days=8)
        )
    assert not AuditEntry.objects.filter(action="change_request.scheduled").exists()


def test_an_applied_change_cannot_be_scheduled_or_unscheduled(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    with pytest.raises(InvalidTransition):
        change_request_schedule(
            actor=editor, change_request=cr, apply_at=timezone.now() + timedelta(hours=1)
        )
    with pytest.raises(InvalidTransition):
        change_request_unschedule(actor=editor, change_request=cr)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_author_schedules_in_the_workspace_time_zone_and_the_reviewer_sees_the_time(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, settings: Settings
) -> None:
    settings.CONSOLE_TIME_ZONE = "Europe/Paris"
    cr = _propose(fake_braze, editor)
    local = (
        (timezone.now() + timedelta(days=2))
        .astimezone(UTC)
        .replace(hour=10, minute=30, second=0, microsecond=0)
    )
    field = local.strftime("%Y-%m-%dT10:30")
    act = reverse("changes:act", args=[cr.pk])
    response = _client(editor).post(act, {"op": "schedule", "apply_at": field})
    assert response.status_code == 302
    cr.refresh_from_db()
    # 10:30 in Paris in winter is 09:30 UTC.
    assert cr.apply_at == datetime.fromisoformat(field + "+01:00")
    assert cr.apply_at.astimezone(UTC).hour == 9
    page = _client(reviewer).get(reverse("changes:detail", args=[cr.pk])).content.decode()
    assert f"{field.replace('T', ' ')} (Europe/Paris)" in page
    assert 'value="unschedule"' in page
    assert 'value="schedule"' not in page  # the reviewer does not set the time


def test_a_reviewer_unschedules_through_the_page_and_a_viewer_cannot(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    cr = _propose(fake_braze, editor)
    change_request_schedule(
        actor=editor, change_request=cr, apply_at=timezone.now() + timedelta(hours=3)
    )
    act = reverse("changes:act", args=[cr.pk])
    viewer = user_with_role(Role.VIEWER)
    assert _client(viewer).post(act, {"op": "unschedule"}).status_code == 403
    cr.refresh_from_db()
    assert cr.apply_at is not None
    _client(reviewer).post(act, {"op": "unschedule"})
    cr.refresh_from_db()
    assert cr.apply_at is None


def test_a_schedule_post_needs_the_csrf_token(
    db: None, fake_braze: FakeBraze, editor: User
) -> None:
    cr = _propose(fake_braze, editor)
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    response = client.post(
        reverse("changes:act", args=[cr.pk]), {"op": "schedule", "apply_at": "2030-01-01T10:00"}
    )
    assert response.status_code == 403
    cr.refresh_from_db()
    assert cr.apply_at is None


def test_the_due_task_is_routed_to_a_named_queue() -> None:
    from console.celery import TASK_QUEUES

    assert TASK_QUEUES["console.changes.tasks.change_requests_apply_due_task"] == "default"
