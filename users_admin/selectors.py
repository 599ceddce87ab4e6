"""Reads of the Users section: console users from the database, dashboard users from Braze."""

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.http import Http404

from console.braze import get_client
from console.braze.client import ScimUser
from console.changes.models import OPEN_STATES, ApprovalPolicy, ChangeAction, ChangeRequest
from console.changes.policy import approvals_required
from console.changes.resource_types import resource_type_find
from console.role_models import WorkspaceRole
from console.roles import Role
from console.spreadsheet import cell_inert
from console.workspaces import Workspace, workspaces_all
from users_admin import scim_rules
from users_admin.identifiers import (
    RESOURCE_TYPE,
    ROLES_RESOURCE_TYPE,
    WORKSPACE_ROLES_RESOURCE_TYPE,
)


def console_user_list(*, query: str = "", role: str = "", status: str = "") -> QuerySet[User]:
    users = User.objects.prefetch_related("groups")
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    if role in {r.value for r in Role}:
        users = users.filter(groups__name=role)
    if status == "active":
        users = users.filter(is_active=True)
    elif status == "inactive":
        users = users.filter(is_active=False)
    return users.distinct()


def console_user_get(*, pk: int) -> User:
    try:
        return User.objects.prefetch_related("groups").get(pk=pk)
    except User.DoesNotExist:
        raise Http404("No such console user.") from None


def console_user_role_names(*, user: User) -> list[str]:
    """The user's roles in the fixed role order (from prefetched groups)."""
    names = {group.name for group in user.groups.all()}
    return [role.value for role in Role if role.value in names]


def console_user_roles_snapshot(*, user_id: int) -> dict[str, Any] | None:
    """A console user's roles as a role change request records them; None: no such user."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return None
    names = set(user.groups.values_list("name", flat=True))
    return {"roles": sorted(role.value for role in Role if role.value in names)}


def console_user_role_requests(*, user: User) -> QuerySet[ChangeRequest]:
    """Open requests to change `user`'s roles (grants of Reviewer or Admin)."""
    return ChangeRequest.objects.filter(
        resource_type=ROLES_RESOURCE_TYPE, identifier=str(user.pk), state__in=OPEN_STATES
    ).order_by("-id")


def _ordered(names: set[str]) -> list[str]:
    return [role.value for role in Role if role.value in names]


def console_user_workspace_roles_snapshot(*, user_id: int, workspace: str) -> dict[str, Any] | None:
    """A console user's roles in ``workspace`` as a workspace-role change request records
    them: ``same_as_console_wide`` (no roles of that workspace: their console-wide roles
    apply there) and ``roles`` (the workspace's own, sorted; empty when the same). None: no
    such user."""
    if not User.objects.filter(pk=user_id).exists():
        return None
    names = set(
        WorkspaceRole.objects.filter(user_id=user_id, workspace=workspace).values_list(
            "role", flat=True
        )
    )
    return {"same_as_console_wide": not names, "roles": sorted(_ordered(names))}


def console_user_workspace_role_requests(
    *, user: User, workspace: str | None = None
) -> QuerySet[ChangeRequest]:
    """Open requests to change `user`'s roles in a workspace (in ``workspace`` when named)."""
    requests = ChangeRequest.objects.filter(
        resource_type=WORKSPACE_ROLES_RESOURCE_TYPE, identifier=str(user.pk), state__in=OPEN_STATES
    )
    if workspace is not None:
        requests = requests.filter(workspace=workspace)
    return requests.order_by("-id")


@dataclass(frozen=True, slots=True)
class WorkspaceRolesRow:
    """One workspace on a person's page: what they may do there, and what a change needs."""

    workspace: Workspace
    same_as_console_wide: bool
    roles: list[str]  # the roles they hold there (their console-wide ones when the same)
    role_change_approvals: int  # approvals a change of someone's roles there needs
    policies: list[str]  # the workspace's own approval rules, in words
    requests: list[ChangeRequest]  # open requests to change this person's roles there


def _policy_sentences(workspace: str) -> list[str]:
    rows = ApprovalPolicy.objects.filter(workspace=workspace).order_by("resource_type", "action")
    sentences = []
    for row in rows:
        kind = resource_type_find(row.resource_type)
        label = kind.label if kind is not None else row.resource_type
        action = str(dict(ChangeAction.choices).get(row.action, row.action)).lower()
        n = row.required_approvals
        sentences.append(f"{label}, {action}: {n} approval{'s' if n != 1 else ''}")
    return sentences


