from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from console.notifications.models import NotificationKind, NotificationOptOut, WebhookDelivery


def notification_kinds_enabled(*, user: AbstractBaseUser) -> set[NotificationKind]:
    off = set(NotificationOptOut.objects.filter(user_id=user.pk).values_list("kind", flat=True))
    return {kind for kind in NotificationKind if kind.value not in off}


def webhook_deliveries_recent(*, limit: int = 200) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.order_by("-id")[:limit]
