from celery import shared_task

from console.audit.services import audit_checkpoint_issue


@shared_task(ignore_result=True)
def audit_checkpoint_task() -> None:
    audit_checkpoint_issue()
