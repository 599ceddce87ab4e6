"""Thin Celery tasks: ids and a workspace key in, rows loaded, a service called.

Each task runs in the workspace its message names (``console.celery.task_workspace``): that
workspace's Braze client and limiter, and its rows. Services import these tasks to enqueue
them, so each task imports its service inside its body.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from catalogs.services import (
    catalog_list_refresh_run,
    catalog_sync_enqueue,
    catalog_sync_schedule,
    catalog_sync_step,
)
from console.braze import get_client
from console.braze.client import BrazeClient
from console.celery import task_workspace


def _sync_client() -> BrazeClient:
    # Background lane: interactive edits keep their share of the 50/min item group. The
    # wait budget spans a window, so a pass paces itself instead of re-queueing per page.
    return get_client(lane="background", max_wait=settings.CATALOG_SYNC_MAX_WAIT)


@shared_task(ignore_result=True, acks_late=True)
def catalog_sync_task(sync_id: int, workspace: str | None = None) -> None:
    with task_workspace("celery:catalog_sync", workspace) as active:
        run = catalog_sync_step(
            sync_id=sync_id,
            client=_sync_client(),
            max_pages=settings.CATALOG_SYNC_PAGES_PER_TASK,
        )
        if run.retry_in is not None:
            catalog_sync_enqueue(sync_id=sync_id, workspace=active.key, countdown=run.retry_in)


@shared_task(ignore_result=True, acks_late=True)
def catalog_list_refresh_task(workspace: str | None = None) -> None:
    # The background lane's short wait: when the 5-a-minute group is spent, the task comes
    # back later instead of holding one of the workers for up to a minute.
    with task_workspace("celery:catalog_list_refresh", workspace) as active:
        retry_in = catalog_list_refresh_run(client=get_client(lane="background"))
    if retry_in is not None:
        catalog_list_refresh_task.apply_async(args=(active.key,), countdown=retry_in)


@shared_task(ignore_result=True)
def catalog_sync_schedule_task(workspace: str | None = None) -> None:
    with task_workspace("celery:catalog_sync_schedule", workspace):
        catalog_sync_schedule(client=_sync_client())
