"""Notifications about change requests. `change_request_notify` runs in the transaction of
the change it reports: the webhook delivery row commits with it, emails and the delivery
task go out only after the commit."""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from console.audit import events
from console.audit.services import audit_append
from console.celery import task_enqueue
from console.changes.models import ChangeRequest
from console.changes.resource_types import resource_type_find
from console.notifications.models import (
    WEBHOOK_MAX_ATTEMPTS,
    DeliveryState,
    NotificationKind,
    NotificationOptOut,
    WebhookDelivery,
)
from console.workspace_urls import workspace_reverse

logger = logging.getLogger(__name__)

# Told to the request's authors; a failure is also told to those who approved it.
AUTHOR_KINDS = frozenset(
    {
        NotificationKind.APPROVED,
        NotificationKind.REJECTED,
        NotificationKind.APPLIED,
        NotificationKind.CONFLICT,
        NotificationKind.FAILED,
    }
)
_SUBJECTS = {
    NotificationKind.APPROVED: "Approved",
    NotificationKind.REJECTED: "Rejected",
    NotificationKind.APPLIED: "Applied",
    NotificationKind.CONFLICT: "In conflict with Braze",
    NotificationKind.FAILED: "Failed",
    NotificationKind.APPROVED_FAILED: "A change you approved failed",
}
SIGNATURE_HEADER = "X-Console-Signature"
TIMESTAMP_HEADER = "X-Console-Timestamp"


def _emails_for(user_ids: set[int], kind: NotificationKind) -> list[str]:
    return sorted(
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True)
        .exclude(email="")
        .exclude(notification_opt_outs__kind=kind)
        .values_list("email", flat=True)
    )


