"""Dashboard users over SCIM 2.0 (scim.md). Bucketed per company, not per workspace.

Under the current profile the permissions object follows "SCIM API objects and appendix"
(_docs/_api/objects_filters/scim_api_appendix.md): workspace and team permission strings are
checked (granular or legacy), roles and workspace permission sets are references that an
answer describes. A PUT replaces the whole account, fields the sandbox does not know included.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from braze_sandbox import scim_strings
from braze_sandbox.errors import scim_error
from braze_sandbox.store import iso_now

if TYPE_CHECKING:
    from braze_sandbox.ctx import Ctx

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
DEPARTMENTS = {"agency", "bi", "c_suite", "engineering", "finance", "marketing", "pm"}
COMPANY_PERMISSIONS = {"admin", "manage_company_settings", "add_remove_app_groups"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FILTER_RE = re.compile(r'^\s*userName\s+eq\s+"([^"]*)"\s*$', re.IGNORECASE)
NEVER = "Thursday, January 1, 1970 12:00:00 AM"
# Every other top-level field of a request is stored as sent and answered back.
KNOWN_FIELDS = {"schemas", "id", "userName", "name", "department", "lastSignInAt", "permissions"}
SET_NAME, SET_ID = "appGroupPermissionSetName", "appGroupPermissionSetId"
# The appendix spells the id "appGroupPermissionSetID" in its table, "...Id" in its answers.
SET_ID_SPELLINGS = (SET_ID, "appGroupPermissionSetID")


def user_json(row: Any, *, describe: bool = False) -> dict[str, Any]:
    """The account as SCIM answers it; `describe` (current profile) spells out what each
    role and permission set grants, as Braze's answers do."""
    permissions = json.loads(row["permissions"])
    if describe:
        permissions = _described(permissions)
    return {
        **json.loads(row["extra"] or "{}"),
        "schemas": [USER_SCHEMA],
        "id": row["id"],
        "userName": row["user_name"],
        "name": {"givenName": row["given_name"], "familyName": row["family_name"]},
        "department": row["department"],
        "lastSignInAt": row["last_sign_in_at"] or NEVER,
        "permissions": permissions,
    }


def _described(permissions: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(permissions))
    for role in out.get("roles") or []:
        definition = scim_strings.ROLES.get(role.get("roleName", ""))
        if definition is not None:
            role["appGroup"] = json.loads(json.dumps(definition))
    for group in out.get("appGroup") or []:
        for permission_set in group.get("appGroupPermissionSets") or []:
            granted = scim_strings.PERMISSION_SETS.get(permission_set.get(SET_NAME, ""))
            if granted is not None:
                permission_set["permissions"] = list(granted)
    return out


def _extra(body: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in body.items() if k not in KNOWN_FIELDS})


def _refs(value: Any, name_key: str, id_keys: tuple[str, ...], what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, dict)
        and any(isinstance(v.get(k), str) and v[k] for k in (name_key, *id_keys))
        for v in value
    ):
        raise scim_error(400, f"{what} entries need {name_key} or {id_keys[0]}")
    return value


