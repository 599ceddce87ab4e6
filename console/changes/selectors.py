"""Reads of change requests for screens and the navigation badge.

Who may see a change request at all depends on its resource type
(`change_request_may_view`): every list, page and action goes through it."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from console.audit.models import AuditEntry
from console.changes.models import AccountSponsor, ChangeRequest, ChangeState, Decision, Review
from console.changes.resource_types import (
    UNKNOWN_TYPE_VIEWERS,
    ResourceType,
    resource_type_viewers,
    resource_types_registered,
)
from console.roles import Capability, user_capabilities, user_workspaces_scoped

# Whoever works with change requests; Viewers only browse content.
CHANGE_REQUEST_READERS = frozenset(
    {Capability.PROPOSE, Capability.REVIEW, Capability.AUDIT, Capability.MANAGE_USERS}
)


def approvals_count_since(*, now: datetime | None = None) -> datetime:
    """Approvals given before this moment no longer count (`APPROVAL_MAX_AGE_DAYS`)."""
    return (now or timezone.now()) - timedelta(days=settings.APPROVAL_MAX_AGE_DAYS)


def approvals_expired(*, change_request: ChangeRequest) -> list[Review]:
    """Approvals of the current version that would count but for their age."""
    return list(
        change_request.reviews.filter(
            decision=Decision.APPROVE,
            dismissed_at__isnull=True,
            payload_hash=change_request.payload_hash,
            created_at__lt=approvals_count_since(),
        )
        .exclude(reviewer_id__in=[change_request.author_id, change_request.last_editor_id])
        .select_related("reviewer")
    )


def change_request_may_view(
    *,
    user: AbstractBaseUser | AnonymousUser,
    resource_type: str,
    workspace: str | None = None,
) -> bool:
    """Whether `user` may list, open and comment on change requests of `resource_type`
    (in ``workspace``, a key, when named; None: by their console-wide roles): they work
    with change requests, and hold the type's view capability (dashboard users and console
    roles: Admins and Auditors; content: whoever may read it)."""
    caps = user_capabilities(user, workspace)
    return bool(caps & CHANGE_REQUEST_READERS) and bool(caps & resource_type_viewers(resource_type))


def change_requests_visible(
    *, user: AbstractBaseUser, workspace: str | None = None
) -> QuerySet[ChangeRequest]:
    """Every change request `user` may see (`change_request_may_view`, as a query), in
    `workspace` when one is named (a key; None: every workspace)."""
    known = [rt.key for rt in resource_types_registered()]
    visible = [
        rt
        for rt in known
        if change_request_may_view(user=user, resource_type=rt, workspace=workspace)
    ]
    condition = Q(resource_type__in=visible)
    if user_capabilities(user, workspace) & UNKNOWN_TYPE_VIEWERS:
        condition |= ~Q(resource_type__in=known)
    return _in_workspace(ChangeRequest.objects.filter(condition), workspace)


def _in_workspace(
    queryset: QuerySet[ChangeRequest], workspace: str | None
) -> QuerySet[ChangeRequest]:
    return queryset if workspace is None else queryset.filter(workspace=workspace)


def change_request_get_visible(
    *, user: AbstractBaseUser, pk: int, workspace: str | None = None
) -> ChangeRequest | None:
    """The request, or None when it does not exist (in `workspace`, when named) or `user`
    may not see it: all answer 404, so whether a hidden request exists is not given away."""
    found = ChangeRequest.objects.select_related("author", "last_editor").filter(pk=pk)
    cr = _in_workspace(found, workspace).first()
    if cr is None or not change_request_may_view(
        user=user, resource_type=cr.resource_type, workspace=cr.workspace
    ):
        return None
    return cr


def _reviewable_types(user: AbstractBaseUser, workspace: str | None) -> list[ResourceType]:
    """The types whose requests `user` may approve in ``workspace`` (None: console-wide)."""
    caps = user_capabilities(user, workspace)
    return [
        rt
        for rt in resource_types_registered()
        if rt.review in caps
        and change_request_may_view(user=user, resource_type=rt.key, workspace=workspace)
    ]


def _reviewable(user: AbstractBaseUser, workspace: str | None) -> Q | None:
    """Which requests `user` may review, by workspace: where they hold roles of that
    workspace (``WorkspaceRole``) by those, elsewhere by their console-wide roles. None:
    none at all."""
    if workspace is not None:
        types = _reviewable_types(user, workspace)
        if not types:
            return None
        return Q(workspace=workspace, resource_type__in=[rt.key for rt in types])
    scoped = user_workspaces_scoped(user)
    conditions: list[Q] = []
    for key in sorted(scoped):
        types = _reviewable_types(user, key)
        if types:
            conditions.append(Q(workspace=key, resource_type__in=[rt.key for rt in types]))
    console_wide = _reviewable_types(user, None)
    if console_wide:
        conditions.append(
            ~Q(workspace__in=sorted(scoped)) & Q(resource_type__in=[rt.key for rt in console_wide])
        )
    if not conditions:
        return None
    condition = conditions[0]
    for more in conditions[1:]:
        condition |= more
    return condition


def change_requests_awaiting_review(
    *, user: AbstractBaseUser, workspace: str | None = None
) -> QuerySet[ChangeRequest]:
    """Pending requests this user may approve and has not yet approved in this version (in
    `workspace`, when named; else in every workspace), each by the roles the user holds in
    the request's workspace."""
    reviewable = _reviewable(user, workspace)
    if reviewable is None:
        return ChangeRequest.objects.none()
    mine = Review.objects.filter(
        change_request=OuterRef("pk"),
        reviewer_id=user.pk,
        decision=Decision.APPROVE,
        dismissed_at__isnull=True,
        payload_hash=OuterRef("payload_hash"),
        created_at__gte=approvals_count_since(),
    )
    sponsors = AccountSponsor.objects.filter(user_id=user.pk).values("sponsor_id")
    about_me = [rt.key for rt in resource_types_registered() if rt.concerns_console_user]
    pending = ChangeRequest.objects.filter(reviewable, state=ChangeState.PENDING)
    return (
        pending.exclude(author_id=user.pk)
        .exclude(last_editor_id=user.pk)
        .exclude(author_id__in=sponsors)
        .exclude(last_editor_id__in=sponsors)
        .exclude(resource_type__in=about_me, identifier=str(user.pk))
        .exclude(Exists(mine))
    )


def change_requests_of(
    *, user: AbstractBaseUser, workspace: str | None = None
) -> QuerySet[ChangeRequest]:
    return change_requests_visible(user=user, workspace=workspace).filter(
        Q(author_id=user.pk) | Q(last_editor_id=user.pk)
    )


def change_request_timeline(*, change_request: ChangeRequest) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(change_request_id=change_request.pk).order_by("seq")


def review_count_for(user: AbstractBaseUser, workspace: str | None = None) -> int:
    return change_requests_awaiting_review(user=user, workspace=workspace).count()
