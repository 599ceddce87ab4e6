from django.conf import settings
from django.db import models


class NotificationKind(models.TextChoices):
    """What a person may be told by email (each on unless they turn it off)."""

    REVIEW_REQUESTED = "review_requested", "A change waits for my review"
    APPROVED = "approved", "My change was approved"
    REJECTED = "rejected", "My change was rejected"
    APPLIED = "applied", "My change was applied"
    CONFLICT = "conflict", "My change is in conflict with Braze"
    FAILED = "failed", "My change failed"
    APPROVED_FAILED = "approved_failed", "A change I approved failed"


class NotificationOptOut(models.Model):
    """A kind of email this person turned off; no row: they get it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_opt_outs"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="one_opt_out_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} off {self.kind}"


# A delivery is tried this many times (console/notifications/services.py: backoff) before
# it is marked failed in the log Admins read.
WEBHOOK_MAX_ATTEMPTS = 6


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for the workspace's webhook and how its delivery went.

    Written in the transaction of the change it reports, so an event is never lost between
    the commit and the worker; the task only sends it (ids through the broker).
    """

    event = models.CharField(max_length=40)
    change_request_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField()
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.event} #{self.pk} {self.state}"
