"""The ASGI application: request pipeline (auth, rate limits, injection, log) and routing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from braze_sandbox import (
    catalog_schema,
    catalogs,
    content,
    preferences,
    scim,
    translations,
    users,
)
from braze_sandbox.config import SandboxConfig
from braze_sandbox.ctx import Ctx, Handler
from braze_sandbox.errors import ApiError, scim_error
from braze_sandbox.permissions import ALL_PERMISSIONS
from braze_sandbox.ratelimit import Decision, RateLimiter
from braze_sandbox.seed import seed_demo as do_seed
from braze_sandbox.seed import seed_workspace
from braze_sandbox.store import Store

log = logging.getLogger("braze_sandbox")

DEV_API_KEY = "sandbox-dev-key-all-permissions"
DEV_SCIM_TOKEN = "sandbox-dev-scim-token"  # noqa: S105 - published dev token
# The Service Origin of every SCIM token created without one (the dev token, --scim-token):
# under the current profile each request must send it as X-Request-Origin, as Braze requires.
DEV_SCIM_ORIGIN = "console.localhost"
DEV_WORKSPACE = "demo"
# Each further workspace (--workspace NAME) has a published dev key with every permission.
DEV_WORKSPACE_KEY_PREFIX = "sandbox-dev-key-"
DEV_COMPANY = "demo-company"
EXTERNAL_KEY_NAME = "external-consumer"


@dataclass(frozen=True)
class Spec:
    method: str
    path: str
    handler: Handler
    group: str
    permission: str | None
    auth: str = "rest"  # "rest" (Bearer REST API key) or "scim" (Bearer SCIM token)


MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>Down for maintenance</title></head>"
    "<body><h1>We'll be back shortly</h1></body></html>"
)


def _malformed(kind: str, status: int) -> Response:
    """A 2xx answer the client cannot use: an HTML page from something in front of the API,
    or a JSON object with none of the endpoint's documented fields."""
    if kind == "shape":
        return JSONResponse({"result": "unexpected"}, status_code=status)
    return Response(MAINTENANCE_PAGE, status_code=status, media_type="text/html")


class Dropped(Exception):
    """Raised after the response has started, so the server closes the connection mid-reply."""


class DropConnection(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1024"), (b"content-type", b"application/json")],
            }
        )
        raise Dropped


