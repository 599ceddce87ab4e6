"""Thin Celery tasks for bulk jobs: ids in, a service, sender or read-back step called.

Every task is short: parsing a file is the longest; a sender sends for a few seconds and
hands over, and so does a read-back.

The modules a task calls import the tasks to enqueue them, so each task imports its step
inside its body (the one place this app imports lazily).

Each task keeps the name it had when bulk jobs lived in ``catalogs/bulk/`` (``name=``):
messages already queued, and beat's schedule, name tasks by that string, so a new name would
leave queued work unknown to the workers that receive it.
"""

from __future__ import annotations

from celery import shared_task

from console.audit.context import Origin, audit_origin


@shared_task(name="catalogs.bulk.tasks.bulk_parse_task", ignore_result=True, acks_late=True)
def bulk_parse_task(job_id: int) -> None:
    from catalog_bulk.services import bulk_job_parse

    with audit_origin(Origin(via="celery:bulk_parse")):
        bulk_job_parse(job_id=job_id)


@shared_task(name="catalogs.bulk.tasks.bulk_send_task", ignore_result=True, acks_late=True)
def bulk_send_task(slot: int, token: str) -> None:
    from catalog_bulk.senders import sender_step

    with audit_origin(Origin(via="celery:bulk_send")):
        sender_step(slot=slot, token=token)


@shared_task(name="catalogs.bulk.tasks.bulk_readback_task", ignore_result=True, acks_late=True)
def bulk_readback_task(job_id: int) -> None:
    from catalog_bulk.readback import bulk_job_read_back

    with audit_origin(Origin(via="celery:bulk_readback")):
        bulk_job_read_back(job_id=job_id)


@shared_task(name="catalogs.bulk.tasks.bulk_sweep_task", ignore_result=True)
def bulk_sweep_task() -> None:
    from catalog_bulk.services import bulk_sweep

    with audit_origin(Origin(via="celery:bulk_sweep")):
        bulk_sweep()


@shared_task(name="catalogs.bulk.tasks.bulk_retention_task", ignore_result=True)
def bulk_retention_task() -> None:
    from catalog_bulk.retention import bulk_retention_run

    with audit_origin(Origin(via="celery:bulk_retention")):
        bulk_retention_run()
