"""Celery discovers `<app>.tasks`; the console's tasks live with their services."""

from console.audit.tasks import audit_verify_task
from console.changes.tasks import change_request_apply_task, change_requests_sweep_task
from console.notifications.tasks import webhook_deliver_task, webhook_deliveries_sweep_task

__all__ = [
    "audit_verify_task",
    "change_request_apply_task",
    "change_requests_sweep_task",
    "webhook_deliver_task",
    "webhook_deliveries_sweep_task",
]