class Sandbox:
    def __init__(
        self,
        data_dir: Path,
        config: SandboxConfig,
        *,
        admin_token: str | None = None,
        seed_demo: bool = False,
        api_keys: Sequence[str] = (),
        scim_tokens: Sequence[str] = (),
        workspaces: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        # Workspaces served besides "demo", each reached with its own key and data.
        self.workspaces = tuple(w for w in dict.fromkeys(workspaces) if w != DEV_WORKSPACE)
        self.extra_api_keys = tuple(api_keys)
        self.extra_scim_tokens = tuple(scim_tokens)
        self.store = Store(data_dir / "sandbox.sqlite3")
        self.defaults = config.clone()
        self.config = config
        # The admin API always needs a token; without one given, a fresh one per process.
        self.admin_token: str = admin_token or secrets.token_urlsafe(32)
        self.limiter = RateLimiter(config.algorithm)
        self.rng = random.Random()
        self._wake: asyncio.Event | None = None
        # The applier task and a caller on another thread (a test, or an embedding
        # process) share one SQLite connection: their transactions must not interleave.
        self._applying = threading.Lock()
        self._consumer_credit: dict[tuple[str, str], float] = {}
        self.snapshots: dict[tuple[int, str], sqlite3.Connection] = {}
        self.ensure_dev_credentials()
        if seed_demo and self.store.is_empty():
            do_seed(self.store, products=config.seed_products, profile=config.profile)
        if seed_demo:
            self.seed_workspaces(products=config.seed_products, only_empty=True)

    # --- credentials ---------------------------------------------------------------------

    def ensure_dev_credentials(self) -> None:
        """The published dev credentials and those given with --api-key/--scim-token."""
        keys = [(DEV_API_KEY, "dev-all-permissions")]
        keys += [(key, f"cli-key-{n}") for n, key in enumerate(self.extra_api_keys, 1)]
        for key, name in keys:
            if self.store.q1("SELECT 1 FROM api_keys WHERE key=?", (key,)) is None:
                self.store.add_key(key, name, DEV_WORKSPACE, ["*"])
        for workspace in self.workspaces:
            key = DEV_WORKSPACE_KEY_PREFIX + workspace
            if self.store.q1("SELECT 1 FROM api_keys WHERE key=?", (key,)) is None:
                self.store.add_key(key, f"dev-{workspace}", workspace, ["*"])
        tokens = [(DEV_SCIM_TOKEN, "dev-scim")]
        tokens += [(token, f"cli-scim-{n}") for n, token in enumerate(self.extra_scim_tokens, 1)]
        for token, name in tokens:
            if self.store.q1("SELECT 1 FROM scim_tokens WHERE token=?", (token,)) is None:
                self.store.add_scim_token(token, name, DEV_COMPANY, None)

    def seed_workspaces(self, *, products: int, only_empty: bool) -> None:
        """Demo data for each further workspace (those already holding content kept)."""
        for workspace in self.workspaces:
            if not only_empty or self.store.workspace_is_empty(workspace):
                seed_workspace(self.store, workspace, products=products)

    # --- limits --------------------------------------------------------------------------

    def acquire(self, bucket_owner: str, group: str, now: float) -> Decision | None:
        """Take one unit of quota; None when limits are switched off."""
        if not self.config.rate_limits_enabled:
            return None
        limit = self.config.limits[group]
        return self.limiter.acquire(
            bucket_owner, group, now, limit.limit, self.config.real_window(group)
        )

    def reset_limits(self) -> None:
        self.limiter.reset(self.config.algorithm)
        self._consumer_credit.clear()

    # --- request log ---------------------------------------------------------------------

    def record(
        self,
        *,
        t: float,
        key_name: str | None,
        workspace: str | None,
        group: str | None,
        method: str,
        path: str,
        status: int,
        item_ids: list[str],
        counted: bool,
        external: bool = False,
        injected: str | None = None,
    ) -> None:
        window = self.config.real_window(group) if group else None
        self.store.x(
            "INSERT INTO request_log (t, t_end, key_name, workspace, grp, method, path, status,"
            " item_ids, item_count, counted, external, injected, window_seconds, algorithm)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                t,
                time.time(),
                key_name,
                workspace,
                group,
                method,
                path,
                status,
                json.dumps(item_ids),
                len(item_ids),
                int(counted),
                int(external),
                injected,
                window,
                self.config.algorithm,
            ),
        )

    # --- background work -----------------------------------------------------------------

    def wake_applier(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def apply_due(self, now: float, *, everything: bool = False) -> int:
        # Acceptance order is kept: a later op never overtakes an earlier one still waiting.
        # Only that due prefix is read: this runs after every bulk request, and reading the
        # waiting ops too (50 items each) made every request slower as the queue grew.
        with self._applying:
            return self._apply_due(now, everything=everything)

    def _apply_due(self, now: float, *, everything: bool) -> int:
        waiting = None
        if not everything:
            row = self.store.q1("SELECT MIN(id) AS id FROM pending_ops WHERE due > ?", (now,))
            waiting = row["id"] if row else None
        if waiting is None:
            rows = self.store.q("SELECT * FROM pending_ops ORDER BY id")
        else:
            rows = self.store.q("SELECT * FROM pending_ops WHERE id < ? ORDER BY id", (waiting,))
        for row in rows:
            if row["op"] in catalog_schema.OPS:
                catalog_schema.apply_op(self.store, row, now)
            else:
                catalogs.apply_op(self.store, row, now)
        return len(rows)

    async def applier(self) -> None:
        assert self._wake is not None
        while True:
            # The head of the queue decides: the ops behind it wait for it, even when due.
            row = self.store.q1("SELECT due FROM pending_ops ORDER BY id LIMIT 1")
            due = row["due"] if row else None
            timeout = 1.0 if due is None else max(0.0, due - time.time())
            self._wake.clear()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            try:
                self.apply_due(time.time())
            except Exception:
                log.exception("async apply failed")

    async def external_consumers(self) -> None:
        tick = 0.02
        last = time.time()
        while True:
            await asyncio.sleep(tick)
            now = time.time()
            elapsed, last = now - last, now
            for consumer in self.config.consumers:
                if consumer.group not in self.config.limits:
                    continue
                key = (consumer.workspace, consumer.group)
                rate = (
                    consumer.fraction
                    * self.config.limits[consumer.group].limit
                    / self.config.real_window(consumer.group)
                )
                credit = self._consumer_credit.get(key, 0.0) + elapsed * rate
                while credit >= 1.0:
                    credit -= 1.0
                    decision = self.acquire(consumer.workspace, consumer.group, now)
                    allowed = decision is None or decision.allowed
                    self.record(
                        t=now,
                        key_name=EXTERNAL_KEY_NAME,
                        workspace=consumer.workspace,
                        group=consumer.group,
                        method="EXTERNAL",
                        path="(external consumer)",
                        status=200 if allowed else 429,
                        item_ids=[],
                        counted=decision is not None and decision.allowed,
                        external=True,
                    )
                self._consumer_credit[key] = credit

    # --- the pipeline ----------------------------------------------------------------------

    def endpoint(self, spec: Spec) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            return await self.handle(spec, request)

        return run

    def _authenticate(self, spec: Spec, request: Request) -> tuple[str, str, list[str]] | Response:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        secret = secret.strip() if scheme.lower() == "bearer" else ""
        if spec.auth == "scim":
            row = (
                self.store.q1("SELECT * FROM scim_tokens WHERE token=?", (secret,))
                if secret
                else None
            )
            if row is None:
                return JSONResponse(scim_error(401, "Invalid SCIM token").body, status_code=401)
            # Reference: "Automated user provisioning": Braze checks the Service Origin in
            # X-Request-Origin. The reference profile checked it only for tokens given one.
            origin = row["origin"] or (None if self.config.reference else DEV_SCIM_ORIGIN)
            sent = request.headers.get("x-request-origin", "").strip()
            if origin and sent != origin:
                detail = (
                    "Unauthorized: X-Request-Origin is missing; send the service origin"
                    if not sent
                    else "Unauthorized: X-Request-Origin does not match the service origin"
                )
                return JSONResponse(scim_error(401, detail).body, status_code=401)
            return row["name"], row["company"], ["*"]
        row = self.store.q1("SELECT * FROM api_keys WHERE key=?", (secret,)) if secret else None
        if row is None:
            return JSONResponse({"message": "Invalid API key"}, status_code=401)
        return row["name"], row["workspace"], json.loads(row["permissions"])

    async def handle(self, spec: Spec, request: Request) -> Response:
        started = time.time()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        auth = self._authenticate(spec, request)
        if isinstance(auth, Response):
            self.record(
                t=started,
                key_name=None,
                workspace=None,
                group=spec.group,
                method=spec.method,
                path=path,
                status=auth.status_code,
                item_ids=[],
                counted=False,
            )
            return auth
        key_name, workspace, permissions = auth
        decision = self.acquire(workspace, spec.group, started)
        headers = self._limit_headers(spec.group, started, decision)
        ctx = Ctx(
            request=request, sandbox=self, workspace=workspace, key_name=key_name, now=started
        )
        counted = decision is not None and decision.allowed
        injected: str | None = None
        response: Response
        if decision is not None and not decision.allowed:
            # Braze documents no Retry-After on REST 429s, only X-RateLimit-* ("API Rate
            # Limits", _docs/_api/api_limits.md): clients pace on those. The reference
            # collection's Braze sent one.
            if self.config.reference:
                headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
            headers["X-Sandbox-Retry-After-Ms"] = str(math.ceil(decision.retry_after * 1000))
            response = JSONResponse({"message": "Rate limit exceeded"}, status_code=429)
        elif spec.permission and "*" not in permissions and spec.permission not in permissions:
            response = self._forbidden(spec.permission)
        else:
            response, injected = await self._run_with_faults(spec, ctx)
        for name, value in headers.items():
            response.headers[name] = value
        self.record(
            t=started,
            key_name=key_name,
            workspace=workspace,
            group=spec.group,
            method=spec.method,
            path=path,
            status=response.status_code,
            item_ids=ctx.item_ids,
            counted=counted,
            injected=injected,
        )
        log.info("%s %s -> %s", spec.method, request.url.path, response.status_code)
        return response

    def _forbidden(self, permission: str) -> Response:
        """A key without the endpoint's permission. Current: "403 Access Denied" in the
        "Fatal errors" table of "API errors and responses" (_docs/_api/errors.md), which
        names no permission. Reference: the sandbox's older body naming it."""
        if not self.config.reference:
            return JSONResponse({"message": "Access Denied"}, status_code=403)
        return JSONResponse(
            {
                "message": f"Forbidden: this API key lacks the '{permission}' permission",
                "missing_permission": permission,
            },
            status_code=403,
        )

    async def _run_with_faults(self, spec: Spec, ctx: Ctx) -> tuple[Response, str | None]:
        inj = self.config.injection
        applies = not inj.groups or spec.group in inj.groups
        delay = inj.latency_ms + (self.rng.uniform(0, inj.jitter_ms) if inj.jitter_ms else 0.0)
        if applies and delay > 0:
            await asyncio.sleep(
                delay / 1000 / (self.config.clock_scale if inj.latency_scaled else 1)
            )
        if applies and inj.error_rate and self.rng.random() < inj.error_rate:
            # An injected 5xx never reaches the handler: nothing is written.
            return JSONResponse(
                {"message": "Internal Server Error"}, status_code=inj.error_status
            ), f"error-{inj.error_status}"
        timeout = applies and inj.timeout_rate > 0 and self.rng.random() < inj.timeout_rate
        if timeout and not inj.timeout_applies:
            if inj.timeout_mode == "drop":
                return DropConnection(), "drop-unapplied"
            await asyncio.sleep(inj.timeout_seconds)
            return JSONResponse({"message": "Gateway Timeout"}, status_code=504), "hold-unapplied"
        response = await self._call(spec, ctx)
        malformed = (
            applies
            and inj.malformed_rate > 0
            and 200 <= response.status_code < 300
            and self.rng.random() < inj.malformed_rate
        )
        if malformed:
            # The request was handled (a write landed); only its answer is unreadable.
            return _malformed(inj.malformed, response.status_code), f"malformed-{inj.malformed}"
        if timeout:
            if inj.timeout_mode == "drop":
                return DropConnection(), "drop-applied"
            await asyncio.sleep(inj.timeout_seconds)
            return response, "hold-applied"
        return response, None

    async def _call(self, spec: Spec, ctx: Ctx) -> Response:
        try:
            return await spec.handler(ctx)
        except ApiError as err:
            return JSONResponse(err.body, status_code=err.status)
        except Exception:
            log.exception("handler failed")
            return JSONResponse({"message": "Internal Server Error"}, status_code=500)

    def _limit_headers(self, group: str, now: float, decision: Decision | None) -> dict[str, str]:
        limit = self.config.limits[group]
        if decision is None:
            reset = now + self.config.real_window(group)
            values = (limit.limit, limit.limit, reset)
        else:
            values = (decision.limit, decision.remaining, decision.reset_at)
        return {
            "X-RateLimit-Limit": str(values[0]),
            "X-RateLimit-Remaining": str(max(0, values[1])),
            "X-RateLimit-Reset": str(math.ceil(values[2])),
            "X-Sandbox-Reset-Ms": str(math.ceil(values[2] * 1000)),
        }


def specs() -> list[Spec]:
    c, cb, p, s, cs = catalogs, content, preferences, scim, catalog_schema
    sync, items, bulk = "catalogs_sync", "catalog_items_sync", "catalog_items_async"
    schema = "catalog_fields_selections"
    item = "/catalogs/{catalog_name}/items/{item_id}"
    fields, selections = "/catalogs/{catalog_name}/fields", "/catalogs/{catalog_name}/selections"
    pc_read, pc_write = "preference_center_read", "preference_center_write"
    return [
        Spec("GET", "/catalogs", c.list_catalogs, sync, "catalogs.get"),
        Spec("POST", "/catalogs", c.create_catalog, sync, "catalogs.create"),
        Spec("DELETE", "/catalogs/{catalog_name}", c.delete_catalog, sync, "catalogs.delete"),
        Spec("GET", "/catalogs/{catalog_name}/items", c.list_items, items, "catalogs.get_items"),
        Spec("POST", "/catalogs/{catalog_name}/items", c.bulk_create, bulk, "catalogs.add_items"),
        Spec("PATCH", "/catalogs/{catalog_name}/items", c.bulk_edit, bulk, "catalogs.update_items"),
        Spec(
            "PUT", "/catalogs/{catalog_name}/items", c.bulk_replace, bulk, "catalogs.replace_items"
        ),
        Spec(
            "DELETE", "/catalogs/{catalog_name}/items", c.bulk_delete, bulk, "catalogs.delete_items"
        ),
        Spec("GET", item, c.get_item, items, "catalogs.get_item"),
        Spec("POST", item, c.create_item, items, "catalogs.create_item"),
        Spec("PATCH", item, c.edit_item, items, "catalogs.update_item"),
        Spec("PUT", item, c.replace_item, items, "catalogs.replace_item"),
        Spec("DELETE", item, c.delete_item, items, "catalogs.delete_item"),
        Spec("POST", fields, cs.create_fields, schema, "catalogs.create_fields"),
        Spec("DELETE", fields + "/{field_name}", cs.delete_field, schema, "catalogs.delete_fields"),
        Spec("POST", selections, cs.create_selection, schema, "catalogs.create_selection"),
        Spec(
            "DELETE",
            selections + "/{selection_name}",
            cs.delete_selection,
            schema,
            "catalogs.delete_selection",
        ),
        Spec("GET", "/templates/email/list", cb.list_templates, "default", "templates.email.list"),
        Spec("GET", "/templates/email/info", cb.template_info, "default", "templates.email.info"),
        Spec(
            "POST",
            "/templates/email/create",
            cb.create_template,
            "default",
            "templates.email.create",
        ),
        Spec(
            "POST",
            "/templates/email/update",
            cb.update_template,
            "default",
            "templates.email.update",
        ),
        *(
            Spec(
                "GET",
                path,
                translations.template_translations,
                "translations",
                "templates.translations.get",
            )
            for path in ("/templates/email/translations/", "/templates/email/translations")
        ),
        Spec(
            "GET",
            "/content_blocks/translations",
            translations.block_translations,
            "translations",
            "content_blocks.translations.get",
        ),
        Spec("GET", "/content_blocks/list", cb.list_blocks, "default", "content_blocks.list"),
        Spec("GET", "/content_blocks/info", cb.block_info, "default", "content_blocks.info"),
        Spec("POST", "/content_blocks/create", cb.create_block, "default", "content_blocks.create"),
        Spec("POST", "/content_blocks/update", cb.update_block, "default", "content_blocks.update"),
        Spec(
            "GET", "/preference_center/v1/list", p.list_centers, pc_read, "preference_center.list"
        ),
        Spec(
            "GET",
            "/preference_center/v1/{pc_id}/url/{user_id}",
            p.user_url,
            pc_read,
            "preference_center.user.get",
        ),
        # The seed spells this path with an underscore; Braze's docs use a slash. Serve both.
        Spec(
            "GET",
            "/preference_center_v1/{pc_id}/url/{user_id}",
            p.user_url,
            pc_read,
            "preference_center.user.get",
        ),
        Spec(
            "GET", "/preference_center/v1/{pc_id}", p.view_center, pc_read, "preference_center.get"
        ),
        Spec(
            "POST", "/preference_center/v1", p.create_center, pc_write, "preference_center.update"
        ),
        Spec(
            "PUT",
            "/preference_center/v1/{pc_id}",
            p.update_center,
            pc_write,
            "preference_center.update",
        ),
        Spec("POST", "/users/export/ids", users.export_ids, "users_export_ids", "users.export.ids"),
        Spec("GET", "/scim/v2/Users", s.search_users, "scim", None, "scim"),
        Spec("POST", "/scim/v2/Users", s.create_user, "scim", None, "scim"),
        Spec("GET", "/scim/v2/Users/{user_id}", s.get_user, "scim", None, "scim"),
        Spec("PUT", "/scim/v2/Users/{user_id}", s.update_user, "scim", None, "scim"),
        Spec("DELETE", "/scim/v2/Users/{user_id}", s.delete_user, "scim", None, "scim"),
    ]


__all__ = ["ALL_PERMISSIONS", "Sandbox"]
