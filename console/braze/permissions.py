"""Which REST API key permissions the console needs, and which the configured key has.

Braze has no "who am I" endpoint, so the probe calls one cheap read endpoint per resource
and reads 403, or a 401 while other endpoints answer, as "missing"; only a 401 from every
endpoint means the key itself is rejected. Write permissions cannot be probed without
writing; they are reported as not probed. The result is cached (Redis) so health checks do
not spend quota.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache

from console.braze.client import OPERATIONS, BrazeClient, RetryPolicy
from console.braze.endpoints import describe_endpoint
from console.braze.errors import (
    BrazeError,
    BrazeForbidden,
    BrazeRateLimited,
    BrazeUnauthorized,
    BrazeUnavailable,
)

log = logging.getLogger(__name__)

CACHE_KEY = "braze:permission-report:v1"

# What each permission lets the console do (for docs/braze-permissions.md and pages).
PURPOSE: dict[str, str] = {
    "catalogs.get": "List catalogs",
    "catalogs.create": "Create a catalog",
    "catalogs.delete": "Delete a catalog",
    "catalogs.get_items": "Browse a catalog's items (mirror refresh)",
    "catalogs.get_item": "Read one item",
    "catalogs.create_item": "Create one item",
    "catalogs.replace_item": "Replace one item (PUT)",
    "catalogs.update_item": "Edit one item (PATCH)",
    "catalogs.delete_item": "Delete one item",
    "catalogs.add_items": "Bulk create items (CSV jobs)",
    "catalogs.replace_items": "Bulk replace items (CSV jobs)",
    "catalogs.update_items": "Bulk edit items (CSV jobs)",
    "catalogs.delete_items": "Bulk delete items (CSV jobs)",
    "catalogs.create_fields": "Add fields to a catalog",
    "catalogs.delete_fields": "Delete a catalog field",
    "catalogs.create_selection": "Create a catalog selection",
    "catalogs.delete_selection": "Delete a catalog selection",
    "templates.email.list": "List email templates",
    "templates.email.info": "Read an email template",
    "templates.email.create": "Create an email template",
    "templates.email.update": "Update an email template",
    "content_blocks.list": "List Content Blocks",
    "content_blocks.info": "Read a Content Block and where it is used",
    "content_blocks.create": "Create a Content Block",
    "content_blocks.update": "Update a Content Block",
    "preference_center.list": "List preference centers",
    "preference_center.get": "Read a preference center",
    "preference_center.update": "Create or update a preference center",
    "preference_center.user.get": "Generate a user's preference center URL",
    "users.export.ids": "Preview content as an existing Braze user (one user per look-up)",
    "templates.translations.get": "Preview an email template in a person's language",
    "content_blocks.translations.get": "Preview a Content Block in a person's language",
}


def required_permissions() -> list[str]:
    """Every REST key permission some client operation needs, in operation order."""
    seen: dict[str, None] = {}
    for op in OPERATIONS.values():
        if op.permission:
            seen.setdefault(op.permission)
    return list(seen)


@dataclass
class PermissionReport:
    endpoint: str
    checked_at: float
    reachable: bool
    granted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # permission -> why it is not known (not probed, rate limited, error)
    unknown: dict[str, str] = field(default_factory=dict)
    problem: str = ""

    def summary(self) -> str:
        if self.problem:
            return self.problem
        parts = [
            f"key has {len(self.granted)} of {len(self.granted) + len(self.missing)} "
            "probed permissions"
        ]
        if self.missing:
            parts.append("missing: " + ", ".join(self.missing))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _probes(client: BrazeClient) -> list[tuple[str, Callable[[], object]]]:
    """One read per permission; reads that need an id take it from the list before."""
    found: dict[str, str] = {}

    def first(key: str) -> str:
        if key not in found:
            raise LookupError(f"nothing to read ({key} list is empty or was not readable)")
        return found[key]

    def catalogs() -> None:
        for catalog in client.catalog_list()[:1]:
            found["catalog"] = catalog.name

    def items() -> None:
        for item in client.catalog_item_page(catalog_name=first("catalog")).items[:1]:
            found["item"] = str(item["id"])

    def templates() -> None:
        for template in client.email_template_list(limit=1):
            found["template"] = template.email_template_id

    def blocks() -> None:
        for block in client.content_block_list(limit=1):
            found["block"] = block.content_block_id

    def centers() -> None:
        for center in client.preference_center_list()[:1]:
            found["center"] = center.preference_center_api_id

    return [
        ("catalogs.get", catalogs),
        ("catalogs.get_items", items),
        (
            "catalogs.get_item",
            lambda: client.catalog_item_get(catalog_name=first("catalog"), item_id=first("item")),
        ),
        ("templates.email.list", templates),
        (
            "templates.email.info",
            lambda: client.email_template_info(email_template_id=first("template")),
        ),
        ("content_blocks.list", blocks),
        ("content_blocks.info", lambda: client.content_block_info(content_block_id=first("block"))),
        ("preference_center.list", centers),
        (
            "preference_center.get",
            lambda: client.preference_center_view(preference_center_id=first("center")),
        ),
        # A template or block without translations answers "not multi-language": granted.
        (
            "templates.translations.get",
            lambda: client.email_template_translations_get(email_template_id=first("template")),
        ),
        (
            "content_blocks.translations.get",
            lambda: client.content_block_translations_get(content_block_id=first("block")),
        ),
        # An id no user has: the answer names it invalid and exports no one's data.
        (
            "users.export.ids",
            lambda: client.users_export_ids(
                external_ids=["braze-console-permission-probe"], fields_to_export=["external_id"]
            ),
        ),
    ]


def probe_permissions(*, client: BrazeClient) -> PermissionReport:
    # Background lane and no waiting: a probe must never take an interactive edit's slot.
    probe_client = client.with_options(
        lane="background", max_wait=0.0, retry=RetryPolicy(attempts=1, rate_limited_attempts=1)
    )
    report = PermissionReport(
        endpoint=describe_endpoint(base_url=client.base_url),
        checked_at=time.time(),
        reachable=True,
    )
    refused: dict[str, str] = {}  # permission -> Braze's words, for each 401
    for permission, call in _probes(probe_client):
        try:
            call()
        except BrazeForbidden:
            report.missing.append(permission)
        except BrazeUnauthorized as exc:
            # Braze documents 403 for a key without the permission ("API errors and
            # responses", _docs/_api/errors.md) and 401 for a wrong key; a 401 here while
            # other endpoints answer still means this key cannot use this one.
            report.missing.append(permission)
            refused[permission] = exc.message
        except BrazeUnavailable as exc:
            report.reachable = False
            report.problem = exc.message
            return report
        except BrazeRateLimited:
            report.unknown[permission] = "not probed: rate limit reached"
        except (BrazeError, LookupError) as exc:
            report.unknown[permission] = f"not probed: {exc}"
        else:
            report.granted.append(permission)
    if refused and not report.granted and set(report.missing) == set(refused):
        # Every endpoint that answered said 401: the key itself is wrong, not a permission.
        report.problem = "Braze rejected the API key (401)"
        reason = next(iter(refused.values()))
        report.unknown = {p: reason for p in required_permissions()}
        report.granted, report.missing = [], []
        return report
    probed = set(report.granted) | set(report.missing) | set(report.unknown)
    for permission in required_permissions():
        if permission not in probed:
            report.unknown[permission] = "not probed: only a write would tell"
    if client.has_scim_token:
        try:
            probe_client.scim_user_search(email="permission-probe@invalid.example")
            report.granted.append("SCIM token")
        except BrazeRateLimited:
            report.unknown["SCIM token"] = "not probed: rate limit reached"
        except BrazeError as exc:
            report.missing.append("SCIM token")
            report.unknown["SCIM token"] = exc.message
    return report


def cached_permission_report(*, client: BrazeClient, refresh: bool = False) -> PermissionReport:
    """The last probe's result, probing again at most every BRAZE_PERMISSION_CACHE_SECONDS."""
    key = f"{CACHE_KEY}:{client.base_url}"
    if not refresh:
        try:
            data = cache.get(key)
        except Exception:
            data = None
        if data is not None:
            return PermissionReport(**data)
    report = probe_permissions(client=client)
    try:
        cache.set(key, report.to_json(), settings.BRAZE_PERMISSION_CACHE_SECONDS)
    except Exception:
        log.warning("could not cache the Braze permission report")
    return report
