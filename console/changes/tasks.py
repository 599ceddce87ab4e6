import logging

from celery import shared_task

from console.celery import task_workspace
from console.changes.services import change_request_apply, change_requests_sweep
from console.workspaces import workspaces_all

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True)
def change_request_apply_task(
    change_request_id: int, actor_id: int, workspace: str | None = None
) -> None:
    """Ids and the workspace's key only: the payload and the Braze key never travel through
    the broker. The apply itself works in the workspace the change request's row names."""
    if workspace and workspace not in {w.key for w in workspaces_all()}:
        # Queued before its workspace left the configuration: nothing can be sent with
        # another workspace's key, and the request waits for its own to come back.
        logger.warning(
            "change request %s: workspace %r is not configured", change_request_id, workspace
        )
        return
    with task_workspace("celery:change_request_apply", workspace):
        change_request_apply(change_request_id=change_request_id, actor_id=actor_id)


@shared_task(ignore_result=True)
def change_requests_sweep_task() -> None:
    change_requests_sweep()


@shared_task(ignore_result=True)
def change_requests_apply_due_task() -> None:
    # services imports this module (to enqueue), so it is imported when the task runs.
    from console.changes.services import change_requests_apply_due

    change_requests_apply_due()
