"""Authors (and approvers of a failed change) are told by email and the workspace webhook."""

import hmac
from hashlib import sha256
from typing import Any

from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.braze.errors import BrazeValidationError
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import (
    change_request_approve,
    change_request_propose,
    change_request_reject,
)
from console.notifications.models import (
    WEBHOOK_MAX_ATTEMPTS,
    DeliveryState,
    NotificationKind,
    NotificationOptOut,
    WebhookDelivery,
)
from console.notifications.services import webhook_backoff
from console.roles import Role
from console.secrets import SECRET_SETTINGS, secret_values
from tests.console.changes.conftest import FakeBraze
from tests.factories import user_with_role

from .conftest import WEBHOOK_SECRET, Receiver


def _propose(fake: FakeBraze, author: User) -> ChangeRequest:
    return change_request_propose(
        actor=author,
        resource_type="fake_item",
        identifier="shoe-1",
        action="update",
        payload={"price": 12},
        base_snapshot=fake.read_current("shoe-1"),
    )


def _to(address: str) -> list[str]:
    return [str(m.subject) for m in mail.outbox if address in m.bcc]


def _signature_ok(received: Any) -> bool:
    timestamp = received.headers["X-Console-Timestamp"]
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + received.body, sha256
    ).hexdigest()
    return hmac.compare_digest(received.headers["X-Console-Signature"], f"sha256={expected}")


def test_the_author_is_told_of_the_approval_and_the_apply_by_email_and_signed_webhook(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    cr = _propose(fake_braze, editor)
    mail.outbox.clear()
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr, comment="Fine by me")
    assert _to(editor.email) == [f"Approved: {cr.title}", f"Applied: {cr.title}"]
    assert _to(reviewer.email) == []
    events = [r.json["event"] for r in receiver.received]
    assert events == ["change_request.approved", "change_request.applied"]
    assert all(_signature_ok(r) for r in receiver.received)
    applied = receiver.received[1].json
    assert applied["change_request"] == {
        "id": cr.pk,
        "state": "applied",
        "resource_type": "fake_item",
        "action": "update",
        "title": cr.title,
        "path": reverse("changes:detail", args=[cr.pk]),
    }
    assert applied["delivery_id"] == int(receiver.received[1].headers["X-Console-Delivery"])
    log = list(WebhookDelivery.objects.order_by("pk").values_list("event", "state", "attempts"))
    assert log == [
        ("change_request.approved", DeliveryState.DELIVERED, 1),
        ("change_request.applied", DeliveryState.DELIVERED, 1),
    ]


