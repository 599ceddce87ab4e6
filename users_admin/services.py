"""Writes of the Users section: console users and dashboard users.

Console users are not Braze resources: inviting, deactivating and granting Viewer, Editor
or Auditor (or removing roles) take effect at once, each committed with its audit entry.
Granting Reviewer or Admin makes someone a checker, so it is a change request (resource
type `console_role`) that another Admin approves and the apply step sets in the database.
Who created an account and who last changed its roles is recorded: that account may not
approve their change requests. Dashboard users are change requests applied through SCIM
by the applier in `users_admin.appliers`. Names and emails of the people concerned go
into an audit entry's erasable `personal` part, never into its chained `data`.
"""

import contextlib
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group, User
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from console.audit import events
from console.audit.services import Outcome, audit_append
from console.braze import BrazeError, BrazeRateLimited, describe_error, get_client
from console.celery import task_enqueue
from console.changes.models import ChangeAction, ChangeRequest, SponsorReason
from console.changes.services import (
    ChangeRequestError,
    account_sponsors_set,
    change_request_propose,
)
from console.role_models import WorkspaceRole
from console.roles import (
    GRANTS_NEEDING_APPROVAL,
    Capability,
    Role,
    roles_ensure_groups,
    user_roles_assign,
    user_workspace_roles_assign,
    users_holding,
)
from console.workspaces import workspace_active, workspace_get, workspaces_all
from users_admin.identifiers import (
    IDENTIFIERS,
    RESOURCE_TYPE,
    ROLES_IDENTIFIERS,
    ROLES_RESOURCE_TYPE,
    WORKSPACE_ROLES_IDENTIFIERS,
    WORKSPACE_ROLES_RESOURCE_TYPE,
)
from users_admin.scim_rules import normal_permissions
from users_admin.selectors import (
    access_review_budget_key,
    access_review_run_key,
    console_user_workspace_roles_snapshot,
    dashboard_user_row,
    dashboard_users_setup_problem,
    status_row,
)

logger = logging.getLogger(__name__)


class SelfLockoutError(Exception):
    """The change would leave the console without an active Admin."""


LAST_ADMIN_ROLE_MESSAGE = (
    "You are the last active Admin, so you cannot remove your own Admin role: "
    "nobody could manage users any more. Give another person the Admin role first."
)
LAST_ADMIN_DEACTIVATE_MESSAGE = (
    "You are the last active Admin, so you cannot deactivate yourself: "
    "nobody could manage users any more. Give another person the Admin role first."
)

LAST_ADMIN_OTHER_MESSAGE = (
    "This is the last active Admin: the console must keep at least one. "
    "Give another person the Admin role first."
)


def _personal(user: User) -> dict[str, str]:
    return {"username": user.get_username(), "email": user.email}


def _role_names(roles: Iterable[Role]) -> list[str]:
    return sorted(role.value for role in roles)


def _current_roles(user: User) -> set[Role]:
    names = set(user.groups.values_list("name", flat=True))
    return {role for role in Role if role.value in names}


def _other_active_admins_locked(*, user: User) -> int:
    """Active Admins other than `user`, counted while holding the Admin group's row lock.

    Two Admins who demote themselves at the same moment queue on that lock; the count is
    a new statement run after it is granted, so the second one sees the first one's
    committed change and is refused. (Locking the user rows would not do: a role change
    touches only the membership table.)
    """
    roles_ensure_groups()
    Group.objects.select_for_update().get(name=Role.ADMIN.value)
    return (
        User.objects.filter(is_active=True, groups__name=Role.ADMIN.value)
        .exclude(pk=user.pk)
        .count()
    )


def _workspace_left_without_admin(*, user: User, roles: set[Role] | None) -> str | None:
    """The key of a workspace that would have no active Admin if `user`'s console-wide roles
    became `roles` (None: if they were deactivated), else None. Workspaces where they hold
    roles of that workspace keep them through a console-wide change. Counted under the
    Admin group's row lock, like ``_other_active_admins_locked``."""
    if not user.is_active:
        return None
    roles_ensure_groups()
    Group.objects.select_for_update().get(name=Role.ADMIN.value)
    scoped = set(WorkspaceRole.objects.filter(user_id=user.pk).values_list("workspace", flat=True))
    for workspace in workspaces_all():
        if roles is not None and (workspace.key in scoped or Role.ADMIN in roles):
            continue
        admins = users_holding(Capability.MANAGE_USERS, workspace=workspace.key)
        if admins.filter(pk=user.pk).exists() and not admins.exclude(pk=user.pk).exists():
            return workspace.key
    return None


