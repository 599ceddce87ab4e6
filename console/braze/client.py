"""The one way the console talks to Braze: one method per Braze endpoint.

Each method names its :data:`Operation` (limit group, REST key permission, whether it is
safe to repeat) and the shared ``_request`` does the rest: take a slot from the global
limiter, send, turn the answer into a typed result or a typed error, and retry only what
may be retried. Reference: shared/braze-api/{catalogs,templates,preference-center,scim}.md.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, Self
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from console.braze.errors import (
    BrazeBadResponse,
    BrazeConfigurationError,
    BrazeError,
    BrazeErrorDetail,
    BrazeForbidden,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeServerError,
    BrazeTimeout,
    BrazeUnauthorized,
    BrazeUnavailable,
    BrazeValidationError,
    is_not_found_id,
)
from console.braze.limiter import Lane, RateLimiter, Refusal, Slot
from console.metrics import record_braze_call

log = logging.getLogger(__name__)

BULK_MAX_ITEMS = 50
# "POST: Create catalog fields" and the "Catalog selection object" page.
CATALOG_FIELDS_PER_REQUEST = 50
SELECTION_MAX_FILTERS = 4
SCIM_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
# "Up to 50 external_ids or user_aliases can be included in a single request."
USERS_EXPORT_MAX_IDS = 50

type CatalogItem = dict[str, Any]


# --- operations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    group: str
    permission: str | None  # REST API key permission; None for SCIM (its own token)
    # Safe to repeat after a timeout or 5xx: reads, PUT/PATCH/DELETE and "update" POSTs
    # leave the same end state when sent twice; creates do not (braze-facts §2, design §4).
    idempotent: bool
    auth: Literal["rest", "scim"] = "rest"

    @property
    def reads(self) -> bool:
        return self.name.endswith(
            ("_list", "_get", "_info", "_view", "_search", "_url", "_export_ids")
        )


_OPS = (
    Operation("catalog_list", "catalogs_sync", "catalogs.get", True),
    Operation("catalog_create", "catalogs_sync", "catalogs.create", False),
    Operation("catalog_delete", "catalogs_sync", "catalogs.delete", True),
    Operation("catalog_item_list", "catalog_items_sync", "catalogs.get_items", True),
    Operation("catalog_item_get", "catalog_items_sync", "catalogs.get_item", True),
    Operation("catalog_item_create", "catalog_items_sync", "catalogs.create_item", False),
    Operation("catalog_item_replace", "catalog_items_sync", "catalogs.replace_item", True),
    Operation("catalog_item_edit", "catalog_items_sync", "catalogs.update_item", True),
    Operation("catalog_item_delete", "catalog_items_sync", "catalogs.delete_item", True),
    Operation("catalog_items_bulk_create", "catalog_items_async", "catalogs.add_items", False),
    Operation("catalog_items_bulk_replace", "catalog_items_async", "catalogs.replace_items", True),
    Operation("catalog_items_bulk_edit", "catalog_items_async", "catalogs.update_items", True),
    Operation("catalog_items_bulk_delete", "catalog_items_async", "catalogs.delete_items", True),
    # Asynchronous, one limit group for the four ("Rate limits": catalog fields and selections).
    Operation(
        "catalog_fields_create", "catalog_fields_selections", "catalogs.create_fields", False
    ),
    Operation("catalog_field_delete", "catalog_fields_selections", "catalogs.delete_fields", True),
    Operation(
        "catalog_selection_create", "catalog_fields_selections", "catalogs.create_selection", False
    ),
    Operation(
        "catalog_selection_delete", "catalog_fields_selections", "catalogs.delete_selection", True
    ),
    Operation("email_template_list", "default", "templates.email.list", True),
    Operation("email_template_info", "default", "templates.email.info", True),
    Operation("email_template_create", "default", "templates.email.create", False),
    Operation("email_template_update", "default", "templates.email.update", True),
    Operation("content_block_list", "default", "content_blocks.list", True),
    Operation("content_block_info", "default", "content_blocks.info", True),
    Operation("content_block_create", "default", "content_blocks.create", False),
    Operation("content_block_update", "default", "content_blocks.update", True),
    Operation("preference_center_list", "preference_center_read", "preference_center.list", True),
    Operation("preference_center_view", "preference_center_read", "preference_center.get", True),
    Operation(
        "preference_center_create", "preference_center_write", "preference_center.update", False
    ),
    Operation(
        "preference_center_update", "preference_center_write", "preference_center.update", True
    ),
    Operation(
        "preference_center_user_url", "preference_center_read", "preference_center.user.get", True
    ),
    # Early access: Braze's translation endpoints, one limit group of their own.
    Operation(
        "email_template_translations_get", "translations", "templates.translations.get", True
    ),
    Operation(
        "content_block_translations_get", "translations", "content_blocks.translations.get", True
    ),
    # A POST that only reads: its own limit group ("Export user profile by identifier").
    Operation("users_export_ids", "users_export_ids", "users.export.ids", True),
    Operation("scim_user_search", "scim", None, True, "scim"),
    Operation("scim_user_get", "scim", None, True, "scim"),
    Operation("scim_user_create", "scim", None, False, "scim"),
    Operation("scim_user_update", "scim", None, True, "scim"),
    Operation("scim_user_remove", "scim", None, True, "scim"),
)
OPERATIONS: dict[str, Operation] = {op.name: op for op in _OPS}


# --- results ---------------------------------------------------------------------------


def _from_json[T](cls: type[T], data: Mapping[str, Any], **overrides: Any) -> T:
    """Build a result dataclass from Braze's JSON, ignoring fields Braze adds later."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in data.items() if k in names}
    values.update(overrides)
    if "raw" in names:
        values["raw"] = dict(data)
    return cls(**values)


@dataclass(frozen=True)
class CatalogField:
    name: str
    type: str


