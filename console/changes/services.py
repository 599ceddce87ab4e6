"""Writes of change requests. Each runs in one durable transaction with its audit entry;
emails and the apply task are sent only after the commit."""

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from console.audit import events
from console.audit.services import Outcome, audit_append
from console.braze.errors import BrazeError, describe_error
from console.celery import task_enqueue
from console.changes import diff
from console.changes.appliers import ApplyRefused
from console.changes.models import (
    AccountSponsor,
    ChangeAction,
    ChangeRequest,
    ChangeState,
    Comment,
    Decision,
    Review,
    SponsorReason,
)
from console.changes.policy import RESOURCE_TYPE as POLICY_RESOURCE_TYPE
from console.changes.policy import approvals_required, policy_identifier
from console.changes.resource_types import (
    ResourceType,
    resource_type_find,
    resource_type_get,
)
from console.changes.selectors import (
    approvals_count_since,
    approvals_expired,
    change_request_may_view,
)
from console.notifications.models import NotificationKind
from console.notifications.services import change_request_notify
from console.roles import Capability, user_capabilities, users_holding
from console.workspace_urls import workspace_reverse
from console.workspaces import (
    workspace_active,
    workspace_default_key,
    workspace_get,
    workspace_override,
    workspaces_all,
)

logger = logging.getLogger(__name__)

# A worker that has not finished an apply within this time is presumed dead; the next
# attempt re-reads Braze before sending anything.
APPLY_LEASE = timedelta(minutes=10)
# Queued by name (console.celery.task_enqueue): the tasks module imports this one.
APPLY_TASK = "console.changes.tasks.change_request_apply_task"

EDITABLE = {
    ChangeState.DRAFT,
    ChangeState.PENDING,
    ChangeState.APPROVED,
    ChangeState.FAILED,
    ChangeState.CONFLICT,
}
CANCELLABLE = EDITABLE


class ChangeRequestError(Exception):
    """A refused operation; the message is shown to the user as is."""


class FourEyesViolation(ChangeRequestError):
    pass


class InvalidTransition(ChangeRequestError):
    pass


def _personal_fields(resource_type: str) -> frozenset[str]:
    found = resource_type_find(resource_type)
    return found.personal_fields if found is not None else frozenset()


