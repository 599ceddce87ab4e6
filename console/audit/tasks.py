from celery import shared_task

from console.audit.context import Origin, audit_origin
from console.audit.services import audit_verification_run
from console.signin import signin_failures_record

# Checkpoints are not a task: workers are not given the key that signs them
# (manage.py audit_checkpoint_signer is the process that signs).


@shared_task(ignore_result=True)
def audit_verify_task(request_seq: int, actor_id: int) -> None:
    """Ids only; the result is an audit entry recorded as the person who asked."""
    with audit_origin(Origin(via="celery:audit_verify")):
        audit_verification_run(request_seq=request_seq, actor_id=actor_id)


@shared_task(ignore_result=True)
def signin_failures_record_task() -> None:
    signin_failures_record()