def console_user_workspace_rows(*, user: User) -> list[WorkspaceRolesRow]:
    """Each configured workspace with `user`'s roles there (the default workspace first)."""
    console_wide = console_user_role_names(user=user)
    scoped: dict[str, set[str]] = {}
    for key, name in WorkspaceRole.objects.filter(user_id=user.pk).values_list("workspace", "role"):
        scoped.setdefault(key, set()).add(name)
    open_requests: dict[str, list[ChangeRequest]] = {}
    for cr in console_user_workspace_role_requests(user=user):
        open_requests.setdefault(cr.workspace, []).append(cr)
    return [
        WorkspaceRolesRow(
            workspace=ws,
            same_as_console_wide=ws.key not in scoped,
            roles=_ordered(scoped[ws.key]) if ws.key in scoped else console_wide,
            role_change_approvals=approvals_required(
                resource_type=WORKSPACE_ROLES_RESOURCE_TYPE,
                action=ChangeAction.UPDATE,
                workspace=ws.key,
            ),
            policies=_policy_sentences(ws.key),
            requests=open_requests.get(ws.key, []),
        )
        for ws in workspaces_all()
    ]


@dataclass(frozen=True, slots=True)
class ConsoleUserRow:
    username: str
    name: str
    email: str
    roles: str
    last_sign_in: datetime | None
    status: str


def access_review_console_rows() -> list[ConsoleUserRow]:
    """Every console user, active or not: who holds which role, and when they last signed in."""
    return [
        ConsoleUserRow(
            username=user.get_username(),
            name=user.get_full_name(),
            email=user.email,
            roles=", ".join(console_user_role_names(user=user)) or "(no role)",
            last_sign_in=user.last_login,
            status="active" if user.is_active else "deactivated",
        )
        for user in User.objects.prefetch_related("groups").order_by("username")
    ]


# --- dashboard users (SCIM) --------------------------------------------------------------


SCIM_SETUP_PROBLEMS = {
    "BRAZE_SCIM_TOKEN": (
        "The console has no Braze SCIM token, so it cannot read or change dashboard users. "
        "An administrator sets BRAZE_SCIM_TOKEN to the token Braze shows once under "
        "Settings > Admin Settings > SCIM Provisioning."
    ),
    "BRAZE_SCIM_ORIGIN": (
        "The console has no SCIM Service Origin, so it does not call Braze's SCIM API: Braze "
        "rejects every SCIM request that lacks it (the X-Request-Origin header). An "
        "administrator sets BRAZE_SCIM_ORIGIN to the Service Origin entered in Braze under "
        "Settings > Admin Settings > SCIM Provisioning."
    ),
}


def dashboard_users_setup_problem() -> str:
    """Why the console cannot call SCIM as configured, in words; empty when it can."""
    missing = get_client().scim_missing_setting
    return SCIM_SETUP_PROBLEMS[missing] if missing else ""


def dashboard_user_search(*, email: str) -> ScimUser | None:
    return get_client().scim_user_search(email=email)


def dashboard_user_get(*, user_id: str) -> ScimUser:
    return get_client().scim_user_get(user_id=user_id)


@dataclass(frozen=True, slots=True)
class PermissionName:
    name: str
    legacy: bool  # shown marked: Braze stops accepting legacy names (scim_rules.LEGACY_END)


@dataclass(frozen=True, slots=True)
class TeamAccess:
    name: str
    permissions: list[PermissionName]


@dataclass(frozen=True, slots=True)
class WorkspaceAccess:
    name: str
    permissions: list[PermissionName]
    permission_sets: list[str]
    teams: list[TeamAccess]


@dataclass(frozen=True, slots=True)
class DashboardUserAccess:
    company: list[str]
    roles: list[str]
    workspaces: list[WorkspaceAccess]
    legacy: list[str]

    @property
    def kept(self) -> bool:
        """Whether the account holds what the console shows but does not edit."""
        return bool(self.roles) or any(w.permission_sets or w.teams for w in self.workspaces)


def _marked(names: list[str]) -> list[PermissionName]:
    return [PermissionName(name, scim_rules.is_legacy(name)) for name in names]


def dashboard_user_access(permissions: dict[str, Any]) -> DashboardUserAccess:
    """What an account may do, as Braze returned it, for the account's page and form."""
    workspaces = [
        WorkspaceAccess(
            name=scim_rules.ref_name(group, "appGroupName", "appGroupId"),
            permissions=_marked(scim_rules.strings(group.get("appGroupPermissions"))),
            permission_sets=[
                scim_rules.ref_name(s, *scim_rules.SET_IDS)
                for s in scim_rules.dicts(group.get("appGroupPermissionSets"))
            ],
            teams=[
                TeamAccess(
                    scim_rules.ref_name(team, "teamName", "teamId"),
                    _marked(scim_rules.strings(team.get("teamPermissions"))),
                )
                for team in scim_rules.dicts(group.get("team"))
            ],
        )
        for group in scim_rules.dicts(permissions.get("appGroup"))
    ]
    return DashboardUserAccess(
        company=scim_rules.strings(permissions.get("companyPermissions")),
        roles=[
            scim_rules.ref_name(role, *scim_rules.ROLE_IDS)
            for role in scim_rules.dicts(permissions.get("roles"))
        ],
        workspaces=workspaces,
        legacy=scim_rules.legacy_names(permissions),
    )