@dataclass(frozen=True)
class Catalog:
    name: str
    description: str = ""
    fields: tuple[CatalogField, ...] = ()
    num_items: int = 0
    updated_at: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Catalog:
        columns = tuple(CatalogField(f["name"], f["type"]) for f in data.get("fields", []))
        return _from_json(cls, data, fields=columns)


@dataclass(frozen=True)
class SelectionFilter:
    field: str
    operator: str  # "equals", "greater than", "includes value", … (by the field's type)
    value: str | int | float | bool


@dataclass(frozen=True)
class CatalogSelection:
    """A selection as Braze's "Catalog selection object" page defines it."""

    name: str
    external_id: str
    description: str = ""
    filters: tuple[SelectionFilter, ...] = ()
    results_limit: int | None = None
    sort_field: str | None = None
    sort_order: Literal["asc", "desc"] | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _without_none(
            name=self.name,
            description=self.description,
            external_id=self.external_id,
            source=self.source,
            filters=[
                {"field": f.field, "operator": f.operator, "value": f.value} for f in self.filters
            ],
            results_limit=self.results_limit,
            sort_field=self.sort_field,
            sort_order=self.sort_order,
        )


@dataclass(frozen=True)
class CatalogItemsPage:
    items: list[CatalogItem]  # each with a string "id"
    next_cursor: str | None
    next_path: str | None  # path and query of the Link header's "next" URL
    # 1-based places on the page of entries left out because they had no usable "id".
    skipped: tuple[int, ...] = ()


@dataclass(frozen=True)
class EmailTemplateSummary:
    email_template_id: str
    template_name: str
    created_at: str = ""
    updated_at: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EmailTemplate:
    email_template_id: str
    template_name: str
    description: str | None = None
    subject: str = ""
    preheader: str | None = None
    body: str | None = None
    plaintext_body: str | None = None
    should_inline_css: bool | None = None
    tags: list[str] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class ContentBlockSummary:
    content_block_id: str
    name: str
    content_type: str = ""
    liquid_tag: str = ""
    inclusion_count: int = 0
    created_at: str = ""
    last_edited: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ContentBlock:
    content_block_id: str
    name: str
    content: str = ""
    description: str | None = None
    content_type: str = ""
    tags: list[str] = field(default_factory=list)
    created_at: str = ""
    last_edited: str = ""
    inclusion_count: int = 0
    # Only with include_inclusion_data: the message variations that use the block.
    inclusion_data: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ContentBlockWriteResult:
    content_block_id: str
    liquid_tag: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class PreferenceCenterSummary:
    preference_center_api_id: str
    name: str
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class PreferenceCenter:
    preference_center_api_id: str
    name: str
    preference_center_title: str = ""
    preference_center_page_html: str = ""
    confirmation_page_html: str = ""
    redirect_page_html: str | None = None
    preference_center_options: dict[str, Any] = field(default_factory=dict)
    state: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class PreferenceCenterWriteResult:
    preference_center_api_id: str
    liquid_tag: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class Translation:
    """One locale's translations of a message: `translation_map` maps each translation
    tag's id to its text ("View all translations …" pages)."""

    locale_uuid: str
    name: str
    language: str
    country: str
    translation_map: Mapping[str, str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Translation:
        locale = data["locale"]
        texts = data["translation_map"]
        if not isinstance(locale, dict) or not isinstance(texts, dict):
            raise TypeError("'locale' and 'translation_map' must be objects")
        return cls(
            locale_uuid=str(locale.get("uuid") or ""),
            name=str(locale.get("name") or locale.get("locale_key") or ""),
            language=str(locale.get("language") or ""),
            country=str(locale.get("country") or ""),
            translation_map={str(k): str(v) for k, v in texts.items()},
        )


def _translations(data: Mapping[str, Any]) -> tuple[Translation, ...]:
    return tuple(Translation.from_json(item) for item in _list_of(data, "translations"))


# The translation pages' answer for a message without translations.
NOT_MULTI_LANGUAGE = "does not support multi-language"


@dataclass(frozen=True)
class UserExport:
    """One answer of /users/export/ids: each found user's export object, as Braze sent it,
    and the identifiers Braze did not know."""

    users: tuple[Mapping[str, Any], ...]
    invalid_user_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserExport:
        users = _list_of(data, "users")
        if not all(isinstance(user, dict) for user in users):
            raise TypeError("'users' holds something other than objects")
        invalid = data.get("invalid_user_ids") or []
        if not isinstance(invalid, list):
            raise TypeError("'invalid_user_ids' is not a list")
        return cls(users=tuple(users), invalid_user_ids=tuple(str(i) for i in invalid))


@dataclass(frozen=True)
class ScimUser:
    id: str
    user_name: str
    given_name: str
    family_name: str
    department: str
    permissions: dict[str, Any]
    last_sign_in_at: str | None = None
    # The account exactly as Braze answered: an update writes back what it does not change.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScimUser:
        name = data.get("name") or {}
        return cls(
            id=data["id"],
            user_name=data.get("userName", ""),
            given_name=name.get("givenName", ""),
            family_name=name.get("familyName", ""),
            department=data.get("department", ""),
            permissions=data.get("permissions") or {},
            last_sign_in_at=data.get("lastSignInAt"),
            raw=dict(data),
        )


# --- secrets and retries -----------------------------------------------------------------


class _BearerAuth(httpx.Auth):
    """Adds the Authorization header per request, so it is never in client.headers or a repr."""

    __slots__ = ("__token",)

    def __init__(self, token: str) -> None:
        self.__token = token

    def __repr__(self) -> str:
        return "<BearerAuth [redacted]>"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.authorise(request)
        yield request

    def authorise(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = f"Bearer {self.__token}"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # for timeouts and 5xx on operations safe to repeat
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    rate_limited_attempts: int = 4  # 429s: the request was refused, so resending is safe

    def backoff(self, attempt: int) -> float:
        # "Full jitter" (Brooker, AWS Architecture Blog 2015).
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))


_LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?(\w+)"?')
_RESULT_SHAPE_ERRORS = (LookupError, TypeError, ValueError, AttributeError)


