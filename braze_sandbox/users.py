"""User profile export by identifier (POST /users/export/ids), minimal: seeded demo users.

Reference: "Export user profile by identifier"
(_docs/_api/endpoints/export/user_data/post_users_identifier.md). The sandbox keeps each
user as the export object Braze documents and answers with the fields asked for.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from braze_sandbox.errors import message_error

if TYPE_CHECKING:
    from braze_sandbox.ctx import Ctx

# "Fields to export" on the endpoint's page.
EXPORT_FIELDS = frozenset(
    {
        "apps",
        "attributed_campaign",
        "attributed_source",
        "attributed_adgroup",
        "attributed_ad",
        "braze_id",
        "campaigns_received",
        "canvases_received",
        "cards_clicked",
        "country",
        "created_at",
        "custom_attributes",
        "custom_events",
        "devices",
        "dob",
        "email",
        "email_subscribe",
        "external_id",
        "first_name",
        "gender",
        "home_city",
        "language",
        "last_coordinates",
        "last_name",
        "phone",
        "purchases",
        "push_subscribe",
        "push_tokens",
        "random_bucket",
        "time_zone",
        "total_revenue",
        "uninstalled_at",
        "user_aliases",
    }
)
# "Up to 50 external_ids or user_aliases can be included in a single request."
IDS_MAX = 50
SINGLE_IDENTIFIERS = ("device_id", "braze_id", "email_address", "phone")


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise message_error(f"{key} must be an array of strings")
    if len(value) > IDS_MAX:
        raise message_error(f"{key} may hold at most {IDS_MAX} identifiers")
    return value


def _aliases(body: dict[str, Any]) -> list[tuple[str, str]]:
    value = body.get("user_aliases", [])
    if not isinstance(value, list) or len(value) > IDS_MAX:
        raise message_error(f"user_aliases must be an array of at most {IDS_MAX} alias objects")
    aliases = []
    for alias in value:
        name = alias.get("alias_name") if isinstance(alias, dict) else None
        label = alias.get("alias_label") if isinstance(alias, dict) else None
        if not isinstance(name, str) or not isinstance(label, str):
            raise message_error("each user alias needs a string alias_name and alias_label")
        aliases.append((name, label))
    return aliases


def _fields(ctx: Ctx, body: dict[str, Any]) -> frozenset[str]:
    if "fields_to_export" not in body:
        # Required of workspaces onboarded since 22 August 2024 (the page's note); the
        # reference collection's Braze exported every field.
        if ctx.config.reference:
            return EXPORT_FIELDS
        raise message_error("fields_to_export is required")
    fields = body["fields_to_export"]
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise message_error("fields_to_export must be an array of strings")
    unknown = sorted(set(fields) - EXPORT_FIELDS)
    if unknown:
        raise message_error(f"fields_to_export holds unknown fields: {', '.join(unknown)}")
    return frozenset(fields)


async def export_ids(ctx: Ctx) -> JSONResponse:
    body = await ctx.json()
    if not isinstance(body, dict):
        raise message_error("Request body must be a JSON object")
    external_ids = _strings(body, "external_ids")
    aliases = _aliases(body)
    singles = {k: body[k] for k in SINGLE_IDENTIFIERS if body.get(k) is not None}
    for key, value in singles.items():
        if not isinstance(value, str):
            raise message_error(f"{key} must be a string")
    if not (external_ids or aliases or singles):
        raise message_error("Provide at least one user identifier")
    fields = _fields(ctx, body)
    rows = ctx.store.q("SELECT data FROM users WHERE workspace=?", (ctx.workspace,))
    people = [json.loads(r["data"]) for r in rows]
    found: list[dict[str, Any]] = []
    invalid: list[str] = []

    def add(person: dict[str, Any]) -> None:
        if person not in found:
            found.append(person)

    for external_id in external_ids:
        match = next((p for p in people if p.get("external_id") == external_id), None)
        if match is None:
            invalid.append(external_id)
        else:
            add(match)
    for name, label in aliases:
        alias = {"alias_name": name, "alias_label": label}
        match = next((p for p in people if alias in p.get("user_aliases", [])), None)
        if match is None:
            invalid.append(name)
        else:
            add(match)
    field_of = {"braze_id": "braze_id", "email_address": "email", "phone": "phone"}
    for key, value in singles.items():
        if key in field_of:
            match = next((p for p in people if p.get(field_of[key]) == value), None)
        else:
            match = next(
                (
                    p
                    for p in people
                    if any(d.get("device_id") == value for d in p.get("devices", []))
                ),
                None,
            )
        if match is None:
            invalid.append(value)
        else:
            add(match)
    # "the least data possible": a field the user has no value for is left out.
    users = [
        {k: v for k, v in person.items() if k in fields and v not in (None, "", [], {})}
        for person in found
    ]
    answer: dict[str, Any] = {"users": users, "message": "success"}
    if invalid:
        answer["invalid_user_ids"] = invalid
    return JSONResponse(answer)