def _refuse(
    *,
    actor: AbstractBaseUser,
    action: str,
    user: User,
    message: str,
    workspace: str | None = None,
) -> None:
    # Recorded in its own transaction: the refused change was rolled back, its record stays.
    with transaction.atomic():
        audit_append(
            actor=actor,
            action=action,
            outcome=Outcome.REFUSED,
            resource_type="console_user",
            resource_id=str(user.pk),
            data={"reason": "last_active_admin"},
            personal=_personal(user),
            workspace=workspace,
        )
    raise SelfLockoutError(message)


def password_set_path(*, user: User) -> str:
    """The one-time link's path: Django's reset token dies once a password is set."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("users_admin:set_password", kwargs={"uidb64": uidb64, "token": token})


def _invitation_send(*, user_id: int, base_url: str) -> None:
    user = User.objects.get(pk=user_id)
    link = base_url.rstrip("/") + password_set_path(user=user)
    try:
        _invitation_mail(user=user, link=link)
    except Exception:  # the account exists; "Email a new password link" sends it again
        logger.exception("could not email the invitation of console user %s", user_id)


def _invitation_mail(*, user: User, link: str) -> None:
    send_mail(
        subject="Your Braze Content Console account",
        message=(
            f"Hello {user.get_full_name() or user.get_username()},\n\n"
            f"An account was created for you on the Braze Content Console.\n"
            f"Your username is: {user.get_username()}\n\n"
            f"Choose your password here (the link works once):\n{link}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


def user_create(
    *,
    actor: AbstractBaseUser,
    username: str,
    email: str,
    first_name: str,
    last_name: str,
    roles: set[Role],
    base_url: str,
) -> User:
    """Invite a console user: no password yet; a one-time password-set link by email.

    The link is sent after commit, so a rolled-back invitation sends nothing. Neither the
    link nor any password is shown to the Admin or written to the audit trail. Reviewer
    and Admin are not given here: they are proposed for another Admin's approval
    (`console_user_role_requests` finds the request).
    """
    at_once = roles - GRANTS_NEEDING_APPROVAL
    with transaction.atomic(durable=True):
        user = User(username=username, email=email, first_name=first_name, last_name=last_name)
        user.set_unusable_password()
        user.save()
        user_roles_assign(user=user, roles=at_once)
        account_sponsors_set(user_id=user.pk, reason=SponsorReason.CREATED, sponsor_ids={actor.pk})
        audit_append(
            actor=actor,
            action=events.USER_INVITED,
            resource_type="console_user",
            resource_id=str(user.pk),
            data={"roles": _role_names(at_once)},
            personal=_personal(user),
        )
        user_id = user.pk
        transaction.on_commit(lambda: _invitation_send(user_id=user_id, base_url=base_url))
    if roles != at_once:
        _roles_propose(actor=actor, user=user, before=at_once, roles=roles)
    return user


def _roles_propose(
    *, actor: AbstractBaseUser, user: User, before: set[Role], roles: set[Role]
) -> ChangeRequest:
    granted = ", ".join(_role_names((roles - before) & GRANTS_NEEDING_APPROVAL))
    return change_request_propose(
        actor=actor,
        resource_type=ROLES_RESOURCE_TYPE,
        identifier=ROLES_IDENTIFIERS.build(user=str(user.pk)),
        action=ChangeAction.UPDATE,
        payload={"roles": _role_names(roles)},
        base_snapshot={"roles": _role_names(before)},
        title=f"Give {user.get_username()} the {granted} role"[:200],
    )


def user_invitation_resend(*, actor: AbstractBaseUser, user: User, base_url: str) -> None:
    with transaction.atomic(durable=True):
        audit_append(
            actor=actor,
            action=events.USER_INVITATION_RESENT,
            resource_type="console_user",
            resource_id=str(user.pk),
            personal=_personal(user),
        )
        user_id = user.pk
        transaction.on_commit(lambda: _invitation_send(user_id=user_id, base_url=base_url))


def user_set_roles(
    *, actor: AbstractBaseUser, user: User, roles: set[Role]
) -> ChangeRequest | None:
    """Replace `user`'s roles, audited. The last active Admin cannot drop their own Admin role.

    A new Reviewer or Admin role is not given here: the whole new set of roles is proposed
    as a change request for another Admin to approve, and returned. Otherwise the roles
    change at once and None is returned.

    Every change a person makes to roles goes through this function (seeding demo and
    test accounts calls `console.roles.user_roles_assign`, the membership write alone).
    """
    before = _current_roles(user)
    if (roles - before) & GRANTS_NEEDING_APPROVAL:
        return _roles_propose(actor=actor, user=user, before=before, roles=roles)
    with transaction.atomic(durable=True):
        user = User.objects.select_for_update().get(pk=user.pk)
        before = _current_roles(user)
        # A role removed since the check above would now be granted again: propose that.
        regrant = bool((roles - before) & GRANTS_NEEDING_APPROVAL)
        losing_admin = Role.ADMIN in before and Role.ADMIN not in roles
        # Checked for anyone, not only oneself: two Admins demoting each other at the
        # same moment must not leave the console without one either.
        refused = (
            not regrant
            and losing_admin
            and user.is_active
            and _other_active_admins_locked(user=user) == 0
        )
        lost = (
            _workspace_left_without_admin(user=user, roles=roles)
            if not regrant and not refused and losing_admin
            else None
        )
        if not regrant and not refused and lost is None:
            if before == roles:
                return None
            user_roles_assign(user=user, roles=roles)
            account_sponsors_set(
                user_id=user.pk, reason=SponsorReason.ROLES, sponsor_ids={actor.pk}
            )
            audit_append(
                actor=actor,
                action=events.USER_ROLES_CHANGED,
                resource_type="console_user",
                resource_id=str(user.pk),
                data={
                    "before": _role_names(before),
                    "after": _role_names(roles),
                    "added": _role_names(roles - before),
                    "removed": _role_names(before - roles),
                },
                personal=_personal(user),
            )
            return None
    if regrant:
        return _roles_propose(actor=actor, user=user, before=before, roles=roles)
    message = LAST_ADMIN_ROLE_MESSAGE if user.pk == actor.pk else LAST_ADMIN_OTHER_MESSAGE
    if lost is not None:
        message = last_admin_workspace_message(workspace=lost)
    _refuse(actor=actor, action=events.USER_ROLES_CHANGED, user=user, message=message)
    return None


def user_roles_apply_approved(
    *, actor: AbstractBaseUser, change_request: ChangeRequest
) -> dict[str, Any]:
    """Set the roles an approved `console_role` request names (run by the apply step, in
    its transaction; `actor` is the approving Admin). Its authors become the ones who last
    changed this account's roles."""
    user = User.objects.select_for_update().get(pk=int(change_request.identifier))
    before = _current_roles(user)
    roles = {Role(name) for name in change_request.payload["roles"]}
    if (
        Role.ADMIN in before
        and Role.ADMIN not in roles
        and user.is_active
        and _other_active_admins_locked(user=user) == 0
    ):
        raise ChangeRequestError(LAST_ADMIN_OTHER_MESSAGE)
    if Role.ADMIN in before and Role.ADMIN not in roles:
        lost = _workspace_left_without_admin(user=user, roles=roles)
        if lost is not None:
            raise ChangeRequestError(last_admin_workspace_message(workspace=lost))
    user_roles_assign(user=user, roles=roles)
    account_sponsors_set(
        user_id=user.pk,
        reason=SponsorReason.ROLES,
        sponsor_ids={change_request.author_id, change_request.last_editor_id},
    )
    audit_append(
        actor=actor,
        action=events.USER_ROLES_CHANGED,
        resource_type="console_user",
        resource_id=str(user.pk),
        change_request_id=change_request.pk,
        data={
            "before": _role_names(before),
            "after": _role_names(roles),
            "added": _role_names(roles - before),
            "removed": _role_names(before - roles),
            "proposed_by": change_request.author_id,
        },
        personal=_personal(user),
    )
    return {"roles": _role_names(roles)}


