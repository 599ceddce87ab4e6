"""Thin Celery tasks for bulk jobs: ids and a workspace key in, a service, sender or
read-back step called in that workspace (``console.celery.task_workspace``): a job opened in
production is parsed against production's mirror and sent with production's client.

Every task is short: parsing a file is the longest; a sender sends for a few seconds and
hands over, and so does a read-back.

Each task imports the step it runs; the modules that queue a task name it instead
(`console.celery.task_enqueue`), so nothing imports this module back.

Each task keeps the name it had when bulk jobs lived in ``catalogs/bulk/`` (``name=``):
messages already queued, and beat's schedule, name tasks by that string, so a new name would
leave queued work unknown to the workers that receive it.
"""

from __future__ import annotations

from celery import shared_task

from catalog_bulk.readback import bulk_job_read_back
from catalog_bulk.retention import bulk_retention_run
from catalog_bulk.senders import sender_step
from catalog_bulk.services import bulk_job_parse, bulk_sweep
from console.audit.context import Origin, audit_origin
from console.celery import task_workspace


@shared_task(name="catalogs.bulk.tasks.bulk_parse_task", ignore_result=True, acks_late=True)
def bulk_parse_task(job_id: int, workspace: str | None = None) -> None:
    with task_workspace("celery:bulk_parse", workspace):
        bulk_job_parse(job_id=job_id)


@shared_task(name="catalogs.bulk.tasks.bulk_send_task", ignore_result=True, acks_late=True)
def bulk_send_task(slot: int, token: str, workspace: str | None = None) -> None:
    with task_workspace("celery:bulk_send", workspace):
        sender_step(slot=slot, token=token)


@shared_task(name="catalogs.bulk.tasks.bulk_readback_task", ignore_result=True, acks_late=True)
def bulk_readback_task(job_id: int, workspace: str | None = None) -> None:
    with task_workspace("celery:bulk_readback", workspace):
        bulk_job_read_back(job_id=job_id)


@shared_task(name="catalogs.bulk.tasks.bulk_sweep_task", ignore_result=True)
def bulk_sweep_task(workspace: str | None = None) -> None:
    with task_workspace("celery:bulk_sweep", workspace):
        bulk_sweep()


@shared_task(name="catalogs.bulk.tasks.bulk_retention_task", ignore_result=True)
def bulk_retention_task() -> None:
    # Every workspace at once: it removes by age only and calls no Braze.
    with audit_origin(Origin(via="celery:bulk_retention")):
        bulk_retention_run()
