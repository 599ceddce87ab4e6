from __future__ import annotations

from celery import shared_task

from console.audit.context import Origin, audit_origin
from templates_app.services import content_sync


@shared_task(ignore_result=True)
def content_sync_task() -> None:
    with audit_origin(Origin(via="celery:content_sync_task")):
        content_sync()
