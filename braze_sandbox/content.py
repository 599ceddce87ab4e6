"""Email templates and Content Blocks (templates.md)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from braze_sandbox.errors import ApiError, message_error
from braze_sandbox.liquid_check import is_malformed, referenced_blocks
from braze_sandbox.store import Store, iso_now, parse_iso

if TYPE_CHECKING:
    from braze_sandbox.ctx import Ctx

BLOCK_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_CONTENT_BYTES = 50 * 1024


def _check_tags(store: Store, workspace: str, tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise message_error("Tags must be an array")
    if not all(isinstance(t, str) for t in tags):
        raise message_error("All tags must be strings")
    if set(tags) - store.workspace_tags(workspace):
        raise message_error("Some tags could not be found")
    return tags


def _list_params(ctx: Ctx, noun: str) -> tuple[datetime | None, datetime | None, int, int]:
    query = ctx.request.query_params
    after = before = None
    if "modified_after" in query:
        after = parse_iso(query["modified_after"])
        if after is None:
            raise message_error("Modified after time is invalid")
    if "modified_before" in query:
        before = parse_iso(query["modified_before"])
        if before is None:
            raise message_error("Modified before time is invalid")
    if after and before and after > before:
        raise message_error(
            "Modified after time must be earlier than or the same as modified before time."
        )
    limit = 100
    if "limit" in query:
        try:
            limit = int(query["limit"])
        except ValueError:
            raise message_error(f"{noun} number limit is invalid") from None
        if limit <= 0:
            raise message_error(f"{noun} number limit must be greater than 0")
        if limit > 1000:
            raise message_error(f"{noun} number limit exceeds maximum of 1000")
    offset = 0
    if "offset" in query:
        try:
            offset = int(query["offset"])
        except ValueError:
            raise message_error("Offset is invalid") from None
        if offset <= 0:
            # Braze refuses offset=0 (braze-facts §6); leave the parameter out for no offset.
            raise message_error("Offset must be greater than 0")
    return after, before, limit, offset


def _in_range(stamp: str, after: datetime | None, before: datetime | None) -> bool:
    when = parse_iso(stamp)
    assert when is not None
    return (after is None or when >= after) and (before is None or when <= before)


def _workspace_word(ctx: Ctx) -> str:
    """Braze renamed "app group" to "workspace"; its messages followed. Current: the
    Troubleshooting table of "See Content Block information" (_docs/_api/endpoints/templates/
    content_blocks_templates/get_see_email_content_blocks_information.md)."""
    return "App Group" if ctx.config.reference else "workspace"


def _body_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise message_error("Request body must be a JSON object")
    return body


# --- email templates -------------------------------------------------------------------------


def _template_summary(row: Any) -> dict[str, Any]:
    return {
        "email_template_id": row["id"],
        "template_name": row["template_name"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "tags": json.loads(row["tags"]),
    }


async def list_templates(ctx: Ctx) -> JSONResponse:
    after, before, limit, offset = _list_params(ctx, "Template")
    rows = ctx.store.q(
        # Drag-and-drop templates are not returned by the list API (templates.md).
        "SELECT * FROM email_templates WHERE workspace=? AND editor='html' ORDER BY created_at, id",
        (ctx.workspace,),
    )
    chosen = [r for r in rows if _in_range(r["updated_at"], after, before)][offset : offset + limit]
    return JSONResponse(
        {
            "count": len(chosen),
            "templates": [_template_summary(r) for r in chosen],
            "message": "success",
        }
    )


def _get_template(ctx: Ctx, template_id: Any) -> Any:
    if not isinstance(template_id, str) or not template_id:
        raise message_error("Email template ID cannot be blank")
    row = ctx.store.q1(
        "SELECT * FROM email_templates WHERE id=? AND workspace=?", (template_id, ctx.workspace)
    )
    if row is None:
        # Braze's docs list no error for this endpoint; the Content Block's wording is used.
        raise message_error(f"Email template ID is invalid for this {_workspace_word(ctx)}")
    if row["editor"] != "html":
        raise message_error("Templates built with the drag-and-drop editor are not supported")
    return row


async def template_info(ctx: Ctx) -> JSONResponse:
    row = _get_template(ctx, ctx.request.query_params.get("email_template_id"))
    return JSONResponse(
        {
            "email_template_id": row["id"],
            "template_name": row["template_name"],
            "description": row["description"],
            "subject": row["subject"],
            "preheader": row["preheader"],
            "body": row["body"],
            "plaintext_body": row["plaintext_body"],
            "should_inline_css": None
            if row["should_inline_css"] is None
            else bool(row["should_inline_css"]),
            "tags": json.loads(row["tags"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "message": "success",
        }
    )


def _check_template_fields(ctx: Ctx, body: dict[str, Any]) -> None:
    for key in ("template_name", "subject", "body", "plaintext_body", "preheader"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise message_error(f"{key} must be a string")
    if "should_inline_css" in body and not isinstance(body["should_inline_css"], bool):
        raise message_error(
            "Invalid value for `should_inline_css`. One of `true` or `false` was expected"
        )
    text = " ".join(str(body.get(k) or "") for k in ("body", "plaintext_body", "subject"))
    names = _block_names(ctx.store, ctx.workspace)
    if any(ref not in names for ref in referenced_blocks(text)):
        raise message_error("Email must have valid Content Block names")


def _block_names(store: Store, workspace: str) -> set[str]:
    rows = store.q("SELECT name FROM content_blocks WHERE workspace=? AND deleted=0", (workspace,))
    return {r["name"] for r in rows}


async def create_template(ctx: Ctx) -> JSONResponse:
    body = _body_dict(await ctx.json())
    if not isinstance(body.get("template_name"), str) or not body["template_name"].strip():
        raise message_error("Template name is required")
    if not isinstance(body.get("subject"), str) or not body["subject"]:
        raise message_error("Subject is required")
    if not isinstance(body.get("body"), str) or not body["body"]:
        raise message_error("Body is required")
    tags = _check_tags(ctx.store, ctx.workspace, body.get("tags"))
    _check_template_fields(ctx, body)
    now, template_id = iso_now(), str(uuid.uuid4())
    inline = body.get("should_inline_css")
    ctx.store.x(
        "INSERT INTO email_templates (id, workspace, template_name, description, subject, body,"
        " plaintext_body, preheader, tags, should_inline_css, editor, created_at, updated_at)"
        " VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, 'html', ?, ?)",
        (
            template_id,
            ctx.workspace,
            body["template_name"],
            body["subject"],
            body["body"],
            body.get("plaintext_body"),
            body.get("preheader"),
            json.dumps(tags),
            None if inline is None else int(inline),
            now,
            now,
        ),
    )
    ctx.item_ids = [template_id]
    return JSONResponse({"email_template_id": template_id, "message": "success"}, status_code=201)


async def update_template(ctx: Ctx) -> JSONResponse:
    body = _body_dict(await ctx.json())
    row = _get_template(ctx, body.get("email_template_id"))
    ctx.item_ids = [row["id"]]
    fields = [
        k
        for k in (
            "template_name",
            "subject",
            "body",
            "plaintext_body",
            "preheader",
            "tags",
            "should_inline_css",
        )
        if k in body
    ]
    if not fields:
        raise message_error("At least one field to update is required")
    if "template_name" in body and (
        not isinstance(body["template_name"], str) or not body["template_name"].strip()
    ):
        raise message_error("Template name is required")
    tags = _check_tags(ctx.store, ctx.workspace, body["tags"]) if "tags" in body else None
    _check_template_fields(ctx, body)
    updates: dict[str, Any] = {k: body[k] for k in fields if k not in {"tags", "should_inline_css"}}
    if tags is not None:
        updates["tags"] = json.dumps(tags)
    if "should_inline_css" in body:
        updates["should_inline_css"] = int(body["should_inline_css"])
    updates["updated_at"] = iso_now()
    assignments = ", ".join(f"{k}=?" for k in updates)
    ctx.store.x(
        f"UPDATE email_templates SET {assignments} WHERE id=?",  # noqa: S608 - fixed column names
        (*updates.values(), row["id"]),
    )
    return JSONResponse({"message": "success"})


# --- content blocks ----------------------------------------------------------------------------


def _content_type(content: str) -> str:
    return "html" if re.search(r"<[A-Za-z!/][^>]*>", content) else "text"


def liquid_tag(name: str) -> str:
    return "{{content_blocks.${" + name + "}}}"


async def list_blocks(ctx: Ctx) -> JSONResponse:
    after, before, limit, offset = _list_params(ctx, "Content Block")
    rows = ctx.store.q(
        "SELECT * FROM content_blocks WHERE workspace=? AND deleted=0 ORDER BY created_at, id",
        (ctx.workspace,),
    )
    chosen = [r for r in rows if _in_range(r["updated_at"], after, before)][offset : offset + limit]
    blocks = [
        {
            "content_block_id": r["id"],
            "name": r["name"],
            "content_type": r["content_type"],
            "liquid_tag": liquid_tag(r["name"]),
            "inclusion_count": len(json.loads(r["inclusion_data"])),
            "created_at": r["created_at"],
            "last_edited": r["updated_at"],
            "tags": json.loads(r["tags"]),
        }
        for r in chosen
    ]
    return JSONResponse({"count": len(blocks), "content_blocks": blocks, "message": "success"})


def _get_block(ctx: Ctx, block_id: Any) -> Any:
    if not isinstance(block_id, str) or not block_id:
        raise message_error("Content Block ID cannot be blank")
    row = ctx.store.q1(
        "SELECT * FROM content_blocks WHERE id=? AND workspace=?", (block_id, ctx.workspace)
    )
    if row is None:
        raise message_error(f"Content Block ID is invalid for this {_workspace_word(ctx)}")
    if row["deleted"]:
        dash = " - " if ctx.config.reference else "\u2014"
        raise message_error(f"Content Block has been deleted{dash}content not available")
    return row


async def block_info(ctx: Ctx) -> JSONResponse:
    query = ctx.request.query_params
    row = _get_block(ctx, query.get("content_block_id"))
    include = query.get("include_inclusion_data")
    if include is not None and include not in {"true", "false"}:
        raise message_error("Include Inclusion Data error")
    inclusions = json.loads(row["inclusion_data"])
    result: dict[str, Any] = {
        "content_block_id": row["id"],
        "name": row["name"],
        "content": row["content"],
        "description": row["description"],
        "content_type": row["content_type"],
        "tags": json.loads(row["tags"]),
        "created_at": row["created_at"],
        "last_edited": row["updated_at"],
        "inclusion_count": len(inclusions),
        "message": "success",
    }
    if include == "true":
        result["inclusion_data"] = inclusions
    return JSONResponse(result)


def _validate_block(
    ctx: Ctx, body: dict[str, Any], *, own_name: str, partial: bool = False
) -> None:
    """`partial`: an update that may leave name and content out (they keep their values)."""
    name, content = body.get("name"), body.get("content")
    if not partial or "name" in body:
        if name is None or name == "":
            raise message_error("Content Block name cannot be blank")
        if not isinstance(name, str):
            raise message_error("Content Block name can only contain alphanumeric characters")
        if len(name) >= 100:
            raise message_error("Content Block name must be shorter than 100 characters")
        if not BLOCK_NAME_RE.match(name):
            raise message_error("Content Block name can only contain alphanumeric characters")
    if "description" in body:
        description = body["description"]
        if description is None or description == "":
            raise message_error("Content Block description cannot be blank")
        if not isinstance(description, str):
            raise message_error("Content Block description must be a string")
        if len(description) >= 250:
            raise message_error("Content Block description must be shorter than 250 characters")
    if "state" in body and body["state"] not in {"active", "draft"}:
        raise message_error("Content Block state must be either active or draft")
    if partial and "content" not in body:
        return
    if content is None or content == "":
        raise message_error("Content cannot be blank")
    if not isinstance(content, str):
        raise message_error("Content must be a string")
    # The size is checked before any parsing, so an oversized body costs one pass.
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise message_error("Content must be smaller than 50kb")
    refs = referenced_blocks(content)
    if own_name in refs or (isinstance(name, str) and name in refs):
        raise message_error("Content Block cannot be referenced within itself")
    if is_malformed(content):
        raise message_error("Content contains malformed liquid")
    missing = set(refs) - _block_names(ctx.store, ctx.workspace)
    if missing:
        # Braze answers this case with a bare 500 (braze-sync CHANGELOG v0.16.5).
        raise ApiError(500, {"message": "Internal Server Error"})


async def create_block(ctx: Ctx) -> JSONResponse:
    body = _body_dict(await ctx.json())
    _validate_block(ctx, body, own_name=str(body.get("name")))
    tags = _check_tags(ctx.store, ctx.workspace, body.get("tags"))
    # Names stay reserved after deletion or archiving (braze-facts §1.3).
    if ctx.store.q1(
        "SELECT 1 FROM content_blocks WHERE workspace=? AND name=?", (ctx.workspace, body["name"])
    ):
        raise message_error("Content Block with this name already exists")
    now, block_id = iso_now(), str(uuid.uuid4())
    ctx.store.x(
        "INSERT INTO content_blocks (id, workspace, name, description, content, content_type,"
        " state, tags, inclusion_data, editor, deleted, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '[]', 'html', 0, ?, ?)",
        (
            block_id,
            ctx.workspace,
            body["name"],
            body.get("description") or "",
            body["content"],
            _content_type(body["content"]),
            body.get("state", "active"),
            json.dumps(tags),
            now,
            now,
        ),
    )
    ctx.item_ids = [block_id]
    return JSONResponse(
        {
            "content_block_id": block_id,
            "liquid_tag": liquid_tag(body["name"]),
            "created_at": now,
            "message": "success",
        },
        status_code=201,
    )


async def update_block(ctx: Ctx) -> JSONResponse:
    body = _body_dict(await ctx.json())
    row = _get_block(ctx, body.get("content_block_id"))
    ctx.item_ids = [row["id"]]
    if row["editor"] != "html":
        raise message_error("DND Content blocks are not allowed to be updated from the API.")
    # Reference: "Update Content Block" (_docs/_api/endpoints/templates/content_blocks_templates/
    # post_update_content_block.md): today every field but the id is optional; the older
    # reference collection requires name and content.
    partial = not ctx.config.reference
    _validate_block(ctx, body, own_name=row["name"], partial=partial)
    tags = _check_tags(ctx.store, ctx.workspace, body["tags"]) if "tags" in body else None
    name = body.get("name", row["name"])
    content = body.get("content", row["content"])
    # Both profiles: a state left out means active, whatever the block was (Braze's default).
    state = body.get("state", "active")
    if name != row["name"]:
        if row["state"] == "active":
            raise message_error("Content Block name cannot be updated for active Content Blocks")
        if ctx.store.q1(
            "SELECT 1 FROM content_blocks WHERE workspace=? AND name=?", (ctx.workspace, name)
        ):
            raise message_error("Content Block with this name already exists")
    if row["state"] == "active" and state == "draft":
        raise message_error(
            "Active Content Block can not be updated to Draft. Create a new Content Block."
        )
    now = iso_now()
    ctx.store.x(
        "UPDATE content_blocks SET name=?, description=?, content=?, content_type=?, state=?,"
        " tags=?, updated_at=? WHERE id=?",
        (
            name,
            body.get("description", row["description"]) or "",
            content,
            _content_type(content),
            state,
            json.dumps(tags) if tags is not None else row["tags"],
            now,
            row["id"],
        ),
    )
    return JSONResponse(
        {
            "content_block_id": row["id"],
            "liquid_tag": liquid_tag(name),
            "created_at": row["created_at"],
            "message": "success",
        }
    )
