"""Braze's rules for SCIM dashboard users, checked before anything is sent.

Sources: shared/braze-api/scim.md and Braze's "SCIM API objects and appendix"
(https://www.braze.com/docs/scim_api_appendix/): department strings, company, workspace and
team permission strings. Braze answers a bad value with a 400 and a `detail` sentence; the
console refuses the same values in the form, quoting the rule.
"""

import re
from collections.abc import Mapping
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

# Which workspace permission names the console offers and sends (BRAZE_SCIM_PERMISSIONS).
GRANULAR = "granular"
LEGACY = "legacy"
PERMISSION_MODES = (GRANULAR, LEGACY)
# Reference: "SCIM API objects and appendix", Granular permissions migration
# (_docs/_api/objects_filters/scim_api_appendix.md): Braze stops accepting legacy values then.
LEGACY_END = "December 2026"

# Reference: the Legacy SCIM API tab (_includes/permissions_temp/legacy_scim.md).
LEGACY_WORKSPACE_PERMISSIONS = (
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
LEGACY_TEAM_PERMISSIONS = (
    "admin",
    "basic_access",
    "approve_deny_campaigns",
    "send_campaigns_canvases",
    "publish_cards",
    "edit_segments",
    "export_user_data",
    "view_user_profile",
    "manage_dashboard_users",
    "manage_media_library",
)

# Reference: the Granular SCIM API tab (_includes/permissions_temp/granular_scim.md).
_GRANULAR_SHARED = (
    "view_campaigns",
    "edit_campaigns",
    "archive_campaigns",
    "view_canvases",
    "edit_canvases",
    "archive_canvases",
    "view_frequency_caps",
    "edit_frequency_caps",
    "view_message_prioritization",
    "edit_message_prioritization",
    "view_content_blocks",
    "view_feature_flags",
    "edit_feature_flags",
    "archive_feature_flags",
    "view_segments",
    "edit_segments",
    "edit_global_control_group",
    "view_iam_templates",
    "edit_iam_templates",
    "archive_iam_templates",
    "view_email_templates",
    "edit_email_templates",
    "archive_email_templates",
    "view_webhook_templates",
    "edit_webhook_templates",
    "archive_webhook_templates",
    "view_link_templates",
    "edit_link_templates",
    "view_media_library_assets",
    "view_locations",
    "edit_locations",
    "archive_locations",
    "view_promotion_codes",
    "edit_promotion_codes",
    "export_promotion_codes",
    "view_preference_centers",
    "edit_preference_centers",
)
_GRANULAR_SHARED_TAIL = (
    "view_banner_templates",
    "view_multi_language_settings",
    "use_operator",
    "view_decisioning_studio_agents",
    "view_decisioning_studio_conversion_event",
    "launch_campaigns",
    "launch_canvases",
    "edit_dashboard_users",
)
GRANULAR_WORKSPACE_PERMISSIONS = (
    *_GRANULAR_SHARED,
    "edit_reports",
    *_GRANULAR_SHARED_TAIL,
    "edit_media_library_assets",
    "delete_media_library_asset",
    "view_import_users",
    "import_users",
    "edit_user_data",
    "view_api_keys",
    "edit_api_keys",
    "view_internal_user_groups",
    "edit_internal_user_groups",
    "view_message_activity_log",
    "view_event_user_log",
    "view_api_identifiers",
    "view_api_usage_dashboard",
    "view_api_limits",
    "view_api_usage_alerts",
    "edit_api_usage_alerts",
    "view_sdk_debugger",
    "edit_sdk_debugger",
    "launch_content_blocks",
    "edit_cloud_data_ingestion",
    "edit_app_settings",
    "view_push_settings",
    "edit_push_settings",
    "view_teams",
    "edit_teams",
    "archive_teams",
    "view_custom_attributes",
    "edit_custom_attributes",
    "blocklist_custom_attributes",
    "delete_custom_attributes",
    "export_custom_attributes",
    "view_custom_events",
    "edit_custom_events",
    "blocklist_custom_events",
    "delete_custom_events",
    "export_custom_events",
    "edit_custom_event_property_segmentation",
    "view_products",
    "edit_products",
    "blocklist_products",
    "edit_purchase_property_segmentation",
    "view_tags",
    "edit_tags",
    "delete_tags",
    "view_email_settings",
    "edit_email_settings",
    "view_catalogs",
    "edit_catalogs",
    "export_catalogs",
    "delete_catalogs",
)
GRANULAR_TEAM_PERMISSIONS = (
    *_GRANULAR_SHARED,
    "view_reports",
    "create_reports",
    "edit_reports",
    *_GRANULAR_SHARED_TAIL,
)

FORM_EXAMPLES = {
    GRANULAR: "view_campaigns, edit_campaigns",
    LEGACY: "basic_access, send_campaigns_canvases",
}
_EXAMPLES = {
    GRANULAR: "view_campaigns, edit_campaigns, launch_campaigns or view_segments",
    LEGACY: "basic_access, send_campaigns_canvases, view_pii or export_user_data",
}


def workspace_permission_names(mode: str) -> tuple[str, ...]:
    """The workspace permission names the console offers under `mode`."""
    return LEGACY_WORKSPACE_PERMISSIONS if mode == LEGACY else GRANULAR_WORKSPACE_PERMISSIONS


def is_legacy(name: str) -> bool:
    """A legacy-only name (a few, such as edit_segments, are in both sets)."""
    return (
        (name in LEGACY_WORKSPACE_PERMISSIONS or name in LEGACY_TEAM_PERMISSIONS)
        and name not in GRANULAR_WORKSPACE_PERMISSIONS
        and name not in GRANULAR_TEAM_PERMISSIONS
    )


def legacy_names(permissions: Mapping[str, Any]) -> list[str]:
    """Legacy workspace and team permission names the account holds, each once."""
    found: dict[str, None] = {}
    for group in dicts(permissions.get("appGroup")):
        for name in strings(group.get("appGroupPermissions")):
            if is_legacy(name):
                found[name] = None
        for team in dicts(group.get("team")):
            for name in strings(team.get("teamPermissions")):
                if is_legacy(name):
                    found[name] = None
    return list(found)


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


def dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _ref(obj: Mapping[str, Any], name_key: str, *id_keys: str) -> dict[str, str]:
    """How a snapshot names a workspace, team, role or permission set: by its name, else its
    id (Braze adds ids to what a request named by name, so comparing ids would differ)."""
    if obj.get(name_key):
        return {name_key: str(obj[name_key])}
    for key in id_keys:
        if obj.get(key):
            return {key: str(obj[key])}
    return {name_key: ""}


def _matches(ref: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    for key, value in ref.items():
        found = obj.get(key)
        if isinstance(found, str) and found.casefold() == str(value).casefold():
            return True
    return False


def _find(ref: Mapping[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((c for c in candidates if _matches(ref, c)), None)


ROLE_IDS = ("roleName", "roleId")
SET_IDS = ("appGroupPermissionSetName", "appGroupPermissionSetId", "appGroupPermissionSetID")
_GROUP_KEYS = {
    "appGroupName",
    "appGroupId",
    "appGroupPermissions",
    "appGroupPermissionSets",
    "team",
}
_TEAM_KEYS = {"teamName", "teamId", "teamPermissions"}
_PERMISSION_KEYS = {"companyPermissions", "roles", "appGroup"}


def normal_permissions(permissions: Mapping[str, Any]) -> dict[str, Any]:
    """A permissions object in the form snapshots compare: sorted names; workspaces, teams,
    roles and permission sets by name (else id). What a role or set grants is Braze's
    definition of it, not the user's, so only the reference to it is kept."""
    out: dict[str, Any] = {
        "companyPermissions": sorted(strings(permissions.get("companyPermissions")))
    }
    roles = [_ref(r, "roleName", "roleId") for r in dicts(permissions.get("roles"))]
    if roles:
        out["roles"] = roles
    groups = []
    for group in dicts(permissions.get("appGroup")):
        g: dict[str, Any] = _ref(group, "appGroupName", "appGroupId")
        g["appGroupPermissions"] = sorted(strings(group.get("appGroupPermissions")))
        sets = [_ref(s, *SET_IDS) for s in dicts(group.get("appGroupPermissionSets"))]
        if sets:
            g["appGroupPermissionSets"] = sets
        teams = [
            {
                **_ref(team, "teamName", "teamId"),
                "teamPermissions": sorted(strings(team.get("teamPermissions"))),
            }
            for team in dicts(group.get("team"))
        ]
        if teams:
            g["team"] = teams
        groups.append(g)
    out["appGroup"] = groups
    return out


def parse_workspace_lines(
    text: str, *, mode: str = GRANULAR, base: Mapping[str, Any] | None = None
) -> list[WorkspacePermissions]:
    """`workspace: perm, perm` per line → workspaces. New names must be from the set `mode`
    offers; a name the account already holds in that workspace (as read from Braze, in
    `base`) is kept whatever it is, so an edit never fails on what it does not change."""
    held = dicts((base or {}).get("appGroup"))
    problems: list[str] = []
    out: list[WorkspacePermissions] = []
    seen: set[str] = set()
    offered = set(workspace_permission_names(mode))
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
        if name.casefold() in seen:
            problems.append(f"Line {number}: workspace “{name}” is listed twice.")
            continue
        seen.add(name.casefold())
        old = _find({"appGroupName": name, "appGroupId": name}, held) or {}
        kept = set(strings(old.get("appGroupPermissions")))
        permissions = [p.strip() for p in rest.split(",") if p.strip()]
        if not permissions and not dicts(old.get("appGroupPermissionSets")):
            problems.append(
                f"Line {number}: Braze requires appGroupPermissions for “{name}”; "
                f"name at least one permission, such as {_EXAMPLES[mode]}."
            )
            continue
        refused = [p for p in permissions if p not in offered and p not in kept]
        if refused:
            problems.extend(_refusals(number, refused, mode))
            continue
        out.append(WorkspacePermissions(name, tuple(dict.fromkeys(permissions))))
    if problems:
        raise ValidationError(problems)
    return out


def _names(names: list[str], one: str, many: str) -> str:
    return f"{', '.join(names)} {one if len(names) == 1 else many}"


def _refusals(number: int, refused: list[str], mode: str) -> list[str]:
    legacy = [p for p in refused if p in LEGACY_WORKSPACE_PERMISSIONS]
    granular = [p for p in refused if p in GRANULAR_WORKSPACE_PERMISSIONS]
    unknown = [p for p in refused if p not in legacy and p not in granular]
    problems = []
    if legacy and mode == GRANULAR:
        problems.append(
            f"Line {number}: {_names(legacy, 'is a legacy', 'are legacy')} Braze permission "
            f"name{'' if len(legacy) == 1 else 's'}, which Braze stops accepting in "
            f"{LEGACY_END}. Use granular names instead, such as {_EXAMPLES[GRANULAR]}."
        )
    if granular and mode == LEGACY:
        problems.append(
            f"Line {number}: {_names(granular, 'is a granular', 'are granular')} Braze "
            f"permission name{'' if len(granular) == 1 else 's'}, and this console is set to "
            f"send legacy names (BRAZE_SCIM_PERMISSIONS=legacy). Use names such as "
            f"{_EXAMPLES[LEGACY]}."
        )
    if unknown:
        problems.append(
            f"Line {number}: {_names(unknown, 'is not a', 'are not')} Braze workspace "
            f"permission{'' if len(unknown) == 1 else 's'}. Use the documented names, such as "
            f"{_EXAMPLES[mode]}."
        )
    return problems


def permissions_object(
    *,
    company: list[str],
    workspaces: list[WorkspacePermissions],
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The permissions object after an edit, in the snapshot form. The console edits company
    permissions and each workspace's permission names; the rest (roles, a workspace's
    permission set and teams) is carried over from `base`, the account as read."""
    bad = [p for p in company if p not in COMPANY_PERMISSIONS]
    if bad:
        raise ValidationError(f"Unknown company permission: {', '.join(bad)}.")
    old = normal_permissions(base or {})
    out: dict[str, Any] = {"companyPermissions": sorted(company)}
    if old.get("roles"):
        out["roles"] = old["roles"]
    groups = []
    for workspace in workspaces:
        kept = _find(
            {"appGroupName": workspace.name, "appGroupId": workspace.name}, old["appGroup"]
        )
        group = {k: v for k, v in (kept or {}).items() if k in {"appGroupName", "appGroupId"}}
        group = group or {"appGroupName": workspace.name}
        group["appGroupPermissions"] = sorted(workspace.permissions)
        for key in ("appGroupPermissionSets", "team"):
            if kept and kept.get(key):
                group[key] = kept[key]
        groups.append(group)
    out["appGroup"] = groups
    return out


def permissions_for_write(
    desired: Mapping[str, Any], current: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The permissions object to PUT: `desired` (snapshot form) laid over the account as
    Braze holds it now. Braze replaces the whole object, so everything of `current` that the
    console does not edit goes back as it was read: ids, and keys this code does not know."""
    current = current or {}
    out = {k: v for k, v in current.items() if k not in _PERMISSION_KEYS}
    out["companyPermissions"] = list(desired.get("companyPermissions") or [])
    roles = [
        _identity(r, _find(r, dicts(current.get("roles"))), ROLE_IDS)
        for r in dicts(desired.get("roles"))
    ]
    if roles:
        out["roles"] = roles
    groups = []
    raw_groups = dicts(current.get("appGroup"))
    for want in dicts(desired.get("appGroup")):
        raw = _find(want, raw_groups) or {}
        group = {k: v for k, v in raw.items() if k not in _GROUP_KEYS}
        group.update(_identity(want, raw, ("appGroupName", "appGroupId")))
        raw_sets = dicts(raw.get("appGroupPermissionSets"))
        sets = [
            _identity(s, _find(s, raw_sets), SET_IDS)
            for s in dicts(want.get("appGroupPermissionSets"))
        ]
        permissions = list(want.get("appGroupPermissions") or [])
        if permissions or not sets:
            group["appGroupPermissions"] = permissions
        if sets:
            group["appGroupPermissionSets"] = sets
        raw_teams = dicts(raw.get("team"))
        teams = []
        for team in dicts(want.get("team")):
            raw_team = _find(team, raw_teams) or {}
            kept = {k: v for k, v in raw_team.items() if k not in _TEAM_KEYS}
            kept.update(_identity(team, raw_team, ("teamName", "teamId")))
            kept["teamPermissions"] = list(team.get("teamPermissions") or [])
            teams.append(kept)
        if teams:
            group["team"] = teams
        groups.append(group)
    out["appGroup"] = groups
    return out


def _identity(
    want: Mapping[str, Any], raw: Mapping[str, Any] | None, keys: tuple[str, ...]
) -> dict[str, Any]:
    """The keys that name a workspace, team, role or set, as Braze returned them (name and
    id), or as wanted when Braze does not hold it yet. What a role or set grants is left
    out: a request names them, Braze's answer describes them."""
    found = {k: raw[k] for k in keys if raw and raw.get(k)}
    return found or {k: want[k] for k in keys if want.get(k)}


def workspace_lines(permissions: Mapping[str, Any]) -> str:
    """The form's text for a permissions object Braze returned."""
    lines = []
    for group in dicts(permissions.get("appGroup")):
        name = group.get("appGroupName") or group.get("appGroupId") or ""
        lines.append(f"{name}: {', '.join(strings(group.get('appGroupPermissions')))}")
    return "\n".join(lines)


def ref_name(obj: Mapping[str, Any], *keys: str) -> str:
    return next((str(obj[k]) for k in keys if obj.get(k)), "?")


def permissions_summary(permissions: Mapping[str, Any]) -> str:
    """One line for tables and CSV: company permissions and roles, then each workspace (its
    permission set, if any) and team."""
    parts = []
    company = strings(permissions.get("companyPermissions"))
    if company:
        parts.append(f"company: {', '.join(company)}")
    roles = [ref_name(r, *ROLE_IDS) for r in dicts(permissions.get("roles"))]
    if roles:
        parts.append(f"roles: {', '.join(roles)}")
    for group in dicts(permissions.get("appGroup")):
        name = ref_name(group, "appGroupName", "appGroupId")
        names = ", ".join(strings(group.get("appGroupPermissions")))
        sets = [ref_name(s, *SET_IDS) for s in dicts(group.get("appGroupPermissionSets"))]
        if sets:
            names = ", ".join(filter(None, [names, *(f"permission set {s}" for s in sets)]))
        parts.append(f"{name}: {names or '(none)'}")
        for team in dicts(group.get("team")):
            team_name = ref_name(team, "teamName", "teamId")
            perms = ", ".join(strings(team.get("teamPermissions"))) or "(none)"
            parts.append(f"{name} / team {team_name}: {perms}")
    return "; ".join(parts) or "(no permissions)"