def _split_personal(
    fields: frozenset[str], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Move personal values (e.g. a dashboard user's email) out of the chained data.

    The chain then covers only their digest, so they can be erased on request. The
    personal part is flat at the top (`email`, ...) so erasure can find it by value.
    """
    if not fields:
        return data, None
    public: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list) and all(isinstance(r, dict) and "field" in r for r in value):
            personal_rows = [r for r in value if r["field"] in fields]
            public[key] = [
                {"field": r["field"], "personal": True} if r["field"] in fields else r
                for r in value
            ]
            if personal_rows:
                moved[key] = personal_rows
                for row in personal_rows:
                    flat.setdefault(row["field"], row.get("after") or row.get("before"))
        elif isinstance(value, dict) and fields & value.keys():
            public[key] = {k: ("[personal]" if k in fields else v) for k, v in value.items()}
            moved[key] = {k: value[k] for k in fields & value.keys()}
            for k in fields & value.keys():
                flat.setdefault(k, value[k])
        else:
            public[key] = value
    if not moved:
        return data, None
    return public, {**flat, "moved": moved}


def _cr_audit(
    *,
    actor: AbstractBaseUser,
    cr: ChangeRequest,
    action: str,
    outcome: str = Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
) -> None:
    fields = _personal_fields(cr.resource_type)
    public, personal = _split_personal(fields, data or {})
    if fields and public.get("comment"):
        # Free text about a person (a reviewer's "checked with Ann") is theirs too: kept in
        # the erasable part, which erasing the person deletes for all of the request's entries.
        personal = {**(personal or {}), "comment": public["comment"]}
        public = {**public, "comment": "[personal]"}
    audit_append(
        actor=actor,
        action=action,
        outcome=outcome,
        resource_type=cr.resource_type,
        resource_id=cr.identifier,
        change_request_id=cr.pk,
        data={
            "state": cr.state,
            "payload_hash": cr.payload_hash,
            **_names_kept(cr),
            **public,
        },
        personal=personal,
        workspace=cr.workspace,
    )


def _names_kept(cr: ChangeRequest) -> dict[str, str]:
    """The request's title and its resource's name as they are now, for the log's sentences
    and its search (the request may be renamed, the resource deleted, later). Requests about
    people keep neither: their titles name someone, and the chained data is never erased."""
    kind = resource_type_find(cr.resource_type)
    if kind is None or kind.personal_fields or kind.concerns_console_user:
        return {}
    kept = {"title": cr.title}
    if kind.name_of is not None and (name := kind.name_of(cr)):
        kept["resource_name"] = name
    return kept


def _require(actor: AbstractBaseUser, capability: Capability, workspace: str | None = None) -> None:
    """``actor`` holds ``capability`` (in ``workspace``, a key, when named)."""
    if capability not in user_capabilities(actor, workspace):
        raise ChangeRequestError(f"You need the {capability.value} capability to do this.")


def _review_capability(resource_type: str) -> Capability:
    found = resource_type_find(resource_type)
    return found.review if found is not None else Capability.REVIEW


def _allows_full_rate_limit(resource_type: str) -> bool:
    found = resource_type_find(resource_type)
    return found is not None and found.full_rate_limit


def may_take_part(
    actor: AbstractBaseUser, resource_type: str, workspace: str | None = None
) -> bool:
    """Who proposes or reviews this resource type (Editors and Reviewers for content,
    Admins for dashboard users and console roles) may comment on and retry its requests,
    provided they may see them at all (in ``workspace``, the request's, when named)."""
    found = resource_type_find(resource_type)
    if found is None:
        return False
    allowed = {found.propose, found.review}
    return change_request_may_view(
        user=actor, resource_type=resource_type, workspace=workspace
    ) and bool(user_capabilities(actor, workspace) & allowed)


def _locked(change_request: ChangeRequest) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update().get(pk=change_request.pk)


def live_approvals(cr: ChangeRequest) -> list[Review]:
    """Approvals of the current payload by people who are not its authors, given within
    `APPROVAL_MAX_AGE_DAYS`."""
    return list(
        cr.reviews.filter(
            decision=Decision.APPROVE,
            dismissed_at__isnull=True,
            payload_hash=cr.payload_hash,
            created_at__gte=approvals_count_since(),
        )
        .exclude(reviewer_id__in=[cr.author_id, cr.last_editor_id])
        .select_related("reviewer")
    )


def review_refusal(actor: AbstractBaseUser, cr: ChangeRequest) -> str | None:
    """Why `actor` may not approve or reject `cr` at all; None when they may."""
    if actor.pk == cr.author_id:
        return "You proposed this change, so someone else must review it."
    if actor.pk == cr.last_editor_id:
        return "You last changed this proposal, so someone else must review it."
    capability = _review_capability(cr.resource_type)
    if capability not in user_capabilities(actor, cr.workspace) or not change_request_may_view(
        user=actor, resource_type=cr.resource_type, workspace=cr.workspace
    ):
        if capability == Capability.MANAGE_USERS:
            return "Only another Admin can approve or reject this change."
        return "Only reviewers can approve or reject changes."
    found = resource_type_find(cr.resource_type)
    if found is not None and found.concerns_console_user and cr.identifier == str(actor.pk):
        return "This change is about your own account, so another Admin must review it."
    return None


def _sponsor_refusal(actor: AbstractBaseUser, cr: ChangeRequest) -> str | None:
    """The request's authors made this account, or gave it its roles: they could have made
    it for themselves, so it cannot be the second pair of eyes on their changes."""
    row = (
        AccountSponsor.objects.filter(
            user_id=actor.pk, sponsor_id__in={cr.author_id, cr.last_editor_id}
        )
        .select_related("sponsor")
        .order_by("reason")
        .first()
    )
    if row is None:
        return None
    what = (
        "created your account" if row.reason == SponsorReason.CREATED else "last changed your roles"
    )
    return (
        f"{row.sponsor.get_username()} {what}, so you cannot approve their changes: "
        "someone else must."
    )


def approve_refusal(actor: AbstractBaseUser, cr: ChangeRequest) -> str | None:
    """Why `actor` may not approve `cr`; None when they may."""
    return review_refusal(actor, cr) or _sponsor_refusal(actor, cr)


def account_sponsors_set(*, user_id: int, reason: SponsorReason, sponsor_ids: set[int]) -> None:
    """Record who created `user_id`'s account or last changed its roles (in the caller's
    transaction). A role change replaces the previous role changers."""
    AccountSponsor.objects.filter(user_id=user_id, reason=reason).delete()
    AccountSponsor.objects.bulk_create(
        AccountSponsor(user_id=user_id, sponsor_id=sponsor_id, reason=reason)
        for sponsor_id in sorted(sponsor_ids)
        if sponsor_id != user_id
    )


def _apply_at_line(cr: ChangeRequest) -> str:
    if cr.apply_at is None:
        return ""
    local = cr.apply_at.astimezone(ZoneInfo(settings.CONSOLE_TIME_ZONE))
    return (
        f"Once approved it is applied at {local:%Y-%m-%d %H:%M} ({settings.CONSOLE_TIME_ZONE}).\n"
    )


def _notify_reviewers(cr: ChangeRequest) -> None:
    # Who may review in the request's workspace: a Reviewer everywhere who is only a
    # Viewer in production is not asked about production's changes.
    reviewer_ids = set(
        users_holding(_review_capability(cr.resource_type), workspace=cr.workspace)
        .exclude(pk__in=[cr.author_id, cr.last_editor_id])
        .exclude(notification_opt_outs__kind=NotificationKind.REVIEW_REQUESTED)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not reviewer_ids:
        return
    path = workspace_reverse("changes:detail", workspace=cr.workspace, args=[cr.pk])
    message = EmailMessage(
        subject=f"Review requested: {cr.title}",
        body=(
            f"{cr.last_editor.get_username()} asks for a review of change request #{cr.pk}:\n"
            f"{cr.title}\n{_apply_at_line(cr)}\nOpen it in the console: {path}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        bcc=sorted(reviewer_ids),
    )
    try:
        message.send()
    except Exception:  # an unreachable mail server must not fail the request
        logger.exception("could not email reviewers about change request %s", cr.pk)


def _enqueue_apply(cr: ChangeRequest, actor: AbstractBaseUser) -> None:
    cr_id, actor_id, workspace = cr.pk, actor.pk, cr.workspace
    transaction.on_commit(lambda: task_enqueue(APPLY_TASK, cr_id, actor_id, workspace))


def change_request_propose(
    *,
    actor: AbstractBaseUser,
    resource_type: str,
    identifier: str,
    action: str,
    payload: dict[str, Any],
    base_snapshot: dict[str, Any] | None,
    title: str = "",
    submit: bool = True,
    workspace: str | None = None,
    also_audit: tuple[str, dict[str, Any]] | None = None,
) -> ChangeRequest:
    """Open a change request (pending review, or a draft with submit=False) in ``workspace``
    (a key; default: the default workspace). ``also_audit``: one more entry about the
    request, (action, data), written in the same transaction (a promotion's own)."""
    kind = resource_type_get(resource_type)
    workspace = workspace if workspace is not None else workspace_active().key
    _require(actor, kind.propose, workspace)
    try:
        kind.identifiers.parse(identifier)
    except ValueError as exc:
        raise ChangeRequestError(f"{kind.label}: {exc}.") from None
    action = ChangeAction(action)
    proposed = kind.applier.proposed_state(base_snapshot, action, payload)
    with transaction.atomic(durable=True):
        cr = ChangeRequest.objects.create(
            workspace=workspace,
            resource_type=resource_type,
            identifier=identifier,
            action=action,
            title=title or f"{action.label} {kind.label.lower()} {identifier}",
            payload=payload,
            base_snapshot=base_snapshot,
            diff=diff.field_diff(base_snapshot, proposed),
            payload_hash=diff.payload_hash(
                resource_type=resource_type, identifier=identifier, action=action, payload=payload
            ),
            state=ChangeState.PENDING if submit else ChangeState.DRAFT,
            submitted_at=timezone.now() if submit else None,
            author_id=actor.pk,
            last_editor_id=actor.pk,
        )
        _cr_audit(actor=actor, cr=cr, action=events.CHANGE_REQUEST_PROPOSED, data={"diff": cr.diff})
        if also_audit is not None:
            _cr_audit(actor=actor, cr=cr, action=also_audit[0], data=also_audit[1])
        if submit:
            transaction.on_commit(lambda: _notify_reviewers(cr))
    return cr


def change_request_submit(
    *, actor: AbstractBaseUser, change_request: ChangeRequest
) -> ChangeRequest:
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        if actor.pk not in (cr.author_id, cr.last_editor_id):
            raise ChangeRequestError("Only its author can submit this change for review.")
        if cr.state != ChangeState.DRAFT:
            raise InvalidTransition(f"This change is {cr.get_state_display().lower()}.")
        cr.state, cr.submitted_at = ChangeState.PENDING, timezone.now()
        cr.save()
        _cr_audit(actor=actor, cr=cr, action=events.CHANGE_REQUEST_SUBMITTED)
        transaction.on_commit(lambda: _notify_reviewers(cr))
    return cr


def change_request_edit(
    *,
    actor: AbstractBaseUser,
    change_request: ChangeRequest,
    payload: dict[str, Any],
    base_snapshot: dict[str, Any] | None = None,
    rebase: bool = False,
    title: str | None = None,
) -> ChangeRequest:
    """Change the proposal. A new payload voids every approval given to the old one,
    and its editor becomes an author of this version (who cannot approve it)."""
    _require(
        actor, resource_type_get(change_request.resource_type).propose, change_request.workspace
    )
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        if cr.state not in EDITABLE:
            raise InvalidTransition(f"A {cr.get_state_display().lower()} change cannot be edited.")
        old_payload = cr.payload
        if rebase:
            cr.base_snapshot, cr.current_snapshot = base_snapshot, None
        new_hash = diff.payload_hash(
            resource_type=cr.resource_type,
            identifier=cr.identifier,
            action=cr.action,
            payload=payload,
        )
        dismissed = 0
        # Compared by content: a request's stored hash may predate the keyed payload hash.
        changed = not diff.same(payload, cr.payload) or rebase
        if changed:
            dismissed = cr.reviews.filter(dismissed_at__isnull=True).update(
                dismissed_at=timezone.now()
            )
            cr.payload, cr.payload_hash, cr.last_editor_id = payload, new_hash, actor.pk
            # An approver's permission went with the approvals it was given beside.
            cr.full_rate_limit = False
            proposed = resource_type_get(cr.resource_type).applier.proposed_state(
                cr.base_snapshot, cr.action, payload
            )
            cr.diff = diff.field_diff(cr.base_snapshot, proposed)
            if cr.state != ChangeState.DRAFT:
                cr.state = ChangeState.PENDING
            cr.error_message, cr.error_id = "", ""
        if title:
            cr.title = title
        cr.save()
        _cr_audit(
            actor=actor,
            cr=cr,
            action=events.CHANGE_REQUEST_EDITED,
            data={
                "diff": diff.field_diff(old_payload, payload),
                "approvals_dismissed": dismissed,
                "rebased": rebase,
            },
        )
        if changed and cr.state == ChangeState.PENDING:
            transaction.on_commit(lambda: _notify_reviewers(cr))
    return cr


def change_request_approve(
    *,
    actor: AbstractBaseUser,
    change_request: ChangeRequest,
    comment: str = "",
    full_rate_limit: bool = False,
) -> ChangeRequest:
    """Approve the current version. Refusals (four eyes) are audited, then raised.

    ``full_rate_limit``: the approver lets the work use the whole of Braze's limit instead
    of background work's share (only where the resource's applier allows it: bulk jobs).
    Recorded on the request and in the approval's audit entry.
    """
    if full_rate_limit and not _allows_full_rate_limit(change_request.resource_type):
        raise ChangeRequestError("This kind of change cannot be allowed the whole rate limit.")
    refusal: str | None = None
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        refusal = approve_refusal(actor, cr)
        if refusal:
            _cr_audit(
                actor=actor,
                cr=cr,
                action=events.CHANGE_REQUEST_APPROVE_REFUSED,
                outcome=Outcome.REFUSED,
                data={"reason": refusal},
            )
        else:
            if cr.state != ChangeState.PENDING:
                raise InvalidTransition(
                    f"This change is {cr.get_state_display().lower()}, not awaiting review."
                )
            live = live_approvals(cr)
            if any(r.reviewer_id == actor.pk for r in live):
                return cr  # a replayed POST: the approval already counts
            # The same reviewer asked again: their expired approval makes way for this one.
            cr.reviews.filter(
                pk__in=[r.pk for r in approvals_expired(change_request=cr)], reviewer_id=actor.pk
            ).update(dismissed_at=timezone.now())
            Review.objects.create(
                change_request=cr,
                reviewer_id=actor.pk,
                decision=Decision.APPROVE,
                comment=comment,
                payload_hash=cr.payload_hash,
            )
            if full_rate_limit:
                cr.full_rate_limit = True
                cr.save(update_fields=["full_rate_limit", "updated_at"])
            required = approvals_required(
                resource_type=cr.resource_type, action=cr.action, workspace=cr.workspace
            )
            count = len(live) + 1
            if count >= required:
                cr.state, cr.apply_requested_by_id = ChangeState.APPROVED, actor.pk
                cr.save()
                if cr.apply_at is None:
                    _enqueue_apply(cr, actor)
                change_request_notify(
                    change_request=cr, kind=NotificationKind.APPROVED, comment=comment
                )
            data: dict[str, Any] = {"approvals": count, "required": required, "comment": comment}
            if _allows_full_rate_limit(cr.resource_type):
                # Whether this approver let the work use the whole limit, and the outcome.
                data["full_rate_limit_allowed"] = full_rate_limit
                data["full_rate_limit"] = cr.full_rate_limit
            _cr_audit(actor=actor, cr=cr, action=events.CHANGE_REQUEST_APPROVED, data=data)
    if refusal:
        raise FourEyesViolation(refusal)
    return cr


def _closed(resource_type: str, *, change_request_id: int, actor: AbstractBaseUser) -> None:
    """Run the type's close hook, if it has one (after the commit).

    The rejection or withdrawal has committed already, so a failing hook is logged, not
    raised: the resource's own sweeper is the backstop.
    """
    found = resource_type_find(resource_type)
    if found is None or found.on_close is None:
        return
    try:
        found.on_close(change_request_id=change_request_id, actor=actor)
    except Exception:
        logger.exception(
            "closing %s for change request #%s failed", resource_type, change_request_id
        )


def _on_commit_closed(cr: ChangeRequest, actor: AbstractBaseUser) -> None:
    resource_type, cr_id = cr.resource_type, cr.pk
    transaction.on_commit(lambda: _closed(resource_type, change_request_id=cr_id, actor=actor))


def change_request_reject(
    *, actor: AbstractBaseUser, change_request: ChangeRequest, comment: str
) -> ChangeRequest:
    if not comment.strip():
        raise ChangeRequestError("Say why you reject this change: a comment is required.")
    refusal: str | None = None
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        refusal = review_refusal(actor, cr)
        if refusal:
            _cr_audit(
                actor=actor,
                cr=cr,
                action=events.CHANGE_REQUEST_REJECT_REFUSED,
                outcome=Outcome.REFUSED,
                data={"reason": refusal},
            )
        else:
            if cr.state != ChangeState.PENDING:
                raise InvalidTransition(
                    f"This change is {cr.get_state_display().lower()}, not awaiting review."
                )
            Review.objects.create(
                change_request=cr,
                reviewer_id=actor.pk,
                decision=Decision.REJECT,
                comment=comment,
                payload_hash=cr.payload_hash,
            )
            cr.state = ChangeState.REJECTED
            cr.save()
            _cr_audit(
                actor=actor, cr=cr, action=events.CHANGE_REQUEST_REJECTED, data={"comment": comment}
            )
            change_request_notify(
                change_request=cr, kind=NotificationKind.REJECTED, comment=comment
            )
            _on_commit_closed(cr, actor)
    if refusal:
        raise FourEyesViolation(refusal)
    return cr


def change_request_cancel(
    *, actor: AbstractBaseUser, change_request: ChangeRequest, comment: str = ""
) -> ChangeRequest:
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        if actor.pk not in (cr.author_id, cr.last_editor_id):
            raise ChangeRequestError("Only its author can withdraw this change.")
        if cr.state not in CANCELLABLE:
            raise InvalidTransition(
                f"A {cr.get_state_display().lower()} change cannot be withdrawn."
            )
        cr.state = ChangeState.CANCELLED
        cr.save()
        _cr_audit(
            actor=actor, cr=cr, action=events.CHANGE_REQUEST_CANCELLED, data={"comment": comment}
        )
        _on_commit_closed(cr, actor)
    return cr


def change_request_retry(
    *, actor: AbstractBaseUser, change_request: ChangeRequest
) -> ChangeRequest:
    """Send a failed change again; its approvals still hold because the payload did not change."""
    if not may_take_part(actor, change_request.resource_type, change_request.workspace):
        raise ChangeRequestError(
            "Only those who propose or review this kind of change can retry it."
        )
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        if cr.state != ChangeState.FAILED:
            raise InvalidTransition("Only a failed change can be retried.")
        required = approvals_required(
            resource_type=cr.resource_type, action=cr.action, workspace=cr.workspace
        )
        if len(live_approvals(cr)) < required:
            raise ChangeRequestError("This change no longer has the approvals it needs.")
        cr.state, cr.apply_requested_by_id = ChangeState.APPROVED, actor.pk
        cr.save()
        _cr_audit(actor=actor, cr=cr, action=events.CHANGE_REQUEST_RETRY_REQUESTED)
        _enqueue_apply(cr, actor)
    return cr


def change_request_comment(
    *, actor: AbstractBaseUser, change_request: ChangeRequest, body: str
) -> Comment:
    """A comment changes no payload, so approvals stay."""
    if not body.strip():
        raise ChangeRequestError("A comment cannot be empty.")
    if not may_take_part(actor, change_request.resource_type, change_request.workspace):
        raise ChangeRequestError(
            "Only those who propose or review this kind of change can comment on it."
        )
    with transaction.atomic(durable=True):
        comment = Comment.objects.create(
            change_request=change_request, author_id=actor.pk, body=body
        )
        _cr_audit(
            actor=actor,
            cr=change_request,
            action=events.CHANGE_REQUEST_COMMENTED,
            data={"comment": body},
        )
    return comment


def _error_ids(exc: Exception) -> str:
    ids = [str(getattr(d, "id", "")) for d in getattr(exc, "errors", []) or []]
    ids = [i for i in ids if i]
    return ", ".join(ids) or type(exc).__name__


_OUTCOME_NOTICES = {
    ChangeState.APPLIED: NotificationKind.APPLIED,
    ChangeState.CONFLICT: NotificationKind.CONFLICT,
    ChangeState.FAILED: NotificationKind.FAILED,
}


def _notify_outcome(cr: ChangeRequest) -> None:
    kind = _OUTCOME_NOTICES.get(ChangeState(cr.state))
    if kind is not None:
        change_request_notify(change_request=cr, kind=kind)


def _finish(
    cr_id: int,
    actor: AbstractBaseUser,
    state: ChangeState,
    audit_action: str,
    outcome: str,
    data: dict[str, Any],
    braze_write: dict[str, Any] | None = None,
    **fields: Any,
) -> ChangeRequest:
    """Record the outcome: the Braze write (if one was sent) and the new state, together."""
    with transaction.atomic(durable=True):
        cr = ChangeRequest.objects.select_for_update().get(pk=cr_id)
        cr.state, cr.applying_since = state, None
        for name, value in fields.items():
            setattr(cr, name, value)
        cr.save()
        if braze_write is not None:
            audit_append(
                actor=actor,
                action=events.BRAZE_WRITE,
                outcome=outcome,
                resource_type=cr.resource_type,
                resource_id=cr.identifier,
                change_request_id=cr.pk,
                data=braze_write,
                workspace=cr.workspace,
            )
        _cr_audit(actor=actor, cr=cr, action=audit_action, outcome=outcome, data=data)
        _notify_outcome(cr)
    return cr


def change_request_apply(*, change_request_id: int, actor_id: int) -> ChangeRequest:
    """Send an approved change to Braze once (run by the Celery task, after commit), in the
    change request's workspace: its client, and the rows the apply writes.

    Re-reads the resource first: a Braze state other than the base snapshot is someone
    else's change, so the request goes to `conflict` instead of overwriting it. A retried
    attempt first asks whether Braze already holds the change and then sends nothing.
    """
    key = (
        ChangeRequest.objects.filter(pk=change_request_id)
        .values_list("workspace", flat=True)
        .first()
    )
    try:
        workspace = workspace_get(key or workspace_default_key())
    except LookupError:
        # A workspace no longer configured: nothing can be sent; the request stays as it is.
        logger.warning("change request %s: workspace %r is not configured", change_request_id, key)
        return ChangeRequest.objects.get(pk=change_request_id)
    with workspace_override(workspace):
        return _apply(change_request_id=change_request_id, actor_id=actor_id)


def _apply(*, change_request_id: int, actor_id: int) -> ChangeRequest:
    actor = get_user_model().objects.get(pk=actor_id)
    with transaction.atomic(durable=True):
        cr = ChangeRequest.objects.select_for_update().get(pk=change_request_id)
        now = timezone.now()
        if (
            cr.state == ChangeState.APPLYING
            and cr.applying_since
            and now - cr.applying_since < APPLY_LEASE
        ):
            return cr  # another worker is on it
        if cr.state not in (ChangeState.APPROVED, ChangeState.APPLYING):
            return cr  # withdrawn, applied or otherwise settled: nothing to send
        if cr.state == ChangeState.APPROVED and cr.apply_at is not None and cr.apply_at > now:
            return cr  # scheduled: change_requests_apply_due sends it at its time
        required = approvals_required(
            resource_type=cr.resource_type, action=cr.action, workspace=cr.workspace
        )
        if len(live_approvals(cr)) < required:
            expired = approvals_expired(change_request=cr)
            cr.state = ChangeState.PENDING
            cr.save()
            _cr_audit(
                actor=actor,
                cr=cr,
                action=events.CHANGE_REQUEST_APPLY_REFUSED,
                outcome=Outcome.REFUSED,
                data={
                    "reason": "approvals expired" if expired else "approvals no longer sufficient",
                    "expired_approvals": [r.reviewer_id for r in expired],
                },
            )
            # Back in review: the reviewers are asked again.
            transaction.on_commit(lambda: _notify_reviewers(cr))
            return cr
        cr.state, cr.applying_since = ChangeState.APPLYING, now
        cr.apply_attempts += 1
        cr.save()
        _cr_audit(
            actor=actor,
            cr=cr,
            action=events.CHANGE_REQUEST_APPLYING,
            data={"attempt": cr.apply_attempts},
        )
    kind = resource_type_get(cr.resource_type)
    if kind.local:
        return _apply_local(cr.pk, actor, kind)
    applier = kind.applier
    write = {"operation": f"{cr.resource_type}.{cr.action}", "attempt": cr.apply_attempts}
    try:
        if applier.is_applied(cr.action, cr.identifier, cr.payload):
            note = "Braze already holds this change; nothing was sent."
            return _finish(
                cr.pk,
                actor,
                ChangeState.APPLIED,
                events.CHANGE_REQUEST_APPLIED,
                Outcome.SUCCESS,
                {"braze_status": "already-applied", "note": note},
                braze_response={"note": note},
                applied_at=timezone.now(),
            )
        current = applier.read_current(cr.identifier)
        if not diff.same(current, cr.base_snapshot):
            return _finish(
                cr.pk,
                actor,
                ChangeState.CONFLICT,
                events.CHANGE_REQUEST_CONFLICT,
                Outcome.REFUSED,
                {"current": current},
                current_snapshot=current,
            )
        if cr.action == ChangeAction.UPDATE and kind.apply_update is not None:
            # Braze holds the base snapshot (checked just above): the applier may send
            # only what the proposal changes.
            response = kind.apply_update(cr.identifier, cr.payload, base=cr.base_snapshot)
        else:
            response = applier.apply(cr.action, cr.identifier, cr.payload)
    except BrazeError as exc:
        message, error_id = describe_error(exc), _error_ids(exc)
        return _finish(
            cr.pk,
            actor,
            ChangeState.FAILED,
            events.CHANGE_REQUEST_FAILED,
            Outcome.FAILURE,
            {"error": message, "error_id": error_id},
            braze_write={**write, "error": message, "error_id": error_id},
            error_message=message,
            error_id=error_id,
        )
    except ApplyRefused as exc:
        message = str(exc)
        return _finish(
            cr.pk,
            actor,
            ChangeState.FAILED,
            events.CHANGE_REQUEST_FAILED,
            Outcome.REFUSED,
            {"error": message, "error_id": "refused"},
            error_message=message,
            error_id="refused",
        )
    except Exception as exc:
        logger.exception("applying change request %s failed", cr.pk)
        message = "The console could not complete this change (an internal error)."
        return _finish(
            cr.pk,
            actor,
            ChangeState.FAILED,
            events.CHANGE_REQUEST_FAILED,
            Outcome.FAILURE,
            {"error": message, "error_id": type(exc).__name__},
            error_message=message,
            error_id=type(exc).__name__,
        )
    return _finish(
        cr.pk,
        actor,
        ChangeState.APPLIED,
        events.CHANGE_REQUEST_APPLIED,
        Outcome.SUCCESS,
        {"braze_status": "accepted", "response": response},
        braze_write={**write, "response": response},
        braze_response=response,
        applied_at=timezone.now(),
        error_message="",
        error_id="",
    )


def _apply_local(cr_id: int, actor: AbstractBaseUser, kind: ResourceType) -> ChangeRequest:
    """Apply a change to the console's own data: the change, its audit entries and the
    request's new state commit together, so there is no "may have landed" state."""
    try:
        with transaction.atomic(durable=True):
            cr = ChangeRequest.objects.select_for_update().get(pk=cr_id)
            if cr.state != ChangeState.APPLYING:
                return cr
            assert kind.apply_local is not None  # only local types come here
            applier = kind.applier
            if kind.lock is not None:
                kind.lock(cr.identifier)
            current = applier.read_current(cr.identifier)
            cr.applying_since = None
            if applier.is_applied(cr.action, cr.identifier, cr.payload):
                note = "The console already holds this change; nothing was changed."
                cr.state, cr.applied_at = ChangeState.APPLIED, timezone.now()
                cr.braze_response = {"note": note}
                cr.save()
                _cr_audit(
                    actor=actor, cr=cr, action=events.CHANGE_REQUEST_APPLIED, data={"note": note}
                )
                _notify_outcome(cr)
            elif not diff.same(current, cr.base_snapshot):
                cr.state, cr.current_snapshot = ChangeState.CONFLICT, current
                cr.save()
                _cr_audit(
                    actor=actor,
                    cr=cr,
                    action=events.CHANGE_REQUEST_CONFLICT,
                    outcome=Outcome.REFUSED,
                    data={"current": current},
                )
                _notify_outcome(cr)
            else:
                result = kind.apply_local(change_request=cr, actor=actor)
                cr.state, cr.applied_at = ChangeState.APPLIED, timezone.now()
                cr.braze_response, cr.error_message, cr.error_id = None, "", ""
                cr.save()
                _cr_audit(
                    actor=actor,
                    cr=cr,
                    action=events.CHANGE_REQUEST_APPLIED,
                    data={"result": result},
                )
                _notify_outcome(cr)
            return cr
    except ChangeRequestError as exc:
        message, error_id = str(exc), "refused"
    except Exception as exc:
        logger.exception("applying change request %s failed", cr_id)
        message = "The console could not complete this change (an internal error)."
        error_id = type(exc).__name__
    return _finish(
        cr_id,
        actor,
        ChangeState.FAILED,
        events.CHANGE_REQUEST_FAILED,
        Outcome.FAILURE,
        {"error": message, "error_id": error_id},
        error_message=message,
        error_id=error_id,
    )


def approval_policy_propose(
    *,
    actor: AbstractBaseUser,
    resource_type: str,
    action: str,
    required_approvals: int,
    workspace: str | None = None,
) -> ChangeRequest:
    """Ask another Admin to approve a new number of approvals for a resource type and
    action in ``workspace`` (a key; default: the default workspace): one Admin alone cannot
    lower what their own changes need. The request itself belongs to that workspace."""
    workspace = workspace if workspace is not None else workspace_default_key()
    _require(actor, Capability.MANAGE_USERS, workspace)
    if required_approvals < 1:
        raise ChangeRequestError("Every change needs at least one reviewer.")
    action = ChangeAction(action)
    before = approvals_required(resource_type=resource_type, action=action, workspace=workspace)
    if before == required_approvals:
        raise ChangeRequestError(
            f"{resource_type} {action.label.lower()} already needs {before} approval(s)."
        )
    return change_request_propose(
        actor=actor,
        resource_type=POLICY_RESOURCE_TYPE,
        identifier=policy_identifier(resource_type=resource_type, action=action),
        action=ChangeAction.UPDATE,
        payload={"required_approvals": required_approvals},
        base_snapshot={"required_approvals": before},
        title=(
            f"Approvals for {resource_type} {action.label.lower()}: {before} → {required_approvals}"
        ),
        workspace=workspace,
    )


def change_requests_sweep(*, older_than: timedelta = timedelta(minutes=2)) -> list[int]:
    """Re-enqueue approved requests whose task was lost (a web process killed between
    commit and enqueue, a broker restart) and applies whose worker died (lease expired).
    The apply step is idempotent, so a duplicate enqueue sends nothing twice."""
    now = timezone.now()
    stuck = ChangeRequest.objects.filter(
        state=ChangeState.APPROVED, updated_at__lt=now - older_than
    ).exclude(apply_at__gt=now) | ChangeRequest.objects.filter(
        state=ChangeState.APPLYING, applying_since__lt=now - APPLY_LEASE
    )
    # A request of a workspace taken out of the configuration cannot be sent: it waits,
    # unswept, until its workspace comes back instead of being re-queued every minute.
    stuck = stuck.filter(workspace__in=[w.key for w in workspaces_all()])
    ids = []
    for cr_id, actor_id, workspace in stuck.values_list("pk", "apply_requested_by_id", "workspace"):
        if actor_id is not None:
            task_enqueue(APPLY_TASK, cr_id, actor_id, workspace)
            ids.append(cr_id)
    return ids


# States in which the author may still set or move the time: before the change runs.
SCHEDULABLE = {ChangeState.DRAFT, ChangeState.PENDING, ChangeState.APPROVED}


def _schedule_refusal(
    actor: AbstractBaseUser, cr: ChangeRequest, *, unschedule: bool
) -> str | None:
    if actor.pk in (cr.author_id, cr.last_editor_id):
        return None
    if unschedule and review_refusal(actor, cr) is None:
        return None
    if unschedule:
        return "Only its author or a reviewer can unschedule this change."
    return "Only its author can schedule this change."


def _reset_for_new_time(cr: ChangeRequest) -> int:
    """Approvals were given for the old time (or for "now"): a new time asks again."""
    dismissed = cr.reviews.filter(dismissed_at__isnull=True).update(dismissed_at=timezone.now())
    if cr.state == ChangeState.APPROVED:
        cr.state, cr.apply_requested_by_id = ChangeState.PENDING, None
    return dismissed


def change_request_schedule(
    *, actor: AbstractBaseUser, change_request: ChangeRequest, apply_at: datetime
) -> ChangeRequest:
    """Ask that the change, once approved, be applied at `apply_at` (not at the approval).

    Reviewers approve the change with its time, so setting or moving it dismisses the
    approvals already given. An approval counts for APPROVAL_MAX_AGE_DAYS, so the time may
    be at most that far ahead.
    """
    if timezone.is_naive(apply_at):
        raise ChangeRequestError("The time needs a time zone.")
    now = timezone.now()
    if apply_at <= now:
        raise ChangeRequestError("Choose a time in the future.")
    if apply_at > now + timedelta(days=settings.APPROVAL_MAX_AGE_DAYS):
        raise ChangeRequestError(
            f"An approval counts for {settings.APPROVAL_MAX_AGE_DAYS} days, so a change can be "
            "scheduled at most that far ahead."
        )
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        refusal = _schedule_refusal(actor, cr, unschedule=False)
        if refusal:
            raise ChangeRequestError(refusal)
        if cr.state not in SCHEDULABLE:
            raise InvalidTransition(
                f"A {cr.get_state_display().lower()} change cannot be scheduled."
            )
        before = cr.apply_at
        dismissed = _reset_for_new_time(cr)
        cr.apply_at = apply_at
        cr.save()
        _cr_audit(
            actor=actor,
            cr=cr,
            action=events.CHANGE_REQUEST_SCHEDULED,
            data={
                "apply_at": apply_at.isoformat(),
                "previous": before.isoformat() if before else None,
                "time_zone": settings.CONSOLE_TIME_ZONE,
                "approvals_dismissed": dismissed,
            },
        )
        if dismissed and cr.state == ChangeState.PENDING:
            transaction.on_commit(lambda: _notify_reviewers(cr))
    return cr


def change_request_unschedule(
    *, actor: AbstractBaseUser, change_request: ChangeRequest
) -> ChangeRequest:
    """Take the time off a change that has not run yet (its author or a reviewer).

    It then waits in review: an approval given for that time is dismissed, so nothing is
    applied at a moment nobody approved.
    """
    with transaction.atomic(durable=True):
        cr = _locked(change_request)
        refusal = _schedule_refusal(actor, cr, unschedule=True)
        if refusal:
            raise ChangeRequestError(refusal)
        if cr.apply_at is None or cr.state not in SCHEDULABLE:
            raise InvalidTransition("This change is not waiting for a scheduled time.")
        before = cr.apply_at
        dismissed = _reset_for_new_time(cr)
        cr.apply_at = None
        cr.save()
        _cr_audit(
            actor=actor,
            cr=cr,
            action=events.CHANGE_REQUEST_UNSCHEDULED,
            data={"previous": before.isoformat(), "approvals_dismissed": dismissed},
        )
    return cr


def change_requests_apply_due(*, now: datetime | None = None) -> list[int]:
    """Hand approved changes whose time has come to the apply task (every 30 s, by beat).

    The apply step re-checks everything at its own moment (the time, the approvals' age,
    Braze's state against the base snapshot) and runs once, so a second pick of the same
    request sends nothing twice.
    """
    due = ChangeRequest.objects.filter(
        state=ChangeState.APPROVED, apply_at__lte=now or timezone.now()
    ).order_by("apply_at", "pk")
    ids = []
    for cr_id, actor_id, workspace in due.values_list("pk", "apply_requested_by_id", "workspace"):
        if actor_id is not None:
            task_enqueue(APPLY_TASK, cr_id, actor_id, workspace)
            ids.append(cr_id)
    return ids
