"""Reads of the Users section: console users from the database, dashboard users from Braze."""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import Http404

from console.braze import BrazeError, describe_error, get_client
from console.braze.client import ScimUser
from console.changes.models import ChangeRequest
from console.roles import Role
from console.spreadsheet import cell_inert
from users_admin import scim_rules
from users_admin.appliers import RESOURCE_TYPE


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


def dashboard_user_search(*, email: str) -> ScimUser | None:
    return get_client().scim_user_search(email=email)


def dashboard_user_get(*, user_id: str) -> ScimUser:
    return get_client().scim_user_get(user_id=user_id)


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


def access_review_dashboard_rows(*, emails: Iterable[str]) -> Iterator[DashboardUserRow]:
    """One row per email, looked up one at a time (SCIM: 5,000 calls a day per company)."""
    client = get_client()
    for email in emails:
        try:
            user = client.scim_user_search(email=email)
        except BrazeError as exc:
            yield DashboardUserRow(email, "", "", "", "", f"lookup failed: {describe_error(exc)}")
            continue
        if user is None:
            yield DashboardUserRow(email, "", "", "", "", "no Braze dashboard account")
        else:
            yield dashboard_user_row(user)


CSV_COLUMNS = [
    "account_type", "username", "name", "email", "department", "roles_or_permissions",
    "last_sign_in", "status",
]  # fmt: skip


class _Echo:
    def write(self, value: str) -> str:
        return value


def access_review_csv(*, emails: list[str]) -> Iterator[str]:
    """The review as CSV lines, produced as they are read (the view streams them)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in access_review_console_rows():
        yield writer.writerow(
            [cell_inert(v) for v in (
                "console", row.username, row.name, row.email, "", row.roles,
                row.last_sign_in.isoformat() if row.last_sign_in else "never", row.status,
            )]
        )  # fmt: skip
    for dash in access_review_dashboard_rows(emails=emails):
        yield writer.writerow(
            [cell_inert(v) for v in (
                "braze_dashboard", dash.email, dash.name, dash.email, dash.department,
                dash.permissions, dash.last_sign_in, dash.status,
            )]
        )  # fmt: skip