def parse_link_header(value: str | None) -> dict[str, str]:
    """``rel -> URL`` from a Link header (comma-separated). Braze's docs show relative URLs;
    Braze's own MCP server code expects absolute ones, so both are read."""
    return {rel: url for url, rel in _LINK_RE.findall(value or "")}


def _list_params(
    modified_after: datetime | str | None,
    modified_before: datetime | str | None,
    limit: int | None,
    offset: int | None,
) -> dict[str, Any]:
    """The paging and date filters Braze's template and content block lists share."""
    return {
        "modified_after": _isoformat(modified_after),
        "modified_before": _isoformat(modified_before),
        "limit": limit,
        "offset": offset,
    }


def _isoformat(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _seg(value: str) -> str:
    return quote(value, safe="")


# --- the client --------------------------------------------------------------------------


class BrazeClient:
    def __init__(
        self,
        *,
        http: httpx.Client,
        limiter: RateLimiter,
        api_key: str,
        scim_token: str = "",
        scim_origin: str = "",
        lane: Lane = "interactive",
        max_wait: float = 2.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        background_share: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = http
        # The transport ``http`` sends through, when the caller made it: bulk item writes,
        # up to 16,000 requests a minute, go to it directly, without the client's per-request
        # URL merging, cookie jar (Braze's API sets no cookies) and hooks.
        self._transport = transport
        self._bulk_urls: dict[str, httpx.URL] = {}  # per catalog name, built once
        self.limiter = limiter
        self._rest_auth = _BearerAuth(api_key) if api_key else None
        self._scim_auth = _BearerAuth(scim_token) if scim_token else None
        self._scim_origin = scim_origin
        self.lane: Lane = lane
        self.max_wait = max_wait
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        # Background work's share of each group; None: the configured one (limiter/limits.py).
        self.background_share = background_share

    def __repr__(self) -> str:
        return f"BrazeClient(base_url={str(self._http.base_url)!r}, lane={self.lane!r})"

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    @property
    def has_scim_token(self) -> bool:
        return self._scim_auth is not None

    def with_options(
        self,
        *,
        lane: Lane | None = None,
        max_wait: float | None = None,
        retry: RetryPolicy | None = None,
        background_share: float | None = None,
    ) -> Self:
        """The same connection pool and limiter, another lane, wait budget, retry policy or
        background share (1.0: a bulk job an approver let use the whole limit)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        if lane is not None:
            clone.lane = lane
        if max_wait is not None:
            clone.max_wait = max_wait
        if retry is not None:
            clone.retry = retry
        if background_share is not None:
            clone.background_share = background_share
        return clone

    # --- plumbing --------------------------------------------------------------------------

    def _request(
        self,
        op: Operation,
        path: str | httpx.URL,
        *,
        method: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        direct: bool = False,
    ) -> httpx.Response:
        auth = self._scim_auth if op.auth == "scim" else self._rest_auth
        if auth is None:
            what = "BRAZE_SCIM_TOKEN" if op.auth == "scim" else "BRAZE_API_KEY"
            raise BrazeConfigurationError(f"{what} is not set.", operation=op.name)
        headers = {"X-Request-Origin": self._scim_origin} if op.auth == "scim" else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        deadline = time.monotonic() + self.max_wait
        attempt = limited = 0
        while True:
            attempt += 1
            try:
                response, refusal = self._exchange(
                    op,
                    method,
                    path,
                    budget=max(0.0, deadline - time.monotonic()),
                    # httpx drops a URL's own query string when given params, even {}.
                    params=query or None,
                    json=json,
                    headers=headers,
                    auth=auth,
                    direct=direct,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached Braze, so even a create may be tried again.
                if attempt < self.retry.attempts:
                    self._sleep(self.retry.backoff(attempt))
                    continue
                raise BrazeUnavailable(
                    f"Braze could not be reached ({type(exc).__name__}).", operation=op.name
                ) from None
            except httpx.DecodingError:
                # An answer came, but its body does not decode (a broken gzip stream).
                raise BrazeBadResponse(
                    "Braze answered with a body that could not be decoded.",
                    operation=op.name,
                    maybe_applied=not op.reads,
                ) from None
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                # The request may have reached Braze and been applied.
                if op.idempotent and attempt < self.retry.attempts:
                    log.warning("braze %s: %s, retrying", op.name, type(exc).__name__)
                    self._sleep(self.retry.backoff(attempt))
                    continue
                raise BrazeTimeout(
                    f"No complete answer from Braze ({type(exc).__name__}).",
                    operation=op.name,
                    maybe_applied=not op.reads,
                ) from None
            if refusal is not None:
                limited += 1
                log.warning(
                    "braze %s: 429, group %s blocked %.2fs", op.name, op.group, refusal.wait
                )
                too_long = time.monotonic() + refusal.wait > deadline
                if too_long or limited >= self.retry.rate_limited_attempts:
                    raise BrazeRateLimited(
                        f"Braze's limit for {op.group!r} is reached.",
                        group=op.group,
                        retry_at=refusal.retry_at,
                        from_braze=True,
                        operation=op.name,
                        status=429,
                    )
                attempt -= 1  # a refused request is not a failed attempt
                continue
            if response.status_code >= 500:
                if op.idempotent and attempt < self.retry.attempts:
                    log.warning("braze %s: HTTP %s, retrying", op.name, response.status_code)
                    self._sleep(self.retry.backoff(attempt))
                    continue
                error = _error_from_response(op, response)
                raise BrazeServerError(
                    error.message,
                    operation=op.name,
                    status=response.status_code,
                    errors=error.errors,
                    maybe_applied=response.status_code == 504 and not op.reads,
                )
            if response.status_code >= 400:
                raise _error_from_response(op, response)
            return response

    def _exchange(
        self, op: Operation, method: str, path: str | httpx.URL, *, budget: float, **kwargs: Any
    ) -> tuple[httpx.Response, Refusal | None]:
        """One request in one limiter slot: the slot owns the limiter's side (slot.py)."""
        try:
            with self.limiter.slot(
                op.group, self.lane, max_wait=budget, share=self.background_share
            ) as slot:
                response = self._send(slot, method, path, **kwargs)
                return response, slot.answer(response)
        except BrazeError as exc:
            # Only the limiter raises Braze errors here (its wait is too long, or no Redis).
            exc.operation = op.name
            raise

    def _send(
        self, slot: Slot, method: str, path: str | httpx.URL, *, direct: bool, **kwargs: Any
    ) -> httpx.Response:
        started, status = time.monotonic(), None
        try:
            transport = self._transport if direct else None
            if transport is not None and isinstance(path, httpx.URL):
                response = self._send_direct(transport, method, path, **kwargs)
            else:
                response = self._http.request(method, path, **kwargs)
            status = response.status_code
        finally:
            elapsed = time.monotonic() - started
            record_braze_call(
                group=slot.group,
                lane=self.lane,
                status=status,
                seconds=elapsed,
                waited=slot.waited,
            )
        log.debug(
            "braze %s %s -> %s remaining=%s",
            method,
            response.request.url.path,
            response.status_code,
            response.headers.get("x-ratelimit-remaining"),
        )
        return response

    def _send_direct(
        self,
        transport: httpx.BaseTransport,
        method: str,
        url: httpx.URL,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str],
        auth: _BearerAuth,
    ) -> httpx.Response:
        """The request ``self._http.request`` would send (its headers and timeouts, the same
        body), through its transport: the same exceptions, and the answer read in full."""
        request = httpx.Request(
            method,
            url,
            params=params,
            json=json,
            headers={**self._http.headers, **headers},
            extensions={"timeout": self._http.timeout.as_dict()},
        )
        auth.authorise(request)
        response = transport.handle_request(request)
        response.request = request
        try:
            response.read()
        except BaseException:
            response.close()
            raise
        return response

    def _read[T](
        self,
        op: Operation,
        path: str | httpx.URL,
        build: Callable[[dict[str, Any]], T],
        *,
        method: str = "GET",
        **kwargs: Any,
    ) -> T:
        """Send, then build the result from Braze's JSON object. Any other answer, or one
        without what the result needs, is a BrazeBadResponse, never a bare KeyError."""
        response = self._request(op, path, method=method, **kwargs)
        return _build(op, response, _decode(op, response), build)

    def _json(
        self, op: Operation, path: str | httpx.URL, *, method: str = "GET", **kwargs: Any
    ) -> dict[str, Any]:
        return self._read(op, path, _itself, method=method, **kwargs)

    # --- catalogs (synchronous, 5/min shared) -----------------------------------------------

    def catalog_list(self) -> list[Catalog]:
        # Strict: an answer without "catalogs" must not read as "every catalog was deleted".
        return self._read(
            OPERATIONS["catalog_list"],
            "/catalogs",
            lambda data: [Catalog.from_json(c) for c in _list_of(data, "catalogs")],
        )

    def catalog_create(
        self, *, name: str, description: str, fields: Sequence[CatalogField | Mapping[str, str]]
    ) -> Catalog:
        columns = [
            {"name": f.name, "type": f.type} if isinstance(f, CatalogField) else dict(f)
            for f in fields
        ]
        body = {"catalogs": [{"name": name, "description": description, "fields": columns}]}

        def build(data: dict[str, Any]) -> Catalog:
            created = data.get("catalogs") or [{"name": name, "description": description}]
            return Catalog.from_json(created[0])

        return self._read(
            OPERATIONS["catalog_create"], "/catalogs", build, method="POST", json=body
        )

    def catalog_delete(self, *, name: str) -> None:
        self._json(OPERATIONS["catalog_delete"], f"/catalogs/{_seg(name)}", method="DELETE")

    # --- catalog items, synchronous (50/min shared) -------------------------------------

    def catalog_item_page(
        self, *, catalog_name: str, cursor: str | None = None
    ) -> CatalogItemsPage:
        return self._item_page(f"/catalogs/{_seg(catalog_name)}/items", {"cursor": cursor})

    def _item_page(self, path: str, params: Mapping[str, Any] | None) -> CatalogItemsPage:
        op = OPERATIONS["catalog_item_list"]
        response = self._request(op, path, method="GET", params=params)
        next_url = parse_link_header(response.headers.get("link")).get("next")
        next_path = next_cursor = None
        if next_url:
            # Keep only path and query, even of an absolute URL: the key must never be sent
            # to another host. The query goes back exactly as Braze wrote it.
            parts = urlsplit(next_url)
            next_path = parts.path + (f"?{parts.query}" if parts.query else "")
            next_cursor = next(iter(parse_qs(parts.query).get("cursor", [])), None)

        def build(data: dict[str, Any]) -> CatalogItemsPage:
            items, skipped = _page_items(data["items"])
            return CatalogItemsPage(items, next_cursor, next_path, skipped)

        return _build(op, response, _decode(op, response), build)

    def catalog_item_list(self, *, catalog_name: str) -> Iterator[CatalogItem]:
        """Every item, following the Link header's ``next`` page by page (50 per page).
        Entries without an id are left out (``catalog_item_page`` reports them)."""
        page = self.catalog_item_page(catalog_name=catalog_name)
        yield from page.items
        while page.next_path:
            page = self._item_page(page.next_path, None)
            yield from page.items

    def _item_path(self, catalog_name: str, item_id: str) -> str:
        return f"/catalogs/{_seg(catalog_name)}/items/{_seg(item_id)}"

    def catalog_item_get(self, *, catalog_name: str, item_id: str) -> CatalogItem:
        def build(data: dict[str, Any]) -> CatalogItem:
            items = data.get("items") or []
            if not items:
                raise BrazeNotFound("Could not find item", operation="catalog_item_get", status=200)
            return dict(items[0])

        return self._read(
            OPERATIONS["catalog_item_get"], self._item_path(catalog_name, item_id), build
        )

    def _item_write(
        self, op: str, method: str, catalog_name: str, item_id: str, values: Any
    ) -> None:
        body = {"items": [{k: v for k, v in dict(values).items() if k != "id"}]}
        self._json(OPERATIONS[op], self._item_path(catalog_name, item_id), method=method, json=body)

    def catalog_item_create(
        self, *, catalog_name: str, item_id: str, values: Mapping[str, Any]
    ) -> None:
        self._item_write("catalog_item_create", "POST", catalog_name, item_id, values)

    def catalog_item_replace(
        self, *, catalog_name: str, item_id: str, values: Mapping[str, Any]
    ) -> None:
        """PUT: replaces every field (and creates the item when it is missing)."""
        self._item_write("catalog_item_replace", "PUT", catalog_name, item_id, values)

    def catalog_item_edit(
        self, *, catalog_name: str, item_id: str, values: Mapping[str, Any]
    ) -> None:
        """PATCH: changes only the given fields."""
        self._item_write("catalog_item_edit", "PATCH", catalog_name, item_id, values)

    def catalog_item_delete(self, *, catalog_name: str, item_id: str) -> None:
        path = self._item_path(catalog_name, item_id)
        self._json(OPERATIONS["catalog_item_delete"], path, method="DELETE")

    # --- catalog items, asynchronous bulk (100/min shared, ≤50 items) -------------------

    def _bulk(self, op_name: str, method: str, catalog_name: str, items: list[Any]) -> None:
        op = OPERATIONS[op_name]
        if not items:
            raise BrazeValidationError(
                "No items given.",
                operation=op.name,
                errors=(BrazeErrorDetail("item-array-invalid", "No items given."),),
            )
        if len(items) > BULK_MAX_ITEMS:
            # Checked here so an oversized batch never spends quota on a certain 400.
            raise BrazeValidationError(
                f"At most {BULK_MAX_ITEMS} items per request; got {len(items)}.",
                operation=op.name,
                errors=(
                    BrazeErrorDetail(
                        "request-includes-too-many-items",
                        f"The item limit per request is {BULK_MAX_ITEMS}.",
                    ),
                ),
            )
        url = self._bulk_urls.get(catalog_name)
        if url is None:
            path = f"/catalogs/{_seg(catalog_name)}/items"
            url = self._bulk_urls[catalog_name] = self._http.build_request(method, path).url
        self._json(op, url, method=method, json={"items": items}, direct=True)

    def catalog_items_bulk_create(
        self, *, catalog_name: str, items: Iterable[Mapping[str, Any]]
    ) -> None:
        """Accepted (202) means queued, not applied: Braze applies it later."""
        self._bulk("catalog_items_bulk_create", "POST", catalog_name, [dict(i) for i in items])

    def catalog_items_bulk_replace(
        self, *, catalog_name: str, items: Iterable[Mapping[str, Any]]
    ) -> None:
        self._bulk("catalog_items_bulk_replace", "PUT", catalog_name, [dict(i) for i in items])

    def catalog_items_bulk_edit(
        self, *, catalog_name: str, items: Iterable[Mapping[str, Any]]
    ) -> None:
        self._bulk("catalog_items_bulk_edit", "PATCH", catalog_name, [dict(i) for i in items])

    def catalog_items_bulk_delete(self, *, catalog_name: str, item_ids: Iterable[str]) -> None:
        items = [{"id": item_id} for item_id in item_ids]
        self._bulk("catalog_items_bulk_delete", "DELETE", catalog_name, items)

    # --- catalog fields and selections (asynchronous, 50/min shared) ---------------------
    # A 202 means queued: Braze applies the change later, so callers read the catalog back.

    def catalog_fields_create(
        self, *, catalog_name: str, fields: Sequence[CatalogField | Mapping[str, str]]
    ) -> None:
        op = OPERATIONS["catalog_fields_create"]
        columns = [
            {"name": f.name, "type": f.type} if isinstance(f, CatalogField) else dict(f)
            for f in fields
        ]
        if not columns or len(columns) > CATALOG_FIELDS_PER_REQUEST:
            # Checked here so an oversized request never spends quota on a certain 400.
            error_id = "invalid-fields" if not columns else "request-includes-too-many-fields"
            message = (
                "No fields given."
                if not columns
                else f"Each request can support up to {CATALOG_FIELDS_PER_REQUEST} new fields"
            )
            raise BrazeValidationError(
                message, operation=op.name, errors=(BrazeErrorDetail(error_id, message),)
            )
        path = f"/catalogs/{_seg(catalog_name)}/fields"
        self._json(op, path, method="POST", json={"fields": columns})

    def catalog_field_delete(self, *, catalog_name: str, field_name: str) -> None:
        path = f"/catalogs/{_seg(catalog_name)}/fields/{_seg(field_name)}"
        self._json(OPERATIONS["catalog_field_delete"], path, method="DELETE")

    def catalog_selection_create(self, *, catalog_name: str, selection: CatalogSelection) -> None:
        op = OPERATIONS["catalog_selection_create"]
        if len(selection.filters) > SELECTION_MAX_FILTERS:
            message = "The selection has too many filters"
            raise BrazeValidationError(
                message,
                operation=op.name,
                errors=(BrazeErrorDetail("too-many-filters", message),),
            )
        path = f"/catalogs/{_seg(catalog_name)}/selections"
        self._json(op, path, method="POST", json={"selection": selection.to_json()})

    def catalog_selection_delete(self, *, catalog_name: str, selection_name: str) -> None:
        path = f"/catalogs/{_seg(catalog_name)}/selections/{_seg(selection_name)}"
        self._json(OPERATIONS["catalog_selection_delete"], path, method="DELETE")

    # --- email templates (default limit) ---------------------------------------------------

    def email_template_list(
        self,
        *,
        modified_after: datetime | str | None = None,
        modified_before: datetime | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[EmailTemplateSummary]:
        params = _list_params(modified_after, modified_before, limit, offset)
        return self._read(
            OPERATIONS["email_template_list"],
            "/templates/email/list",
            lambda data: [_from_json(EmailTemplateSummary, t) for t in _list_of(data, "templates")],
            params=params,
        )

    def email_template_info(self, *, email_template_id: str) -> EmailTemplate:
        return self._read(
            OPERATIONS["email_template_info"],
            "/templates/email/info",
            lambda data: _from_json(EmailTemplate, data),
            params={"email_template_id": email_template_id},
        )

    def email_template_create(
        self,
        *,
        template_name: str,
        subject: str,
        body: str,
        plaintext_body: str | None = None,
        preheader: str | None = None,
        tags: list[str] | None = None,
        should_inline_css: bool | None = None,
    ) -> str:
        """Returns the new ``email_template_id``."""
        payload = _without_none(
            template_name=template_name,
            subject=subject,
            body=body,
            plaintext_body=plaintext_body,
            preheader=preheader,
            tags=tags,
            should_inline_css=should_inline_css,
        )
        return self._read(
            OPERATIONS["email_template_create"],
            "/templates/email/create",
            lambda data: _required_text(data, "email_template_id"),
            method="POST",
            json=payload,
        )

    def email_template_update(
        self,
        *,
        email_template_id: str,
        template_name: str | None = None,
        subject: str | None = None,
        body: str | None = None,
        plaintext_body: str | None = None,
        preheader: str | None = None,
        tags: list[str] | None = None,
        should_inline_css: bool | None = None,
    ) -> None:
        """Only the fields given (not None) are sent."""
        payload = _without_none(
            email_template_id=email_template_id,
            template_name=template_name,
            subject=subject,
            body=body,
            plaintext_body=plaintext_body,
            preheader=preheader,
            tags=tags,
            should_inline_css=should_inline_css,
        )
        self._json(
            OPERATIONS["email_template_update"],
            "/templates/email/update",
            method="POST",
            json=payload,
        )

    # --- content blocks (default limit) ----------------------------------------------------

    def content_block_list(
        self,
        *,
        modified_after: datetime | str | None = None,
        modified_before: datetime | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ContentBlockSummary]:
        """Braze rejects ``offset=0`` ("Offset must be greater than 0"): omit it instead."""
        params = _list_params(modified_after, modified_before, limit, offset)
        return self._read(
            OPERATIONS["content_block_list"],
            "/content_blocks/list",
            lambda data: [
                _from_json(ContentBlockSummary, b) for b in _list_of(data, "content_blocks")
            ],
            params=params,
        )

    def content_block_info(
        self, *, content_block_id: str, include_inclusion_data: bool = False
    ) -> ContentBlock:
        params = {
            "content_block_id": content_block_id,
            "include_inclusion_data": "true" if include_inclusion_data else "false",
        }
        return self._read(
            OPERATIONS["content_block_info"],
            "/content_blocks/info",
            lambda data: _from_json(ContentBlock, data),
            params=params,
        )

    def content_block_create(
        self,
        *,
        name: str,
        content: str,
        description: str | None = None,
        state: Literal["active", "draft"] | None = None,
        tags: list[str] | None = None,
    ) -> ContentBlockWriteResult:
        payload = _without_none(
            name=name, content=content, description=description, state=state, tags=tags
        )
        return self._read(
            OPERATIONS["content_block_create"],
            "/content_blocks/create",
            lambda data: _from_json(ContentBlockWriteResult, data),
            method="POST",
            json=payload,
        )

    def content_block_update(
        self,
        *,
        content_block_id: str,
        name: str | None = None,
        content: str | None = None,
        description: str | None = None,
        state: Literal["active", "draft"] | None = None,
        tags: list[str] | None = None,
    ) -> ContentBlockWriteResult:
        """Only the fields given (not None) are sent. Braze makes the block active when no
        state is sent."""
        payload = _without_none(
            content_block_id=content_block_id,
            name=name,
            content=content,
            description=description,
            state=state,
            tags=tags,
        )
        return self._read(
            OPERATIONS["content_block_update"],
            "/content_blocks/update",
            lambda data: _from_json(
                ContentBlockWriteResult, {"content_block_id": content_block_id, **data}
            ),
            method="POST",
            json=payload,
        )

    # --- preference centers (reads 1,000/min, writes 10/min) -----------------------------

    def preference_center_list(self) -> list[PreferenceCenterSummary]:
        return self._read(
            OPERATIONS["preference_center_list"],
            "/preference_center/v1/list",
            lambda data: [
                _from_json(PreferenceCenterSummary, p) for p in _list_of(data, "preference_centers")
            ],
        )

    def preference_center_view(self, *, preference_center_id: str) -> PreferenceCenter:
        path = f"/preference_center/v1/{_seg(preference_center_id)}"
        return self._read(
            OPERATIONS["preference_center_view"],
            path,
            lambda data: _from_json(PreferenceCenter, data),
        )

    def preference_center_create(
        self,
        *,
        name: str,
        preference_center_page_html: str,
        confirmation_page_html: str,
        preference_center_title: str | None = None,
        state: Literal["active", "draft"] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> PreferenceCenterWriteResult:
        payload = _without_none(
            name=name,
            preference_center_page_html=preference_center_page_html,
            confirmation_page_html=confirmation_page_html,
            preference_center_title=preference_center_title,
            state=state,
            options=dict(options) if options is not None else None,
        )
        return self._read(
            OPERATIONS["preference_center_create"],
            "/preference_center/v1",
            lambda data: _from_json(PreferenceCenterWriteResult, data),
            method="POST",
            json=payload,
        )

    def preference_center_update(
        self,
        *,
        preference_center_id: str,
        preference_center_page_html: str,
        confirmation_page_html: str,
        preference_center_title: str | None = None,
        state: Literal["active", "draft"] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> PreferenceCenterWriteResult:
        payload = _without_none(
            preference_center_page_html=preference_center_page_html,
            confirmation_page_html=confirmation_page_html,
            preference_center_title=preference_center_title,
            state=state,
            options=dict(options) if options is not None else None,
        )
        path = f"/preference_center/v1/{_seg(preference_center_id)}"
        return self._read(
            OPERATIONS["preference_center_update"],
            path,
            lambda data: _from_json(
                PreferenceCenterWriteResult,
                {"preference_center_api_id": preference_center_id, **data},
            ),
            method="PUT",
            json=payload,
        )

    def preference_center_user_url(self, *, preference_center_id: str, user_id: str) -> str:
        path = f"/preference_center/v1/{_seg(preference_center_id)}/url/{_seg(user_id)}"
        return self._read(
            OPERATIONS["preference_center_user_url"],
            path,
            lambda data: _required_text(data, "preference_center_url"),
        )

    # --- translations (early access) -----------------------------------------------------
    # Reference: "View all translations and locales for an email template" and "View all
    # translations for a Content Block" (_docs/_api/endpoints/translations/).

    def _translations_get(
        self, name: str, path: str, params: dict[str, str]
    ) -> tuple[Translation, ...]:
        try:
            return self._read(OPERATIONS[name], path, _translations, params=params)
        except BrazeValidationError as exc:
            # A message with no locales is "not multi-language": it has no translations.
            if NOT_MULTI_LANGUAGE in exc.message:
                return ()
            raise

    def email_template_translations_get(self, *, email_template_id: str) -> tuple[Translation, ...]:
        return self._translations_get(
            "email_template_translations_get",
            "/templates/email/translations/",
            {"template_id": email_template_id},
        )

    def content_block_translations_get(self, *, content_block_id: str) -> tuple[Translation, ...]:
        return self._translations_get(
            "content_block_translations_get",
            "/content_blocks/translations",
            {"content_block_id": content_block_id},
        )

    # --- users (their own limit group) --------------------------------------------------
    # Reference: "Export user profile by identifier"
    # (_docs/_api/endpoints/export/user_data/post_users_identifier.md).

    def users_export_ids(
        self, *, external_ids: Sequence[str], fields_to_export: Sequence[str]
    ) -> UserExport:
        """The export objects of up to 50 users by external id, with only the fields asked.

        `fields_to_export` is required of workspaces onboarded since 22 August 2024, and
        naming the fields (without campaigns_received or canvases_received) is what lets a
        workspace use the endpoint's faster limit. The answer is personal data: the caller
        keeps it in memory for the one request and never logs it.
        """
        if not external_ids or len(external_ids) > USERS_EXPORT_MAX_IDS:
            raise ValueError(f"between 1 and {USERS_EXPORT_MAX_IDS} external ids")
        return self._read(
            OPERATIONS["users_export_ids"],
            "/users/export/ids",
            UserExport.from_json,
            method="POST",
            json={"external_ids": list(external_ids), "fields_to_export": list(fields_to_export)},
        )

    # --- dashboard users via SCIM (5,000/day, SCIM token + X-Request-Origin) ---------------
    # Reference: "Automated user provisioning" (the Service Origin, sent as X-Request-Origin)
    # and the SCIM endpoint pages under _docs/_api/endpoints/scim/.

    @property
    def scim_missing_setting(self) -> str | None:
        """The setting SCIM calls still need (the token first), or None when both are set."""
        if self._scim_auth is None:
            return "BRAZE_SCIM_TOKEN"
        if not self._scim_origin.strip():
            return "BRAZE_SCIM_ORIGIN"
        return None

    def _scim[T](
        self, name: str, path: str, build: Callable[[dict[str, Any]], T], **kwargs: Any
    ) -> T:
        # Braze answers every SCIM call without the Service Origin with 401: refuse before
        # sending, and say which setting is missing rather than "token rejected".
        if self._scim_auth is not None and self.scim_missing_setting:
            raise BrazeConfigurationError(
                "BRAZE_SCIM_ORIGIN is not set: Braze refuses SCIM calls without the Service "
                "Origin (X-Request-Origin) entered under Settings > Admin Settings > SCIM "
                "Provisioning.",
                operation=name,
            )
        return self._read(OPERATIONS[name], path, build, **kwargs)

    def scim_user_search(self, *, email: str) -> ScimUser | None:
        escaped = email.replace("\\", "\\\\").replace('"', '\\"')

        def build(data: dict[str, Any]) -> ScimUser | None:
            resources = data.get("Resources") or []
            return ScimUser.from_json(resources[0]) if resources else None

        return self._scim(
            "scim_user_search",
            "/scim/v2/Users",
            build,
            params={"filter": f'userName eq "{escaped}"'},
        )

    def scim_user_get(self, *, user_id: str) -> ScimUser:
        return self._scim("scim_user_get", f"/scim/v2/Users/{_seg(user_id)}", ScimUser.from_json)

    def scim_user_create(
        self,
        *,
        email: str,
        given_name: str,
        family_name: str,
        department: str,
        permissions: Mapping[str, Any],
    ) -> ScimUser:
        payload = {
            "schemas": [SCIM_USER_SCHEMA],
            "userName": email,
            "name": {"givenName": given_name, "familyName": family_name},
            "department": department,
            "permissions": dict(permissions),
        }
        return self._scim(
            "scim_user_create", "/scim/v2/Users", ScimUser.from_json, method="POST", json=payload
        )

    def scim_user_update(
        self,
        *,
        user_id: str,
        given_name: str,
        family_name: str,
        department: str,
        permissions: Mapping[str, Any],
        keep: Mapping[str, Any] | None = None,
    ) -> ScimUser:
        """Braze's PUT replaces the whole account: `keep` is the account as last read, and
        every field of it this call does not set goes back unchanged (a PUT of the fields
        alone would drop the rest). The email (userName) cannot be changed through the API;
        `id`, `userName` and `lastSignInAt` are Braze's and are not sent."""
        kept = {k: v for k, v in (keep or {}).items() if k not in _SCIM_NOT_SENT}
        name = keep.get("name") if keep else None
        payload = {
            **kept,
            "schemas": [SCIM_USER_SCHEMA],
            "name": {
                **(name if isinstance(name, Mapping) else {}),
                "givenName": given_name,
                "familyName": family_name,
            },
            "department": department,
            "permissions": dict(permissions),
        }
        return self._scim(
            "scim_user_update",
            f"/scim/v2/Users/{_seg(user_id)}",
            ScimUser.from_json,
            method="PUT",
            json=payload,
        )

    def scim_user_remove(self, *, user_id: str) -> None:
        path = f"/scim/v2/Users/{_seg(user_id)}"
        self._scim("scim_user_remove", path, _itself, method="DELETE")


# Read-only in an answer (SCIM's `meta` included): never part of a PUT body.
_SCIM_NOT_SENT = frozenset({"id", "userName", "lastSignInAt", "meta"})


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _itself(data: dict[str, Any]) -> dict[str, Any]:
    return data


def _list_of(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise TypeError(f"{key!r} is not a list")
    return value


def _required_text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} is not a non-empty string")
    return value


def _page_items(raw: Any) -> tuple[list[CatalogItem], tuple[int, ...]]:
    """The page's items that have an id; the places of those that have none."""
    if not isinstance(raw, list):
        raise TypeError("'items' is not a list")
    items: list[CatalogItem] = []
    skipped: list[int] = []
    for place, item in enumerate(raw, 1):
        item_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if isinstance(item_id, str) and item_id:
            items.append({**item, "id": item_id})
        else:
            skipped.append(place)
    return items, tuple(skipped)


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip() or "no content type"


def _decode(op: Operation, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx (or redirect) answer, or the typed error it amounts to."""
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        # A maintenance or proxy page, typically HTML, sent with a success status.
        raise _bad_response(
            op, response, f"with a {_content_type(response)} page instead of JSON"
        ) from None
    if not isinstance(body, dict):
        raise _bad_response(op, response, "with JSON that is not an object")
    message = body.get("message")
    if isinstance(message, str) and is_not_found_id(message):
        # A "no such thing" sent with a success status (as braze-sync's client expects).
        raise _error_from_body(op, response.status_code, body)
    return body


def _build[T](
    op: Operation,
    response: httpx.Response,
    body: dict[str, Any],
    build: Callable[[dict[str, Any]], T],
) -> T:
    try:
        return build(body)
    except _RESULT_SHAPE_ERRORS as exc:
        # Only names of fields and types: no values, which may be personal data.
        log.warning("braze %s: unexpected answer (%s: %s)", op.name, type(exc).__name__, exc)
        message = body.get("message")
        errors: tuple[BrazeErrorDetail, ...] = ()
        if isinstance(message, str) and message.strip().lower() not in {"success", "queued"}:
            # A refusal sent with a success status: Braze's own words explain it best.
            errors = _error_from_body(op, response.status_code, body).errors
        raise _bad_response(
            op, response, "without the fields the console expects", errors=errors
        ) from None


def _bad_response(
    op: Operation,
    response: httpx.Response,
    what: str,
    *,
    errors: tuple[BrazeErrorDetail, ...] = (),
) -> BrazeBadResponse:
    return BrazeBadResponse(
        f"Braze answered HTTP {response.status_code} {what}.",
        operation=op.name,
        status=response.status_code,
        errors=errors,
        # The request was accepted: a write may well have been applied.
        maybe_applied=not op.reads,
    )


def _error_from_response(op: Operation, response: httpx.Response) -> BrazeError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return _error_from_body(op, response.status_code, body)


def _error_from_body(op: Operation, status: int, body: Any) -> BrazeError:
    """The typed error for a refusal, keeping every message and id Braze sent.

    Reference: "API errors and responses" (_docs/_api/errors.md): the generic form is
    ``{"message": <fatal error message>, "errors": [<minor error message>, ...]}``; catalog
    endpoints send objects with ids in ``errors`` under a generic "Invalid Request";
    templates, Content Blocks and preference centers a bare ``message``; SCIM a ``detail``.
    """
    details: list[BrazeErrorDetail] = []
    top = ""
    if isinstance(body, dict):
        top = str(body.get("message") or "").strip()
        errors = body.get("errors")
        listed = errors if isinstance(errors, list) else []
        for item in listed:
            if isinstance(item, dict):
                message = str(item.get("message") or "")
                details.append(
                    BrazeErrorDetail(
                        id=str(item.get("id") or message or "unknown"),
                        message=message,
                        parameters=tuple(item.get("parameters") or ()),
                        parameter_values=tuple(item.get("parameter_values") or ()),
                    )
                )
            elif isinstance(item, str | int | float) and str(item).strip():
                details.append(BrazeErrorDetail(str(item).strip(), str(item).strip()))
        if not listed and body.get("detail"):  # SCIM's error schema
            details.append(BrazeErrorDetail(str(body["detail"]), str(body["detail"])))
        if top and not any(isinstance(item, dict) for item in listed):
            # The fatal message is Braze's name for the error; the strings after it detail it.
            details.insert(0, BrazeErrorDetail(top, top))
    texts = [d.message or d.id for d in details]
    if top and top not in texts:
        texts.insert(0, top)
    message = "; ".join(texts) or f"HTTP {status}"
    common: dict[str, Any] = {"operation": op.name, "status": status, "errors": tuple(details)}
    if status == 401:
        return BrazeUnauthorized(message, **common)
    if status == 403:
        permission = body.get("missing_permission") if isinstance(body, dict) else None
        return BrazeForbidden(message, permission=permission or op.permission, **common)
    if status >= 500:
        return BrazeServerError(message, **common)
    # Braze answers "no such thing" with 404, or with 400 (or even 200) and an id or message
    # of its own: the id decides, whatever the status, so a reworded message still reads.
    if status == 404 or any(is_not_found_id(d.id) for d in details):
        return BrazeNotFound(message, **common)
    if status in {400, 409, 422}:
        return BrazeValidationError(message, **common)
    return BrazeError(message, **common)
