"""Thin Celery tasks of the Users section."""

from __future__ import annotations

from celery import shared_task

from console.celery import task_workspace
from users_admin.services import access_review_lookup


@shared_task(ignore_result=True, acks_late=True)
def access_review_lookup_task(user_id: int, token: str, workspace: str | None = None) -> None:
    # SCIM through the token of the workspace the review was started in.
    with task_workspace("celery:access_review", workspace):
        access_review_lookup(user_id=user_id, token=token)
