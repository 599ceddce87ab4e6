"""Models of the console core live in their sub-packages; importing them here registers them."""

from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal
from console.changes.models import ApprovalPolicy, ChangeRequest, Comment, Review

__all__ = [
    "ApprovalPolicy",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditPersonal",
    "ChangeRequest",
    "Comment",
    "Review",
]