def test_a_forged_body_does_not_match_the_signature(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_reject(actor=reviewer, change_request=cr, comment="Too cheap")
    [got] = receiver.received
    assert _signature_ok(got)
    got.body = got.body.replace(b"Too cheap", b"Fine")
    assert not _signature_ok(got)


def test_a_rejection_tells_the_author_with_the_comment(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    cr = _propose(fake_braze, editor)
    mail.outbox.clear()
    with run_on_commit():
        change_request_reject(actor=reviewer, change_request=cr, comment="Price is too low")
    [message] = mail.outbox
    assert message.subject == f"Rejected: {cr.title}"
    assert message.bcc == [editor.email]
    assert "The reviewer said: Price is too low" in message.body
    assert receiver.received[0].json["comment"] == "Price is too low"


def test_a_failure_tells_the_author_and_the_reviewers_who_approved_it(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    cr = _propose(fake_braze, editor)
    fake_braze.fail_next.append(BrazeValidationError("bad price", status=400))
    mail.outbox.clear()
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    assert _to(editor.email) == [f"Approved: {cr.title}", f"Failed: {cr.title}"]
    assert _to(reviewer.email) == [f"A change you approved failed: {cr.title}"]
    assert [r.json["event"] for r in receiver.received][-1] == "change_request.failed"


def test_a_conflict_tells_the_author(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _propose(fake_braze, editor)
    fake_braze.store["shoe-1"]["price"] = 11  # changed in Braze meanwhile
    mail.outbox.clear()
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    assert _to(editor.email)[-1] == f"In conflict with Braze: {cr.title}"
    assert not WebhookDelivery.objects.exists()  # no webhook configured: nothing recorded


def test_each_person_gets_only_the_emails_they_chose(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    NotificationOptOut.objects.create(user=editor, kind=NotificationKind.APPLIED)
    NotificationOptOut.objects.create(user=reviewer, kind=NotificationKind.REVIEW_REQUESTED)
    mail.outbox.clear()
    with run_on_commit():
        cr = _propose(fake_braze, editor)
    assert _to(reviewer.email) == []  # turned off "waits for my review"
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    assert _to(editor.email) == [f"Approved: {cr.title}"]  # not "Applied"


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    receiver.fail_next = [500, 503]
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_reject(actor=reviewer, change_request=cr, comment="No")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (
        DeliveryState.DELIVERED,
        3,
        204,
    )
    assert len(receiver.received) == 3
    # The same delivery each time (a receiver can drop duplicates by its id).
    assert {r.headers["X-Console-Delivery"] for r in receiver.received} == {str(delivery.pk)}
    assert [webhook_backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_a_receiver_that_never_answers_is_marked_failed_after_the_last_attempt(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    receiver.fail_next = [500] * (WEBHOOK_MAX_ATTEMPTS + 2)
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_reject(actor=reviewer, change_request=cr, comment="No")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == (
        DeliveryState.FAILED,
        WEBHOOK_MAX_ATTEMPTS,
        "HTTP 500",
    )
    assert len(receiver.received) == WEBHOOK_MAX_ATTEMPTS


def test_the_webhook_secret_is_masked_everywhere(settings: Settings) -> None:
    assert "NOTIFY_WEBHOOK_SECRET" in SECRET_SETTINGS
    settings.NOTIFY_WEBHOOK_SECRET = WEBHOOK_SECRET
    assert WEBHOOK_SECRET in secret_values()


def test_a_person_sets_their_choices_on_the_preferences_page(db: None, editor: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    url = reverse("notifications:preferences")
    page = client.get(url).content.decode()
    assert page.count('type="checkbox"') == len(NotificationKind)
    assert "checked" in page
    assert client.post(url, {"kinds": ["approved"]}).status_code == 403  # no CSRF token
    token = client.cookies["csrftoken"].value
    response = client.post(url, {"kinds": ["approved", "rejected"], "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    off = set(NotificationOptOut.objects.filter(user=editor).values_list("kind", flat=True))
    assert off == {k.value for k in NotificationKind} - {"approved", "rejected"}
    entry = AuditEntry.objects.get(action="notifications.preferences_changed")
    assert entry.actor_id == editor.pk
    # Turning one back on removes its opt-out only.
    client.post(url, {"kinds": ["approved", "rejected", "applied"], "csrfmiddlewaretoken": token})
    assert not NotificationOptOut.objects.filter(user=editor, kind="applied").exists()
    assert NotificationOptOut.objects.filter(user=editor, kind="failed").exists()


def test_admins_read_the_delivery_log_and_others_cannot(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_reject(actor=reviewer, change_request=cr, comment="No")
    url = reverse("notifications:deliveries")
    admin = Client()
    admin.force_login(user_with_role(Role.ADMIN))
    page = admin.get(url).content.decode()
    assert "change_request.rejected" in page
    assert "Delivered" in page
    assert receiver.url not in page  # the URL stays in the configuration
    assert WEBHOOK_SECRET not in page
    other = Client()
    other.force_login(editor)
    assert other.get(url).status_code == 403
    # Both screens are linked from the Approvals list (the log for Admins only).
    listing = admin.get(reverse("changes:list")).content.decode()
    assert reverse("notifications:preferences") in listing
    assert url in listing
    assert url not in other.get(reverse("changes:list")).content.decode()


def test_a_delivery_whose_task_was_lost_is_sent_by_the_sweeper(
    db: None, receiver: Receiver, eager_celery: None
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from console.notifications.services import webhook_deliveries_sweep

    lost = WebhookDelivery.objects.create(event="change_request.applied", payload={"x": 1})
    fresh = WebhookDelivery.objects.create(event="change_request.applied", payload={"x": 2})
    WebhookDelivery.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(minutes=30)
    )
    assert webhook_deliveries_sweep() == [lost.pk]
    lost.refresh_from_db()
    assert lost.state == DeliveryState.DELIVERED
    assert [r.json["delivery_id"] for r in receiver.received] == [lost.pk]
    assert webhook_deliveries_sweep() == []
    fresh.refresh_from_db()
    assert fresh.state == DeliveryState.PENDING  # its own task may still be on its way


def test_the_webhook_leaves_out_titles_and_comments_of_requests_about_people(
    db: None,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    receiver: Receiver,
) -> None:
    from tests.console.changes.conftest import registered

    staff = FakeBraze(store={"ann": {"id": "ann", "email": "ann@example.com"}})
    with registered("fake_staff", staff, personal_fields=frozenset({"email"})):
        cr = change_request_propose(
            actor=editor,
            resource_type="fake_staff",
            identifier="ann",
            action="update",
            payload={"email": "ann.smith@example.com"},
            base_snapshot=staff.read_current("ann"),
            title="Ann Smith's new address",
        )
        with run_on_commit():
            change_request_reject(actor=reviewer, change_request=cr, comment="Ask Ann first")
    [got] = receiver.received
    assert got.json["change_request"]["title"] is None
    assert "comment" not in got.json
    assert b"Ann" not in got.body
    assert _signature_ok(got)
