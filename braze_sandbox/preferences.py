"""Preference centers (preference-center.md)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.responses import JSONResponse

from braze_sandbox.errors import message_error

if TYPE_CHECKING:
    from braze_sandbox.ctx import Ctx

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
LINK_RELS = {"icon", "shortcut icon", "apple-touch-icon"}
# Reference: "View details for preference center" (_docs/_api/endpoints/preference_center/
# get_view_details_preference_center.md) shows only this option in its answer; favicon
# "links-tags", accepted by create and update, are kept but not shown.
VIEWED_OPTIONS = ("meta-viewport-content",)


def _stamp() -> str:
    # Preference-center examples use whole seconds with a Z suffix.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(ctx: Ctx, pc_id: str) -> Any:
    row = ctx.store.q1(
        "SELECT * FROM preference_centers WHERE id=? AND workspace=?", (pc_id, ctx.workspace)
    )
    if row is None:
        raise message_error("Preference center not found", status=404)
    return row


def _validate_common(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise message_error("Request body must be a JSON object")
    for key in ("preference_center_page_html", "confirmation_page_html"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise message_error(f"{key} is required")
    if "preference_center_title" in body and not isinstance(body["preference_center_title"], str):
        raise message_error("preference_center_title must be a string")
    if "state" in body and body["state"] not in {"active", "draft"}:
        raise message_error("state must be either active or draft")
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise message_error("options must be an object")
    links = options.get("links-tags", [])
    if not isinstance(links, list) or not all(
        isinstance(link, dict) and link.get("rel") in LINK_RELS for link in links
    ):
        raise message_error("options.links-tags must be objects with a valid rel")
    return body


async def list_centers(ctx: Ctx) -> JSONResponse:
    rows = ctx.store.q(
        "SELECT * FROM preference_centers WHERE workspace=? ORDER BY created_at, id",
        (ctx.workspace,),
    )
    return JSONResponse(
        {
            "preference_centers": [
                {
                    "name": r["name"],
                    "preference_center_api_id": r["id"],
                    "created_at": r["created_at"],
                    "updated_at": r["updated_at"],
                }
                for r in rows
            ]
        }
    )


async def view_center(ctx: Ctx) -> JSONResponse:
    row = _get(ctx, ctx.path("pc_id"))
    ctx.item_ids = [row["id"]]
    options = json.loads(row["options"])
    if not ctx.config.reference:
        options = {key: value for key, value in options.items() if key in VIEWED_OPTIONS}
    return JSONResponse(
        {
            "name": row["name"],
            "preference_center_api_id": row["id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "preference_center_title": row["title"],
            "preference_center_page_html": row["page_html"],
            "confirmation_page_html": row["confirmation_html"],
            "redirect_page_html": row["redirect_html"],
            "preference_center_options": options,
            "state": row["state"],
        }
    )


async def create_center(ctx: Ctx) -> JSONResponse:
    body = await ctx.json()
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise message_error("name is required")
    if not NAME_RE.match(name):
        raise message_error(
            "name can only contain letters, numbers, hyphens, and underscores, and no spaces"
        )
    body = _validate_common(body)
    store = ctx.store
    if store.q1(
        "SELECT 1 FROM preference_centers WHERE workspace=? AND name=?", (ctx.workspace, name)
    ):
        raise message_error("A preference center with this name already exists")
    count = store.q1(
        "SELECT COUNT(*) AS n FROM preference_centers WHERE workspace=?", (ctx.workspace,)
    )
    if count and count["n"] >= ctx.config.max_preference_centers:
        raise message_error("Maximum number of preference centers reached")
    now, pc_id = _stamp(), str(uuid.uuid4())
    store.x(
        "INSERT INTO preference_centers VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
        (
            pc_id,
            ctx.workspace,
            name,
            body.get("preference_center_title") or "Preference Center",
            body["preference_center_page_html"],
            body["confirmation_page_html"],
            json.dumps(body.get("options", {})),
            body.get("state", "active"),
            now,
            now,
        ),
    )
    ctx.item_ids = [pc_id]
    return JSONResponse(
        {
            "preference_center_api_id": pc_id,
            "liquid_tag": "{{preference_center.${" + name + "}}}",
            "created_at": now,
            "message": "success",
        },
        status_code=201,
    )


async def update_center(ctx: Ctx) -> JSONResponse:
    row = _get(ctx, ctx.path("pc_id"))
    ctx.item_ids = [row["id"]]
    # A "name" in the body is ignored: names are fixed at creation, and Braze's own update
    # example sends one. "options", when sent, replaces every stored option (Braze does not
    # say it merges them); left out, the stored options stay.
    body = _validate_common(await ctx.json())
    now = _stamp()
    ctx.store.x(
        "UPDATE preference_centers SET title=?, page_html=?, confirmation_html=?, options=?,"
        " state=?, updated_at=? WHERE id=?",
        (
            body.get("preference_center_title", row["title"]) or "Preference Center",
            body["preference_center_page_html"],
            body["confirmation_page_html"],
            json.dumps(body["options"]) if "options" in body else row["options"],
            body.get("state", row["state"]),
            now,
            row["id"],
        ),
    )
    return JSONResponse(
        {
            "preference_center_api_id": row["id"],
            "created_at": row["created_at"],
            "updated_at": now,
            "message": "success",
        }
    )


async def user_url(ctx: Ctx) -> JSONResponse:
    row = _get(ctx, ctx.path("pc_id"))
    user_id = ctx.path("user_id")
    ctx.item_ids = [row["id"]]
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"{row['id']}/{user_id}").hex
    return JSONResponse(
        {
            "preference_center_url": (
                f"https://preferences.sandbox.invalid/{quote(row['id'])}/{token}"
            )
        }
    )
