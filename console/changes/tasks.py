from celery import shared_task

from console.audit.context import Origin, audit_origin


@shared_task(ignore_result=True, acks_late=True)
def change_request_apply_task(change_request_id: int, actor_id: int) -> None:
    """Ids only: the payload and the Braze key never travel through the broker."""
    from console.changes.services import change_request_apply

    with audit_origin(Origin(via="celery:change_request_apply")):
        change_request_apply(change_request_id=change_request_id, actor_id=actor_id)


@shared_task(ignore_result=True)
def change_requests_sweep_task() -> None:
    from console.changes.services import change_requests_sweep

    change_requests_sweep()


@shared_task(ignore_result=True)
def change_requests_apply_due_task() -> None:
    # services imports this module (to enqueue), so it is imported when the task runs.
    from console.changes.services import change_requests_apply_due

    change_requests_apply_due()
