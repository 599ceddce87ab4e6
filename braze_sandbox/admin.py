"""Admin API under /_sandbox/: knobs, reset and seed, keys, the request log, direct edits."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields as dc_fields
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from braze_sandbox import catalog_schema, stats, translations
from braze_sandbox.catalogs import write_item
from braze_sandbox.config import (
    ALGORITHMS,
    STORAGE_LIMITS,
    ExternalConsumer,
    GroupLimit,
    Injection,
)
from braze_sandbox.content import _content_type
from braze_sandbox.permissions import ALL_PERMISSIONS
from braze_sandbox.scim import user_json
from braze_sandbox.seed import seed_demo
from braze_sandbox.store import iso_now

if TYPE_CHECKING:
    from braze_sandbox.app import Sandbox

PREFIX = "/_sandbox"
# Host header names the admin API answers to: a web page the developer visits cannot reach it
# by pointing its own DNS name at 127.0.0.1 (DNS rebinding), whatever port the sandbox uses.
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
JSON = "application/json"


class BadRequest(Exception):
    pass


def host_is_loopback(host: str) -> bool:
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return name in LOOPBACK_HOSTS


def admin_refusal(request: Request, token: str) -> JSONResponse | None:
    """Why an admin request is refused, or None. Every admin request needs the token (a page
    in the developer's browser cannot know it), a loopback Host, and a body, if any, in JSON
    (an HTML form or a "simple" cross-site request can send no other type without a token)."""
    given = request.headers.get("x-sandbox-admin-token", "")
    if not secrets.compare_digest(given.encode(), token.encode()):
        return JSONResponse({"message": "admin token required"}, status_code=401)
    if not host_is_loopback(request.headers.get("host", "")):
        return JSONResponse({"message": "admin API answers loopback hosts only"}, status_code=403)
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    has_body = request.headers.get("content-length", "0") not in {"", "0"} or (
        "transfer-encoding" in request.headers
    )
    sends_body = request.method in {"POST", "PUT", "PATCH"} and (content_type or has_body)
    if sends_body and content_type != JSON:
        return JSONResponse({"message": f"admin requests must be {JSON}"}, status_code=415)
    return None


def admin_routes(sb: Sandbox) -> list[Route]:
    def guard(
        fn: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            refusal = admin_refusal(request, sb.admin_token)
            if refusal is not None:
                return refusal
            try:
                return await fn(request)
            except (BadRequest, KeyError, TypeError, ValueError) as exc:
                return JSONResponse({"message": f"bad admin request: {exc}"}, status_code=400)

        return wrapped

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "pid_time": time.time()})

    async def get_config(_request: Request) -> Response:
        return JSONResponse(sb.config.to_json())

    async def patch_config(request: Request) -> Response:
        apply_config(sb, await body(request))
        return JSONResponse(sb.config.to_json())

    async def reset(request: Request) -> Response:
        data = await body(request)
        do_reset(
            sb,
            seed=bool(data.get("seed", True)),
            products=data.get("products"),
            keep_log=bool(data.get("keep_log", False)),
            keep_config=bool(data.get("keep_config", False)),
            profile=data.get("profile"),
        )
        return JSONResponse({"message": "reset", "config": sb.config.to_json()})

    async def create_key(request: Request) -> Response:
        data = await body(request)
        permissions = data.get("permissions", ["*"])
        unknown = [p for p in permissions if p != "*" and p not in ALL_PERMISSIONS]
        if unknown:
            raise BadRequest(f"unknown permissions {unknown}; known: {list(ALL_PERMISSIONS)}")
        key = data.get("key") or f"sandbox-key-{secrets.token_hex(12)}"
        name = data.get("name") or f"key-{key[-6:]}"
        sb.store.add_key(key, name, data.get("workspace", "demo"), permissions)
        return JSONResponse(
            {
                "key": key,
                "name": name,
                "workspace": data.get("workspace", "demo"),
                "permissions": permissions,
            },
            status_code=201,
        )

    async def create_scim_token(request: Request) -> Response:
        data = await body(request)
        token = data.get("token") or f"sandbox-scim-{secrets.token_hex(12)}"
        company = data.get("company", "demo-company")
        sb.store.add_scim_token(token, data.get("name", "scim"), company, data.get("origin"))
        return JSONResponse({"token": token, "company": company}, status_code=201)

    async def add_tags(request: Request) -> Response:
        data = await body(request)
        workspace = data.get("workspace", "demo")
        sb.store.add_tags(workspace, data["tags"])
        return JSONResponse({"tags": sorted(sb.store.workspace_tags(workspace))})

    def filters(request: Request) -> dict[str, Any]:
        query = request.query_params
        out: dict[str, Any] = {}
        for name in ("since", "until"):
            if name in query:
                out[name] = float(query[name])
        for name in ("workspace", "group"):
            if name in query:
                out[name] = query[name]
        return out

    async def get_log(request: Request) -> Response:
        query = request.query_params
        entries = stats.read_log(
            sb.store,
            after_id=int(query["after_id"]) if "after_id" in query else None,
            **filters(request),
        )
        text = "".join(json.dumps(e) + "\n" for e in entries)
        return PlainTextResponse(text, media_type="application/x-ndjson")

    async def get_stats(request: Request) -> Response:
        limits = {g: lim.limit for g, lim in sb.config.limits.items()}
        result = stats.compute(sb.store, limits, **filters(request))
        result.update(
            algorithm=sb.config.algorithm,
            clock_scale=sb.config.clock_scale,
            rate_limits_enabled=sb.config.rate_limits_enabled,
        )
        return JSONResponse(result)

    async def async_state(_request: Request) -> Response:
        pending = [
            dict(r)
            for r in sb.store.q(
                "SELECT id, workspace, catalog, op, accepted_at, due FROM pending_ops ORDER BY id"
            )
        ]
        results = [
            {**dict(r), "outcome": json.loads(r["outcome"])}
            for r in sb.store.q("SELECT * FROM async_results ORDER BY id")
        ]
        return JSONResponse({"pending": pending, "results": results})

    async def async_flush(_request: Request) -> Response:
        return JSONResponse({"applied": sb.apply_due(time.time(), everything=True)})

    # --- direct edits, "as if in the Braze dashboard" ----------------------------------------

    async def edit_item(request: Request) -> Response:
        ws = request.query_params.get("workspace", "demo")
        catalog, item_id = request.path_params["catalog"], request.path_params["item_id"]
        if (
            sb.store.q1("SELECT 1 FROM catalogs WHERE workspace=? AND name=?", (ws, catalog))
            is None
        ):
            return JSONResponse({"message": "no such catalog"}, status_code=404)
        where = (ws, catalog, item_id)
        row = sb.store.q1(
            "SELECT data FROM catalog_items WHERE workspace=? AND catalog=? AND item_id=?", where
        )
        if request.method == "DELETE":
            sb.store.x(
                "DELETE FROM catalog_items WHERE workspace=? AND catalog=? AND item_id=?", where
            )
            return JSONResponse({"deleted": row is not None})
        values = {k: v for k, v in (await body(request)).items() if k != "id"}
        if request.method == "PATCH" and row is not None:
            values = {**json.loads(row["data"]), **values}
        write_item(sb.store, ws, catalog, item_id, values)
        sb.store.x(
            "UPDATE catalogs SET updated_at=? WHERE workspace=? AND name=?",
            (iso_now(), ws, catalog),
        )
        return JSONResponse({"id": item_id, **values})

    async def catalog_selections(request: Request) -> Response:
        """Every selection of a catalog with its definition and the items it returns now."""
        ws = request.query_params.get("workspace", "demo")
        catalog = request.path_params["catalog"]
        return JSONResponse(
            {
                "selections": [
                    {**s, "items": catalog_schema.selection_items(sb.store, ws, catalog, s["name"])}
                    for s in catalog_schema.selections(sb.store, ws, catalog)
                ]
            }
        )

    async def set_inventory(request: Request) -> Response:
        """Mark fields as inventory fields (a Shopify sync's, in Braze): they cannot be deleted."""
        ws = request.query_params.get("workspace", "demo")
        catalog = request.path_params["catalog"]
        names = (await body(request)).get("fields")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return JSONResponse({"message": "fields must be a list of names"}, status_code=400)
        sb.store.x(
            "INSERT OR REPLACE INTO catalog_inventory (workspace, catalog, inventory)"
            " VALUES (?, ?, ?)",
            (ws, catalog, json.dumps(names)),
        )
        return JSONResponse({"inventory": names})

    def patcher(table: str, allowed: dict[str, str]) -> Callable[[Request], Awaitable[Response]]:
        async def patch(request: Request) -> Response:
            rid = request.path_params["rid"]
            if sb.store.q1(f"SELECT 1 FROM {table} WHERE id=?", (rid,)) is None:  # noqa: S608
                return JSONResponse({"message": "not found"}, status_code=404)
            data = await body(request)
            updates: dict[str, Any] = {}
            for key, value in data.items():
                if key not in allowed:
                    raise BadRequest(f"cannot set {key}; settable: {sorted(allowed)}")
                column = allowed[key]
                stored: Any = (
                    json.dumps(value)
                    if isinstance(value, list | dict)
                    else int(value)
                    if isinstance(value, bool)
                    else value
                )
                updates[column] = stored
                if table == "content_blocks" and key == "content":
                    updates["content_type"] = _content_type(value)
            if table != "scim_users" and data.get("touch", True):
                updates["updated_at"] = iso_now()
            if updates:
                assignments = ", ".join(f"{c}=?" for c in updates)
                sb.store.x(
                    f"UPDATE {table} SET {assignments} WHERE id=?",  # noqa: S608
                    (*updates.values(), rid),
                )
            row = sb.store.q1(f"SELECT * FROM {table} WHERE id=?", (rid,))  # noqa: S608
            assert row is not None
            return JSONResponse(user_json(row) if table == "scim_users" else dict(row))

        return patch

    block_fields = {
        k: k
        for k in (
            "name",
            "description",
            "content",
            "state",
            "tags",
            "inclusion_data",
            "editor",
            "deleted",
            "updated_at",
        )
    }
    template_fields = {
        k: k
        for k in (
            "template_name",
            "subject",
            "body",
            "plaintext_body",
            "preheader",
            "tags",
            "should_inline_css",
            "description",
            "editor",
            "updated_at",
        )
    }
    pc_fields = {
        "preference_center_title": "title",
        "preference_center_page_html": "page_html",
        "confirmation_page_html": "confirmation_html",
        "state": "state",
        "name": "name",
        "redirect_page_html": "redirect_html",
        "options": "options",
    }
    scim_fields = {
        "department": "department",
        "permissions": "permissions",
        "lastSignInAt": "last_sign_in_at",
        "givenName": "given_name",
        "familyName": "family_name",
        "userName": "user_name",
        "extra": "extra",
    }

    async def delete_scim_user(request: Request) -> Response:
        sb.store.x("DELETE FROM scim_users WHERE id=?", (request.path_params["rid"],))
        return Response(status_code=204)

    async def put_translations(request: Request) -> Response:
        data = await body(request)
        kind, resource_id = data.get("kind"), data.get("id")
        locales = data.get("translations")
        if kind not in translations.KINDS or not isinstance(resource_id, str):
            raise BadRequest(f"kind must be one of {translations.KINDS} and id a string")
        if not isinstance(locales, list):
            raise BadRequest("translations must be a list of {locale, translation_map}")
        ws = data.get("workspace", "demo")
        translations.store_translations(sb.store, ws, kind, resource_id, locales)
        return JSONResponse({"stored": len(locales)})

    routes = [
        ("GET", "/health", health),
        ("PUT", "/translations", put_translations),
        ("GET", "/config", get_config),
        ("PATCH", "/config", patch_config),
        ("POST", "/reset", reset),
        ("POST", "/keys", create_key),
        ("POST", "/scim_tokens", create_scim_token),
        ("POST", "/tags", add_tags),
        ("GET", "/log", get_log),
        ("GET", "/stats", get_stats),
        ("GET", "/async", async_state),
        ("POST", "/async/flush", async_flush),
        ("PUT", "/catalogs/{catalog}/items/{item_id}", edit_item),
        ("PATCH", "/catalogs/{catalog}/items/{item_id}", edit_item),
        ("DELETE", "/catalogs/{catalog}/items/{item_id}", edit_item),
        ("GET", "/catalogs/{catalog}/selections", catalog_selections),
        ("PUT", "/catalogs/{catalog}/inventory", set_inventory),
        ("PATCH", "/content_blocks/{rid}", patcher("content_blocks", block_fields)),
        ("PATCH", "/email_templates/{rid}", patcher("email_templates", template_fields)),
        ("PATCH", "/preference_centers/{rid}", patcher("preference_centers", pc_fields)),
        ("PATCH", "/scim_users/{rid}", patcher("scim_users", scim_fields)),
        ("DELETE", "/scim_users/{rid}", delete_scim_user),
    ]
    return [Route(PREFIX + path, guard(fn), methods=[method]) for method, path, fn in routes]


def apply_config(sb: Sandbox, data: dict[str, Any]) -> None:
    config = sb.config
    reset_limits = False
    if "profile" in data:
        # First, so limits given in the same call override the new profile's defaults.
        try:
            config.set_profile(str(data["profile"]))
        except ValueError as err:
            raise BadRequest(str(err)) from None
        reset_limits = True
    if "clock_scale" in data:
        scale = float(data["clock_scale"])
        if scale <= 0:
            raise BadRequest("clock_scale must be positive")
        config.clock_scale, reset_limits = scale, True
    if "algorithm" in data:
        if data["algorithm"] not in ALGORITHMS:
            raise BadRequest(f"algorithm must be one of {ALGORITHMS}")
        config.algorithm, reset_limits = data["algorithm"], True
    if "rate_limits_enabled" in data:
        config.rate_limits_enabled, reset_limits = bool(data["rate_limits_enabled"]), True
    for group, spec in data.get("limits", {}).items():
        if group not in config.limits:
            raise BadRequest(f"unknown limit group {group}")
        current = config.limits[group]
        config.limits[group] = GroupLimit(
            int(spec.get("limit", current.limit)),
            float(spec.get("window_seconds", current.window_seconds)),
        )
        reset_limits = True
    if "async_delay_seconds" in data:
        config.async_delay_seconds = float(data["async_delay_seconds"])
    if "store_items" in data:
        config.store_items = bool(data["store_items"])
    if "injection" in data:
        names = {f.name for f in dc_fields(Injection)}
        unknown = set(data["injection"]) - names
        if unknown:
            raise BadRequest(f"unknown injection settings {sorted(unknown)}")
        config.injection = Injection(**{**config.injection.__dict__, **data["injection"]})
    if "consumers" in data:
        config.consumers = [ExternalConsumer(**c) for c in data["consumers"]]
        sb._consumer_credit.clear()
    if "storage_limit" in data:
        if data["storage_limit"] not in STORAGE_LIMITS:
            raise BadRequest(f"storage_limit must be one of {STORAGE_LIMITS}")
        config.storage_limit = data["storage_limit"]
    for name in ("max_catalogs_per_workspace", "max_preference_centers", "seed_products"):
        if name in data:
            setattr(config, name, int(data[name]))
    if reset_limits:
        # Bucket state is meaningless under a new clock, algorithm or limit: start afresh.
        sb.reset_limits()


def do_reset(
    sb: Sandbox,
    *,
    seed: bool,
    products: int | None,
    keep_log: bool,
    keep_config: bool,
    profile: str | None = None,
) -> None:
    if not keep_config:
        sb.config = sb.defaults.clone()
    if profile is not None and profile != sb.config.profile:
        try:
            sb.config.set_profile(profile)
        except ValueError as err:
            raise BadRequest(str(err)) from None
    sb.reset_limits()
    count = sb.config.seed_products if products is None else int(products)
    # The seed may differ by profile (e.g. dashboard users' permission strings).
    snapshot_key = (count, sb.config.profile)
    snapshot = sb.snapshots.get(snapshot_key) if seed and not keep_log else None
    if snapshot is not None:
        # Restoring a copy of a freshly seeded store is ~10x faster than seeding 10k items again.
        snapshot.backup(sb.store.db)
        return
    sb.store.wipe(keep_log=keep_log)
    sb.ensure_dev_credentials()
    if seed:
        seed_demo(sb.store, products=count, profile=sb.config.profile)
        sb.seed_workspaces(products=count, only_empty=False)
        if not keep_log:
            copy = sqlite3.connect(":memory:", check_same_thread=False)
            sb.store.db.backup(copy)
            sb.snapshots[snapshot_key] = copy
