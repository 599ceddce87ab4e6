"""Thin Celery tasks of the Users section."""

from __future__ import annotations

from celery import shared_task

from console.audit.context import Origin, audit_origin
from users_admin.services import access_review_lookup


@shared_task(ignore_result=True, acks_late=True)
def access_review_lookup_task(user_id: int, token: str) -> None:
    with audit_origin(Origin(via="celery:access_review")):
        access_review_lookup(user_id=user_id, token=token)
