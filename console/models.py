"""Models of the console core live in their sub-packages; importing them here registers them."""

from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal
from console.changes.models import (
    AccountSponsor,
    ApprovalPolicy,
    ChangeRequest,
    Comment,
    Review,
)
from console.home.models import HomeMark
from console.notifications.models import NotificationOptOut, WebhookDelivery
from console.role_models import WorkspaceRole

__all__ = [
    "AccountSponsor",
    "ApprovalPolicy",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditPersonal",
    "ChangeRequest",
    "Comment",
    "HomeMark",
    "NotificationOptOut",
    "Review",
    "WebhookDelivery",
    "WorkspaceRole",
]