def _send(kind: NotificationKind, cr: ChangeRequest, emails: list[str], comment: str) -> None:
    if not emails:
        return
    path = workspace_reverse("changes:detail", workspace=cr.workspace, args=[cr.pk])
    said = f"\nThe reviewer said: {comment}\n" if comment else ""
    message = EmailMessage(
        subject=f"{_SUBJECTS[kind]}: {cr.title}",
        body=(
            f"Change request #{cr.pk}: {cr.title}\nis now {cr.get_state_display().lower()}.\n"
            f"{said}\nOpen it in the console: {path}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        bcc=emails,
    )
    try:
        message.send()
    except Exception:  # an unreachable mail server must not fail the change
        logger.exception("could not email %s about change request %s", kind, cr.pk)


def _webhook_payload(cr: ChangeRequest, kind: NotificationKind, comment: str) -> dict[str, Any]:
    found = resource_type_find(cr.resource_type)
    # A request about a person (a dashboard user) may name them in its title or comment:
    # those stay in the console.
    about_a_person = found is None or bool(found.personal_fields) or found.concerns_console_user
    body: dict[str, Any] = {
        "event": f"change_request.{kind.value}",
        "occurred_at": timezone.now().isoformat(),
        "change_request": {
            "id": cr.pk,
            "state": cr.state,
            "resource_type": cr.resource_type,
            "action": cr.action,
            "title": None if about_a_person else cr.title,
            "path": workspace_reverse("changes:detail", workspace=cr.workspace, args=[cr.pk]),
        },
    }
    if comment and not about_a_person:
        body["comment"] = comment
    return body


def change_request_notify(
    *, change_request: ChangeRequest, kind: NotificationKind, comment: str = ""
) -> None:
    """Tell the authors (and, for a failure, its approvers) what happened to the request.

    Call inside the transaction that made the change."""
    cr = change_request
    if kind not in AUTHOR_KINDS:
        raise ValueError(f"{kind} is not told to authors")
    authors = {cr.author_id, cr.last_editor_id}
    # Read now: the approvals as they were when it failed.
    approvers: set[int] = set()
    if kind == NotificationKind.FAILED:
        approvers = (
            set(
                cr.reviews.filter(
                    decision="approve", dismissed_at__isnull=True, payload_hash=cr.payload_hash
                ).values_list("reviewer_id", flat=True)
            )
            - authors
        )

    def send() -> None:
        _send(kind, cr, _emails_for(authors, kind), comment)
        if approvers:
            _send(
                NotificationKind.APPROVED_FAILED,
                cr,
                _emails_for(approvers, NotificationKind.APPROVED_FAILED),
                "",
            )

    transaction.on_commit(send)
    if settings.NOTIFY_WEBHOOK_URL:
        delivery = WebhookDelivery.objects.create(
            event=f"change_request.{kind.value}",
            change_request_id=cr.pk,
            payload=_webhook_payload(cr, kind, comment),
        )
        _enqueue_delivery(delivery.pk)


def _enqueue_delivery(delivery_id: int) -> None:
    transaction.on_commit(lambda: task_enqueue(DELIVER_TASK, delivery_id))


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `<timestamp>.<body>`: a receiver checks both, so an old delivery
    cannot be replayed with a new timestamp."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def webhook_backoff(attempt: int) -> timedelta:
    """Wait before the next attempt: 30 s, 1, 2, 4, 8 minutes."""
    return timedelta(seconds=min(30 * 2 ** max(attempt - 1, 0), 3600))


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery:
    """Send one delivery once; the task retries it (with `webhook_backoff`) while it is
    pending. The URL and the secret come from the settings only, never from a person."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, state=DeliveryState.PENDING)
            .first()
        )
        if delivery is None:
            return WebhookDelivery.objects.get(pk=delivery_id)  # settled, or being sent
        body = json.dumps({**delivery.payload, "delivery_id": delivery.pk}, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(
                secret=settings.NOTIFY_WEBHOOK_SECRET, timestamp=timestamp, body=body
            ),
            "X-Console-Delivery": str(delivery.pk),
        }
        status: int | None = None
        try:
            response = httpx.post(
                settings.NOTIFY_WEBHOOK_URL, content=body, headers=headers, timeout=10.0
            )
            status = response.status_code
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except httpx.HTTPError as exc:
            # The exception's text can carry the URL: only its kind is kept.
            error = type(exc).__name__
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = status, error
        if not error:
            delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, timezone.now()
        elif delivery.attempts >= WEBHOOK_MAX_ATTEMPTS:
            delivery.state = DeliveryState.FAILED
        delivery.save()
    return delivery


def notification_preferences_set(
    *, actor: AbstractBaseUser, enabled: set[NotificationKind]
) -> None:
    """The kinds of email `actor` gets; the rest are turned off."""
    off = set(NotificationKind) - enabled
    with transaction.atomic(durable=True):
        NotificationOptOut.objects.filter(user_id=actor.pk).exclude(kind__in=off).delete()
        NotificationOptOut.objects.bulk_create(
            [NotificationOptOut(user_id=actor.pk, kind=kind) for kind in sorted(off)],
            ignore_conflicts=True,
        )
        audit_append(
            actor=actor,
            action=events.NOTIFICATIONS_PREFERENCES_CHANGED,
            resource_type="console_user",
            resource_id=str(actor.pk),
            data={"off": sorted(k.value for k in off)},
        )


# Longer than all of a delivery's pauses together (30 s + ... + 8 min): a delivery still
# pending after this lost its task (a broker restart drops a countdown).
WEBHOOK_STALE_AFTER = timedelta(minutes=20)
# Queued by name (console.celery.task_enqueue): the tasks module imports this one.
DELIVER_TASK = "console.notifications.tasks.webhook_deliver_task"


def webhook_deliveries_sweep() -> list[int]:
    """Enqueue pending deliveries whose task was lost; an attempt in progress is skipped
    (row lock) and a delivered one is not sent again, so a duplicate costs nothing."""
    stale = WebhookDelivery.objects.filter(
        state=DeliveryState.PENDING, created_at__lt=timezone.now() - WEBHOOK_STALE_AFTER
    ).order_by("pk")
    ids = list(stale.values_list("pk", flat=True)[:500])
    for delivery_id in ids:
        task_enqueue(DELIVER_TASK, delivery_id)
    return ids
