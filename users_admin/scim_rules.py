"""Braze's rules for SCIM dashboard users, checked before anything is sent.

Sources: shared/braze-api/scim.md and Braze's "SCIM API objects and appendix"
(https://www.braze.com/docs/scim_api_appendix/): department strings, company, workspace and
team permission strings. Braze answers a bad value with a 400 and a `detail` sentence; the
console refuses the same values in the form, quoting the rule.
"""

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

DEPARTMENTS: dict[str, str] = {
    "agency": "Agency / Third Party",
    "bi": "BI / Analytics",
    "c_suite": "C-Suite",
    "engineering": "Engineering",
    "finance": "Finance",
    "marketing": "Marketing / Editorial",
    "pm": "Product Management",
}
DEPARTMENT_CHOICES = [("", "Choose a department"), *DEPARTMENTS.items()]

COMPANY_PERMISSIONS = ("admin", "manage_company_settings", "add_remove_app_groups")

WORKSPACE_PERMISSIONS = (
    "admin",
    "basic_access",
    "approve_deny_campaigns",
    "send_campaigns_canvases",
    "publish_cards",
    "edit_segments",
    "export_user_data",
    "view_pii",
    "view_user_profile",
    "manage_dashboard_users",
    "manage_media_library",
    "view_usage_data",
    "import_update_user_data",
    "view_billing_details",
    "dev_console",
    "launch_content_blocks",
    "manage_external_integrations",
    "manage_apps",
    "manage_teams",
    "manage_events_attributes_purchases",
    "manage_tags",
    "manage_email_settings",
    "manage_subscription_groups",
    "manage_approval_settings",
    "manage_catalogs_dashboard_permission",
)

# The same shape Braze's SCIM POST accepts as userName ("format: email").
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


EMAIL_INVALID = "Braze requires userName to be a valid email address, such as name@example.com."
EMAIL_REQUIRED = "Braze requires userName: enter the person's email address."
DEPARTMENT_INVALID = (
    "Braze requires a department from its list: "
    + ", ".join(f"{label} ({key})" for key, label in DEPARTMENTS.items())
    + "."
)


def name_required(key: str) -> str:
    return f"Braze requires name.{key}: it cannot be empty."


@dataclass(frozen=True, slots=True)
class WorkspacePermissions:
    name: str
    permissions: tuple[str, ...]


def check_email(email: str) -> None:
    if not _EMAIL_RE.match(email):
        raise ValidationError(EMAIL_INVALID)


def check_name(value: str, key: str) -> str:
    value = value.strip()
    if not value:
        raise ValidationError(name_required(key))
    return value


def parse_workspace_lines(text: str) -> list[WorkspacePermissions]:
    """`workspace: perm, perm` per line → workspaces; every name from Braze's documented set."""
    problems: list[str] = []
    out: list[WorkspacePermissions] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        name, colon, rest = line.partition(":")
        name = name.strip()
        if not colon or not name:
            problems.append(
                f"Line {number}: write the workspace name, a colon, then its permissions."
            )
            continue
        if name.lower() in seen:
            problems.append(f"Line {number}: workspace “{name}” is listed twice.")
            continue
        seen.add(name.lower())
        permissions = [p.strip() for p in rest.split(",") if p.strip()]
        if not permissions:
            problems.append(
                f"Line {number}: Braze requires appGroupPermissions for “{name}”; "
                "name at least one permission (basic_access for ordinary access)."
            )
            continue
        unknown = [p for p in permissions if p not in WORKSPACE_PERMISSIONS]
        if unknown:
            problems.append(
                f"Line {number}: {', '.join(unknown)} "
                f"{'is not a' if len(unknown) == 1 else 'are not'} Braze workspace permission"
                f"{'' if len(unknown) == 1 else 's'}. Use the documented names, such as "
                "basic_access, send_campaigns_canvases, view_pii or export_user_data."
            )
            continue
        out.append(WorkspacePermissions(name, tuple(dict.fromkeys(permissions))))
    if problems:
        raise ValidationError(problems)
    return out


def permissions_object(
    *,
    company: list[str],
    workspaces: list[WorkspacePermissions],
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The SCIM permissions object. Teams are not edited here: those of a workspace that
    stays are carried over from `base`, so an update does not silently drop them."""
    bad = [p for p in company if p not in COMPANY_PERMISSIONS]
    if bad:
        raise ValidationError(f"Unknown company permission: {', '.join(bad)}.")
    teams: dict[str, list[Any]] = {}
    for old in (base or {}).get("appGroup") or []:
        if isinstance(old, dict) and old.get("team"):
            teams[str(old.get("appGroupName", "")).lower()] = old["team"]
    groups = []
    for workspace in workspaces:
        group: dict[str, Any] = {
            "appGroupName": workspace.name,
            "appGroupPermissions": list(workspace.permissions),
        }
        kept = teams.get(workspace.name.lower())
        if kept:
            group["team"] = [
                {k: v for k, v in team.items() if k in {"teamName", "teamPermissions"}}
                for team in kept
                if isinstance(team, dict)
            ]
        groups.append(group)
    return {"companyPermissions": list(company), "appGroup": groups}


def workspace_lines(permissions: dict[str, Any]) -> str:
    """The form's text for a permissions object Braze returned."""
    lines = []
    for group in permissions.get("appGroup") or []:
        name = group.get("appGroupName") or group.get("appGroupId") or ""
        lines.append(f"{name}: {', '.join(group.get('appGroupPermissions') or [])}")
    return "\n".join(lines)


def permissions_summary(permissions: dict[str, Any]) -> str:
    """One line for tables and CSV: company permissions, then each workspace and team."""
    parts = []
    company = permissions.get("companyPermissions") or []
    if company:
        parts.append(f"company: {', '.join(company)}")
    for group in permissions.get("appGroup") or []:
        name = group.get("appGroupName") or group.get("appGroupId") or "?"
        parts.append(f"{name}: {', '.join(group.get('appGroupPermissions') or []) or '(none)'}")
        for team in group.get("team") or []:
            team_name = team.get("teamName") or team.get("teamId") or "?"
            perms = ", ".join(team.get("teamPermissions") or []) or "(none)"
            parts.append(f"{name} / team {team_name}: {perms}")
    return "; ".join(parts) or "(no permissions)"