@dataclass(frozen=True, slots=True)
class DashboardUserRow:
    email: str
    name: str
    department: str
    permissions: str
    last_sign_in: str
    status: str
    user_id: str = ""


def dashboard_user_row(user: ScimUser) -> DashboardUserRow:
    return DashboardUserRow(
        email=user.user_name,
        name=f"{user.given_name} {user.family_name}".strip(),
        department=scim_rules.DEPARTMENTS.get(user.department, user.department),
        permissions=scim_rules.permissions_summary(user.permissions),
        last_sign_in=user.last_sign_in_at or "",
        status="active",
        user_id=user.id,
    )


def access_review_known_emails() -> list[str]:
    """Emails to look up in Braze: SCIM has no "list all users" call (Braze's own advice
    is to take the emails from the Security Event report), so the review starts from
    the console users and every dashboard user the console has proposed or changed."""
    emails = {e.lower() for e in User.objects.exclude(email="").values_list("email", flat=True)}
    for payload, base in ChangeRequest.objects.filter(resource_type=RESOURCE_TYPE).values_list(
        "payload", "base_snapshot"
    ):
        for source in (payload, base):
            if isinstance(source, dict) and source.get("email"):
                emails.add(str(source["email"]).lower())
    return sorted(emails)


def status_row(email: str, status: str) -> DashboardUserRow:
    """A dashboard row that has only its email and what became of its look-up."""
    return DashboardUserRow(email, "", "", "", "", status)


def access_review_run_key(*, user_id: int, token: str) -> str:
    return f"access-review:run:{user_id}:{token}"


def access_review_budget_key() -> str:
    """Today's (UTC) count of the access review's SCIM calls."""
    return f"access-review:scim-calls:{time.strftime('%Y-%m-%d', time.gmtime())}"


@dataclass(frozen=True, slots=True)
class AccessReviewRun:
    """A queued look-up of dashboard users (users_admin.services.access_review_start)."""

    token: str
    emails: list[str]
    rows: list[DashboardUserRow]
    state: str  # queued, running, done, budget (today's share spent), paused (Braze's limit)
    note: str
    updated: float

    @property
    def live(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def stalled(self) -> bool:
        """Queued or running, but no word from a worker for minutes: it was lost."""
        return self.live and time.time() - self.updated > 300

    def all_rows(self) -> list[DashboardUserRow]:
        """The rows found, then one per email not looked up yet."""
        pending = self.emails[len(self.rows) :]
        return self.rows + [status_row(e, "not looked up yet") for e in pending]


def access_review_run_get(*, user: AbstractBaseUser, token: str) -> AccessReviewRun | None:
    """The user's own run, or None (expired, or someone else's)."""
    run = cache.get(access_review_run_key(user_id=user.pk, token=token))
    if not isinstance(run, dict):
        return None
    return AccessReviewRun(
        token=token,
        emails=list(run["emails"]),
        rows=[DashboardUserRow(**row) for row in run["rows"]],
        state=str(run["state"]),
        note=str(run["note"]),
        updated=float(run["updated"]),
    )


def access_review_scim_calls_left() -> int:
    """Calls left of the access review's SCIM share today (UTC)."""
    used = cache.get(access_review_budget_key()) or 0
    return max(0, settings.ACCESS_REVIEW_SCIM_CALLS_PER_DAY - int(used))


CSV_COLUMNS = [
    "account_type",
    "username",
    "name",
    "email",
    "department",
    "roles_or_permissions",
    "last_sign_in",
    "status",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def access_review_csv(*, run: AccessReviewRun) -> Iterator[str]:
    """The review as CSV lines: the console users, and the run's dashboard users as far as
    they were looked up (no SCIM call is made here)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in access_review_console_rows():
        yield writer.writerow(
            [
                cell_inert(v)
                for v in (
                    "console",
                    row.username,
                    row.name,
                    row.email,
                    "",
                    row.roles,
                    row.last_sign_in.isoformat() if row.last_sign_in else "never",
                    row.status,
                )
            ]
        )
    for dash in run.all_rows():
        yield writer.writerow(
            [
                cell_inert(v)
                for v in (
                    "braze_dashboard",
                    dash.email,
                    dash.name,
                    dash.email,
                    dash.department,
                    dash.permissions,
                    dash.last_sign_in,
                    dash.status,
                )
            ]
        )