# --- roles in one workspace ---------------------------------------------------------------
#
# Any role someone holds in a workspace replaces there their console-wide roles
# (console.roles). Every change of them is a change request of that workspace: proposed by
# an Admin there, approved by another under that workspace's approval policy (production may
# need two), applied by the worker. Unlike console-wide Viewer or Editor, nothing is given at
# once: what someone may do in production is production's change to review.


def _workspace_label(workspace: str) -> str:
    try:
        found = workspace_get(workspace)
    except LookupError:
        return workspace
    return f"{found.label} (production)" if found.production else found.label


def _workspace_state(roles: set[Role] | None) -> dict[str, Any]:
    return {"same_as_console_wide": roles is None, "roles": _role_names(roles or set())}


def _workspace_admin_lost(*, user: User, workspace: str, roles: set[Role] | None) -> bool:
    """Whether giving `user` `roles` in `workspace` (None: their console-wide ones) leaves it
    with no active Admin. Counted under the Admin group's row lock, like console-wide."""
    if not user.is_active:
        return False
    holds = users_holding(Capability.MANAGE_USERS, workspace=workspace)
    if not holds.filter(pk=user.pk).exists():
        return False
    keeps = Role.ADMIN in (_current_roles(user) if roles is None else roles)
    if keeps:
        return False
    roles_ensure_groups()
    Group.objects.select_for_update().get(name=Role.ADMIN.value)
    return not holds.exclude(pk=user.pk).exists()


