"""Models of the console core live in their sub-packages; importing them here registers them."""

from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal

__all__ = ["AuditCheckpoint", "AuditEntry", "AuditPersonal"]