def _strings_in(value: Any, accepted: frozenset[str], what: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise scim_error(400, f"{what} must be an array of strings")
    unknown = sorted(set(value) - accepted)
    if unknown:
        raise scim_error(400, f"{what} contains an invalid permission: {', '.join(unknown)}")


def _validate_current(permissions: dict[str, Any]) -> None:
    """The permissions object as the appendix documents it today."""
    _refs(permissions.get("roles"), "roleName", ("roleId",), "roles")
    for group in permissions.get("appGroup", []):
        sets = _refs(
            group.get("appGroupPermissionSets"),
            SET_NAME,
            SET_ID_SPELLINGS,
            "appGroupPermissionSets",
        )
        if len(sets) > 1:
            raise scim_error(400, "appGroupPermissionSets takes a single permission set")
        if "appGroupPermissions" in group or not sets:
            _strings_in(
                group.get("appGroupPermissions"),
                scim_strings.WORKSPACE_ACCEPTED,
                "appGroupPermissions",
            )
        for team in _refs(group.get("team"), "teamName", ("teamId",), "team"):
            _strings_in(team.get("teamPermissions"), scim_strings.TEAM_ACCEPTED, "teamPermissions")


def _validate(body: Any, *, creating: bool, current: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise scim_error(400, "Request body must be a JSON object")
    if not isinstance(body.get("schemas"), list) or USER_SCHEMA not in body["schemas"]:
        raise scim_error(400, f"schemas must include {USER_SCHEMA}")
    if creating:
        user_name = body.get("userName")
        if not isinstance(user_name, str) or not EMAIL_RE.match(user_name):
            raise scim_error(400, "userName must be a valid email address")
    name = body.get("name")
    if not isinstance(name, dict) or not all(
        isinstance(name.get(k), str) and name[k] for k in ("givenName", "familyName")
    ):
        raise scim_error(400, "name must contain givenName and familyName")
    if body.get("department") not in DEPARTMENTS:
        raise scim_error(400, "department must be a valid department string")
    permissions = body.get("permissions")
    if not isinstance(permissions, dict):
        raise scim_error(400, "permissions must be an object")
    company = permissions.get("companyPermissions", [])
    if not isinstance(company, list) or set(company) - COMPANY_PERMISSIONS:
        raise scim_error(400, "companyPermissions contains an invalid permission")
    groups = permissions.get("appGroup", [])
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and ("appGroupName" in g or "appGroupId" in g) for g in groups
    ):
        raise scim_error(400, "appGroup entries need appGroupName or appGroupId")
    if current:
        _validate_current(permissions)
    return body


def _ids_for(permissions: dict[str, Any]) -> dict[str, Any]:
    # Braze answers with ids for the workspaces and teams a request named only by name.
    out: dict[str, Any] = json.loads(json.dumps(permissions))
    for group in out.get("appGroup", []):
        group.setdefault(
            "appGroupId", uuid.uuid5(uuid.NAMESPACE_DNS, group.get("appGroupName", "")).hex[:19]
        )
        for team in group.get("team", []):
            team.setdefault(
                "teamId", uuid.uuid5(uuid.NAMESPACE_DNS, team.get("teamName", "")).hex[:17]
            )
        for permission_set in group.get("appGroupPermissionSets") or []:
            if isinstance(permission_set, dict) and permission_set.get(SET_NAME):
                permission_set.pop("appGroupPermissionSetID", None)
                permission_set.setdefault(
                    SET_ID, scim_strings.stable_id("set", permission_set[SET_NAME])
                )
                # What a set grants is Braze's definition, never the user's to send.
                permission_set.pop("permissions", None)
    for role in out.get("roles") or []:
        if isinstance(role, dict):
            if role.get("roleName"):
                role.setdefault("roleId", scim_strings.stable_id("role", role["roleName"]))
            role.pop("appGroup", None)
    return out


def _get(ctx: Ctx) -> Any:
    row = ctx.store.q1(
        "SELECT * FROM scim_users WHERE id=? AND company=?", (ctx.path("user_id"), ctx.workspace)
    )
    if row is None:
        raise scim_error(404, "User not found")
    ctx.item_ids = [row["id"]]
    return row


def _scim(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type="application/scim+json")


def _answer(ctx: Ctx, row: Any) -> dict[str, Any]:
    return user_json(row, describe=not ctx.config.reference)


async def search_users(ctx: Ctx) -> JSONResponse:
    raw = ctx.request.query_params.get("filter", "")
    match = FILTER_RE.match(raw)
    if match is None:
        raise scim_error(400, 'filter must have the form userName eq "user@example.com"')
    rows = ctx.store.q(
        "SELECT * FROM scim_users WHERE company=? AND lower(user_name)=lower(?)",
        (ctx.workspace, match.group(1)),
    )
    return _scim(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(rows),
            "Resources": [_answer(ctx, r) for r in rows],
        }
    )


async def create_user(ctx: Ctx) -> JSONResponse:
    body = _validate(await ctx.json(), creating=True, current=not ctx.config.reference)
    if ctx.store.q1(
        "SELECT 1 FROM scim_users WHERE company=? AND lower(user_name)=lower(?)",
        (ctx.workspace, body["userName"]),
    ):
        raise scim_error(409, "User already exists in the database.")
    user_id = "-".join(uuid.uuid4().hex[i : i + 8] for i in range(0, 32, 8))
    ctx.store.x(
        "INSERT INTO scim_users (id, company, user_name, given_name, family_name, department,"
        " permissions, last_sign_in_at, created_at, extra)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        (
            user_id,
            ctx.workspace,
            body["userName"],
            body["name"]["givenName"],
            body["name"]["familyName"],
            body["department"],
            json.dumps(_ids_for(body["permissions"])),
            iso_now(),
            _extra(body),
        ),
    )
    ctx.item_ids = [user_id]
    row = ctx.store.q1("SELECT * FROM scim_users WHERE id=?", (user_id,))
    return _scim(_answer(ctx, row), 201)


async def get_user(ctx: Ctx) -> JSONResponse:
    return _scim(_answer(ctx, _get(ctx)))


async def update_user(ctx: Ctx) -> JSONResponse:
    row = _get(ctx)
    body = _validate(await ctx.json(), creating=False, current=not ctx.config.reference)
    if "userName" in body and body["userName"] != row["user_name"]:
        raise scim_error(400, "userName cannot be updated through this endpoint")
    # A PUT replaces the account: what the body leaves out is gone.
    ctx.store.x(
        "UPDATE scim_users SET given_name=?, family_name=?, department=?, permissions=?,"
        " extra=? WHERE id=?",
        (
            body["name"]["givenName"],
            body["name"]["familyName"],
            body["department"],
            json.dumps(_ids_for(body["permissions"])),
            _extra(body),
            row["id"],
        ),
    )
    return _scim(_answer(ctx, ctx.store.q1("SELECT * FROM scim_users WHERE id=?", (row["id"],))))


async def delete_user(ctx: Ctx) -> Response:
    row = _get(ctx)
    ctx.store.x("DELETE FROM scim_users WHERE id=?", (row["id"],))
    return Response(status_code=204)