def last_admin_workspace_message(*, workspace: str) -> str:
    return (
        f"This is the last active Admin in {_workspace_label(workspace)}: every workspace "
        "must keep at least one. Give another person the Admin role there first."
    )


def user_workspace_roles_propose(
    *, actor: AbstractBaseUser, user: User, workspace: str, roles: set[Role] | None
) -> ChangeRequest | None:
    """Propose `roles` as `user`'s roles in `workspace` (a key; None: the same as their
    console-wide roles), as a change request of that workspace; None when they already
    hold exactly that. Refused (SelfLockoutError, audited) when it would leave the
    workspace without an active Admin; raises ChangeRequestError when `actor` may not
    manage users there."""
    if roles is not None and not roles:
        raise ValueError("roles of a workspace are at least one role, or None")
    before = console_user_workspace_roles_snapshot(user_id=user.pk, workspace=workspace)
    after = _workspace_state(roles)
    if before == after:
        return None
    with transaction.atomic(durable=True):
        refused = _workspace_admin_lost(user=user, workspace=workspace, roles=roles)
    if refused:
        _refuse(
            actor=actor,
            action=events.USER_WORKSPACE_ROLES_CHANGED,
            user=user,
            message=last_admin_workspace_message(workspace=workspace),
            workspace=workspace,
        )
    said = "the same as console-wide" if roles is None else ", ".join(_role_names(roles))
    return change_request_propose(
        actor=actor,
        resource_type=WORKSPACE_ROLES_RESOURCE_TYPE,
        identifier=WORKSPACE_ROLES_IDENTIFIERS.build(user=str(user.pk)),
        action=ChangeAction.UPDATE,
        payload=after,
        base_snapshot=before,
        title=f"Roles of {user.get_username()} in {_workspace_label(workspace)}: {said}"[:200],
        workspace=workspace,
    )


def user_workspace_roles_apply_approved(
    *, actor: AbstractBaseUser, change_request: ChangeRequest
) -> dict[str, Any]:
    """Set the roles an approved `workspace_role` request names in its workspace (run by the
    apply step, in its transaction; `actor` is the approving Admin). Its authors become the
    ones who last changed this account's roles."""
    cr = change_request
    user = User.objects.select_for_update().get(pk=int(cr.identifier))
    before = console_user_workspace_roles_snapshot(user_id=user.pk, workspace=cr.workspace)
    same = bool(cr.payload["same_as_console_wide"])
    roles = None if same else {Role(name) for name in cr.payload["roles"]}
    if _workspace_admin_lost(user=user, workspace=cr.workspace, roles=roles):
        raise ChangeRequestError(last_admin_workspace_message(workspace=cr.workspace))
    user_workspace_roles_assign(user=user, workspace=cr.workspace, roles=roles or set())
    account_sponsors_set(
        user_id=user.pk,
        reason=SponsorReason.ROLES,
        sponsor_ids={cr.author_id, cr.last_editor_id},
    )
    after = _workspace_state(roles)
    audit_append(
        actor=actor,
        action=events.USER_WORKSPACE_ROLES_CHANGED,
        resource_type="console_user",
        resource_id=str(user.pk),
        change_request_id=cr.pk,
        data={
            "workspace": cr.workspace,
            "before": before,
            "after": after,
            "proposed_by": cr.author_id,
        },
        personal=_personal(user),
        workspace=cr.workspace,
    )
    return after


