"""Approvals count for APPROVAL_MAX_AGE_DAYS; an older one asks for review again."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.changes.models import ApprovalPolicy, ChangeRequest, ChangeState
from console.changes.selectors import change_requests_awaiting_review
from console.changes.services import (
    change_request_apply,
    change_request_approve,
    change_request_propose,
    live_approvals,
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


@pytest.fixture
def max_age_two_days(settings: Settings) -> None:
    settings.APPROVAL_MAX_AGE_DAYS = 2


def test_the_default_age_is_seven_days() -> None:
    from django.conf import settings

    assert settings.APPROVAL_MAX_AGE_DAYS == 7


def test_an_approval_counts_until_it_is_older_than_the_configured_age(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, max_age_two_days: None
) -> None:
    start = timezone.now()
    with clock_at(start):
        cr = _propose(fake_braze, editor)
        change_request_approve(actor=reviewer, change_request=cr)
    with clock_at(start + timedelta(days=2) - timedelta(minutes=1)):
        assert len(live_approvals(cr)) == 1
    with clock_at(start + timedelta(days=2, minutes=1)):
        assert live_approvals(cr) == []


def test_an_expired_approval_cannot_be_applied_and_the_request_asks_again(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    max_age_two_days: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    start = timezone.now()
    with clock_at(start):
        cr = _propose(fake_braze, editor)
        change_request_approve(actor=reviewer, change_request=cr)  # its apply task was lost
    mail.outbox.clear()
    with clock_at(start + timedelta(days=3)), django_capture_on_commit_callbacks(execute=True):
        change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING
    assert fake_braze.sent == []
    refused = AuditEntry.objects.filter(change_request_id=cr.pk).order_by("seq").last()
    assert refused is not None
    assert (refused.action, refused.outcome) == ("change_request.apply_refused", "refused")
    assert refused.data["reason"] == "approvals expired"
    assert refused.data["expired_approvals"] == [reviewer.pk]
    # The reviewers are asked again.
    assert [m.subject for m in mail.outbox] == [f"Review requested: {cr.title}"]
    with clock_at(start + timedelta(days=3)):
        assert list(change_requests_awaiting_review(user=reviewer)) == [cr]


def test_the_same_reviewer_can_approve_again_after_expiry(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    max_age_two_days: None,
    run_on_commit: Any,
) -> None:
    ApprovalPolicy.objects.create(resource_type="fake_item", action="update", required_approvals=2)
    start = timezone.now()
    second = user_with_role(Role.REVIEWER)
    with clock_at(start):
        cr = _propose(fake_braze, editor)
        change_request_approve(actor=reviewer, change_request=cr)
    later = start + timedelta(days=3)
    with clock_at(later):
        assert list(change_requests_awaiting_review(user=reviewer)) == [cr]
        change_request_approve(actor=second, change_request=cr)
        cr.refresh_from_db()
        assert cr.state == ChangeState.PENDING  # the first approval no longer counts
        with run_on_commit():
            change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert fake_braze.sent == [("update", "shoe-1", {"price": 12})]


def test_the_request_page_shows_an_expired_approval_and_asks_again(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, max_age_two_days: None
) -> None:
    ApprovalPolicy.objects.create(resource_type="fake_item", action="update", required_approvals=2)
    cr = _propose(fake_braze, editor)
    change_request_approve(actor=reviewer, change_request=cr)
    client = Client()
    client.force_login(reviewer)
    url = reverse("changes:detail", args=[cr.pk])
    fresh = client.get(url).content.decode()
    assert 'id="expired-approvals"' not in fresh
    assert 'value="approve"' not in fresh  # already approved by this reviewer
    # Three days pass (the signed-in session would not survive a moved clock).
    cr.reviews.update(created_at=timezone.now() - timedelta(days=3))
    page = client.get(url).content.decode()
    assert 'id="expired-approvals"' in page
    assert f"{reviewer.get_username()}'s approval of" in page
    assert "needs review again" in page
    assert "0 of 2" in page
    assert 'value="approve"' in page  # asked again
