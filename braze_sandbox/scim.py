"""Dashboard users over SCIM 2.0 (scim.md). Bucketed per company, not per workspace."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from braze_sandbox.errors import scim_error
from braze_sandbox.store import iso_now

if TYPE_CHECKING:
    from braze_sandbox.app import Ctx

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
DEPARTMENTS = {"agency", "bi", "c_suite", "engineering", "finance", "marketing", "pm"}
COMPANY_PERMISSIONS = {"admin", "manage_company_settings", "add_remove_app_groups"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FILTER_RE = re.compile(r'^\s*userName\s+eq\s+"([^"]*)"\s*$', re.IGNORECASE)
NEVER = "Thursday, January 1, 1970 12:00:00 AM"


def user_json(row: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "id": row["id"],
        "userName": row["user_name"],
        "name": {"givenName": row["given_name"], "familyName": row["family_name"]},
        "department": row["department"],
        "lastSignInAt": row["last_sign_in_at"] or NEVER,
        "permissions": json.loads(row["permissions"]),
    }


def _validate(body: Any, *, creating: bool) -> dict[str, Any]:
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
    return body


def _ids_for(permissions: dict[str, Any]) -> dict[str, Any]:
    # Braze answers with ids for the workspaces and teams a request named only by name.
    out = json.loads(json.dumps(permissions))
    for group in out.get("appGroup", []):
        group.setdefault(
            "appGroupId", uuid.uuid5(uuid.NAMESPACE_DNS, group.get("appGroupName", "")).hex[:19]
        )
        for team in group.get("team", []):
            team.setdefault(
                "teamId", uuid.uuid5(uuid.NAMESPACE_DNS, team.get("teamName", "")).hex[:17]
            )
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
        {"schemas": [LIST_SCHEMA], "totalResults": len(rows),
         "Resources": [user_json(r) for r in rows]}
    )  # fmt: skip


async def create_user(ctx: Ctx) -> JSONResponse:
    body = _validate(await ctx.json(), creating=True)
    if ctx.store.q1(
        "SELECT 1 FROM scim_users WHERE company=? AND lower(user_name)=lower(?)",
        (ctx.workspace, body["userName"]),
    ):
        raise scim_error(409, "User already exists in the database.")
    user_id = "-".join(uuid.uuid4().hex[i : i + 8] for i in range(0, 32, 8))
    ctx.store.x(
        "INSERT INTO scim_users VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        (user_id, ctx.workspace, body["userName"], body["name"]["givenName"],
         body["name"]["familyName"], body["department"],
         json.dumps(_ids_for(body["permissions"])), iso_now()),
    )  # fmt: skip
    ctx.item_ids = [user_id]
    row = ctx.store.q1("SELECT * FROM scim_users WHERE id=?", (user_id,))
    return _scim(user_json(row), 201)


async def get_user(ctx: Ctx) -> JSONResponse:
    return _scim(user_json(_get(ctx)))


async def update_user(ctx: Ctx) -> JSONResponse:
    row = _get(ctx)
    body = _validate(await ctx.json(), creating=False)
    if "userName" in body and body["userName"] != row["user_name"]:
        raise scim_error(400, "userName cannot be updated through this endpoint")
    ctx.store.x(
        "UPDATE scim_users SET given_name=?, family_name=?, department=?, permissions=?"
        " WHERE id=?",
        (body["name"]["givenName"], body["name"]["familyName"], body["department"],
         json.dumps(_ids_for(body["permissions"])), row["id"]),
    )  # fmt: skip
    return _scim(user_json(ctx.store.q1("SELECT * FROM scim_users WHERE id=?", (row["id"],))))


async def delete_user(ctx: Ctx) -> Response:
    row = _get(ctx)
    ctx.store.x("DELETE FROM scim_users WHERE id=?", (row["id"],))
    return Response(status_code=204)
