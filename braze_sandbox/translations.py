"""Translations of email templates and Content Blocks (early access in Braze), read only.

Reference: "View all translations and locales for an email template"
(_docs/_api/endpoints/translations/email_templates/get_view_translation_template.md) and
"View all translations for a Content Block"
(_docs/_api/endpoints/translations/content_blocks/get_translation_content_block.md). The
sandbox holds no locale settings: translations are set through the admin API.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from braze_sandbox.content import _get_block, _get_template
from braze_sandbox.errors import ApiError

if TYPE_CHECKING:
    from braze_sandbox.ctx import Ctx
    from braze_sandbox.store import Store

KINDS = ("email_template", "content_block")
# The pages' example error: a message with no translations is not a multi-language one.
NOT_MULTI_LANGUAGE = "This message does not support multi-language."


def store_translations(
    store: Store, workspace: str, kind: str, resource_id: str, translations: list[Any]
) -> None:
    store.x(
        "INSERT OR REPLACE INTO translations (workspace, kind, resource_id, data)"
        " VALUES (?, ?, ?, ?)",
        (workspace, kind, resource_id, json.dumps(translations)),
    )


def _answer(ctx: Ctx, kind: str, resource_id: str) -> JSONResponse:
    row = ctx.store.q1(
        "SELECT data FROM translations WHERE workspace=? AND kind=? AND resource_id=?",
        (ctx.workspace, kind, resource_id),
    )
    if row is None:
        raise ApiError(400, {"errors": [{"message": NOT_MULTI_LANGUAGE}]})
    translations = json.loads(row["data"])
    locale_id = ctx.request.query_params.get("locale_id")
    if locale_id:
        translations = [t for t in translations if t["locale"]["uuid"] == locale_id]
        if not translations:
            raise ApiError(
                400, {"errors": [{"message": "The provided locale code does not exist."}]}
            )
    return JSONResponse({"translations": translations})


async def template_translations(ctx: Ctx) -> JSONResponse:
    row = _get_template(ctx, ctx.request.query_params.get("template_id"))
    return _answer(ctx, "email_template", row["id"])


async def block_translations(ctx: Ctx) -> JSONResponse:
    row = _get_block(ctx, ctx.request.query_params.get("content_block_id"))
    return _answer(ctx, "content_block", row["id"])
