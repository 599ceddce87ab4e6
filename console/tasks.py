"""Celery discovers `<app>.tasks`; the console's tasks live with their services."""

from console.audit.tasks import audit_checkpoint_task

__all__ = ["audit_checkpoint_task"]
