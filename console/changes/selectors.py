"""Reads of change requests for screens and the navigation badge."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet

from console.audit.models import AuditEntry
from console.changes.models import ChangeRequest, ChangeState, Decision, Review
from console.roles import Capability, user_capabilities


def change_requests_awaiting_review(*, user: AbstractBaseUser) -> QuerySet[ChangeRequest]:
    """Pending requests this user may approve and has not yet approved in this version."""
    if Capability.REVIEW not in user_capabilities(user):
        return ChangeRequest.objects.none()
    mine = Review.objects.filter(
        change_request=OuterRef("pk"),
        reviewer_id=user.pk,
        decision=Decision.APPROVE,
        dismissed_at__isnull=True,
        payload_hash=OuterRef("payload_hash"),
    )
    return (
        ChangeRequest.objects.filter(state=ChangeState.PENDING)
        .exclude(author_id=user.pk)
        .exclude(last_editor_id=user.pk)
        .exclude(Exists(mine))
    )


def change_requests_of(*, user: AbstractBaseUser) -> QuerySet[ChangeRequest]:
    return ChangeRequest.objects.filter(author_id=user.pk) | ChangeRequest.objects.filter(
        last_editor_id=user.pk
    )


def change_request_timeline(*, change_request: ChangeRequest) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(change_request_id=change_request.pk).order_by("seq")


def review_count_for(user: AbstractBaseUser) -> int:
    return change_requests_awaiting_review(user=user).count()
