from __future__ import annotations

from celery import shared_task

from console.celery import task_workspace
from templates_app.services import content_sync


@shared_task(ignore_result=True)
def content_sync_task(workspace: str | None = None) -> None:
    """One workspace's content history and drift (beat queues one per workspace)."""
    with task_workspace("celery:content_sync_task", workspace):
        content_sync()