def user_deactivate(*, actor: AbstractBaseUser, user: User) -> None:
    """Block sign-in and every role; the row stays for the audit trail and access review."""
    with transaction.atomic(durable=True):
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_active:
            return
        refused = Role.ADMIN in _current_roles(user) and _other_active_admins_locked(user=user) == 0
        # An Admin of one workspace only may be the last Admin there.
        lost = None if refused else _workspace_left_without_admin(user=user, roles=None)
        if not refused and lost is None:
            user.is_active = False
            user.save(update_fields=["is_active"])
            audit_append(
                actor=actor,
                action=events.USER_DEACTIVATED,
                resource_type="console_user",
                resource_id=str(user.pk),
                data={"roles": _role_names(_current_roles(user))},
                personal=_personal(user),
            )
            return
    message = LAST_ADMIN_DEACTIVATE_MESSAGE if user.pk == actor.pk else LAST_ADMIN_OTHER_MESSAGE
    if lost is not None:
        message = last_admin_workspace_message(workspace=lost)
    _refuse(actor=actor, action=events.USER_DEACTIVATED, user=user, message=message)


def user_reactivate(*, actor: AbstractBaseUser, user: User) -> None:
    with transaction.atomic(durable=True):
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active:
            return
        user.is_active = True
        user.save(update_fields=["is_active"])
        audit_append(
            actor=actor,
            action=events.USER_REACTIVATED,
            resource_type="console_user",
            resource_id=str(user.pk),
            data={"roles": _role_names(_current_roles(user))},
            personal=_personal(user),
        )


# --- Braze dashboard users: change requests --------------------------------------------


def _dashboard_payload(
    *, given_name: str, family_name: str, department: str, permissions: dict[str, Any]
) -> dict[str, Any]:
    return {
        "given_name": given_name,
        "family_name": family_name,
        "department": department,
        "permissions": normal_permissions(permissions),
    }


def dashboard_user_propose_create(
    *,
    actor: AbstractBaseUser,
    email: str,
    given_name: str,
    family_name: str,
    department: str,
    permissions: dict[str, Any],
) -> ChangeRequest:
    """Propose a new Braze dashboard account; another Admin's approval sends it through SCIM."""
    payload = {
        "email": email,
        **_dashboard_payload(
            given_name=given_name,
            family_name=family_name,
            department=department,
            permissions=permissions,
        ),
    }
    return change_request_propose(
        actor=actor,
        resource_type=RESOURCE_TYPE,
        identifier=IDENTIFIERS.build(token=secrets.token_hex(8)),
        action=ChangeAction.CREATE,
        payload=payload,
        base_snapshot=None,
        title=f"Create dashboard user {given_name} {family_name}",
    )


def dashboard_user_propose_update(
    *,
    actor: AbstractBaseUser,
    user_id: str,
    base_snapshot: dict[str, Any],
    given_name: str,
    family_name: str,
    department: str,
    permissions: dict[str, Any],
) -> ChangeRequest:
    return change_request_propose(
        actor=actor,
        resource_type=RESOURCE_TYPE,
        identifier=user_id,
        action=ChangeAction.UPDATE,
        payload=_dashboard_payload(
            given_name=given_name,
            family_name=family_name,
            department=department,
            permissions=permissions,
        ),
        base_snapshot=base_snapshot,
        title=f"Update dashboard user {given_name} {family_name}",
    )


def dashboard_user_propose_remove(
    *, actor: AbstractBaseUser, user_id: str, base_snapshot: dict[str, Any]
) -> ChangeRequest:
    name = f"{base_snapshot.get('given_name', '')} {base_snapshot.get('family_name', '')}"
    return change_request_propose(
        actor=actor,
        resource_type=RESOURCE_TYPE,
        identifier=user_id,
        action=ChangeAction.DELETE,
        payload={},
        base_snapshot=base_snapshot,
        title=f"Remove dashboard user {name.strip() or user_id}",
    )


# --- access review -----------------------------------------------------------------------


def access_review_export_record(*, actor: AbstractBaseUser, emails: list[str]) -> None:
    """Audit an export of the access review before its first byte leaves.

    Only counts are kept: which emails were looked up is personal data the trail does
    not need, and a list could not be erased one person at a time."""
    with transaction.atomic(durable=True):
        audit_append(
            actor=actor,
            action=events.ACCESS_REVIEW_EXPORTED,
            resource_type="access_review",
            data={
                "format": "csv",
                "console_users": User.objects.count(),
                "dashboard_emails": len(emails),
            },
        )


# --- access review look-ups ---------------------------------------------------------------------
#
# Each email is one SCIM call, from Braze's 5,000 a day for the whole company, which creating,
# changing and removing dashboard users need too. So a look-up never runs in a request: it is
# queued, a worker makes the calls against a daily budget of its own, and the page shows the
# rows found so far. A run (the emails and the rows, staff personal data) is kept in the cache
# for ACCESS_REVIEW_KEEP_SECONDS and only its owner can open it.


def _run_key(user_id: int, token: str) -> str:
    return access_review_run_key(user_id=user_id, token=token)


def access_review_run_save(*, user_id: int, token: str, run: dict[str, Any]) -> None:
    cache.set(_run_key(user_id, token), run, settings.ACCESS_REVIEW_KEEP_SECONDS)


def access_review_start(*, actor: AbstractBaseUser, emails: list[str]) -> str:
    """Queue the look-up of `emails`; the token names the run for its owner."""
    token = secrets.token_urlsafe(12)
    run = {"emails": emails, "rows": [], "state": "queued", "note": "", "updated": time.time()}
    access_review_run_save(user_id=actor.pk, token=token, run=run)
    _access_review_enqueue(user_id=actor.pk, token=token)
    return token


def access_review_continue(*, actor: AbstractBaseUser, token: str) -> bool:
    """Queue the rest of a run that stopped (budget spent, Braze's limit, a lost worker)."""
    run = cache.get(_run_key(actor.pk, token))
    if run is None or run["state"] == "done":
        return False
    run["state"], run["note"] = "queued", ""
    access_review_run_save(user_id=actor.pk, token=token, run=run)
    _access_review_enqueue(user_id=actor.pk, token=token)
    return True


def _access_review_enqueue(*, user_id: int, token: str) -> None:
    # The run is read through the SCIM token of the workspace it was started in.
    task_enqueue(
        "users_admin.tasks.access_review_lookup_task", user_id, token, workspace_active().key
    )


def access_review_scim_budget_take() -> bool:
    """One SCIM call from the access review's share of today's (UTC) calls, if any is left."""
    key = access_review_budget_key()
    cache.add(key, 0, 2 * 86400)
    if cache.incr(key) > settings.ACCESS_REVIEW_SCIM_CALLS_PER_DAY:
        cache.decr(key)
        return False
    return True


def _scim_budget_give_back() -> None:
    with contextlib.suppress(ValueError):
        cache.decr(access_review_budget_key())


def access_review_lookup(*, user_id: int, token: str) -> None:
    """Look the run's remaining emails up in Braze (run by a worker), saving as it goes."""
    lock = _run_key(user_id, token) + ":lock"
    if not cache.add(lock, 1, 600):
        return  # a redelivered task beside the one still running
    try:
        run = cache.get(_run_key(user_id, token))
        if run is None or run["state"] == "done":
            return
        run["state"], run["note"] = "running", ""
        problem = dashboard_users_setup_problem()
        if problem:
            # Braze would refuse every call: spend none of the budget on them.
            run["rows"] += [
                asdict(status_row(email, f"not looked up: {problem}"))
                for email in run["emails"][len(run["rows"]) :]
            ]
        client = get_client(lane="background")
        saved = time.monotonic()
        for email in run["emails"][len(run["rows"]) :]:
            if not access_review_scim_budget_take():
                run["state"] = "budget"
                break
            try:
                found = client.scim_user_search(email=email)
            except BrazeRateLimited as exc:
                _scim_budget_give_back()  # nothing reached Braze
                run["state"] = "paused"
                run["note"] = describe_error(exc)
                break
            except BrazeError as exc:
                row = status_row(email, f"lookup failed: {describe_error(exc)}")
            else:
                row = (
                    dashboard_user_row(found)
                    if found
                    else status_row(email, "no Braze dashboard account")
                )
            run["rows"].append(asdict(row))
            if time.monotonic() - saved > 1:  # the page sees progress about every second
                run["updated"] = time.time()
                access_review_run_save(user_id=user_id, token=token, run=run)
                saved = time.monotonic()
        else:
            run["state"] = "done"
        run["updated"] = time.time()
        access_review_run_save(user_id=user_id, token=token, run=run)
    finally:
        cache.delete(lock)
