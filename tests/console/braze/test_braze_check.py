from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from console.braze import close_client
from console.braze.client import OPERATIONS
from console.roles import Role
from tests.fixtures.sandbox import DEV_SCIM_ORIGIN

DOC = Path(__file__).resolve().parents[3] / "docs" / "braze-permissions.md"


@pytest.fixture
def braze_settings(braze_sandbox: Any) -> Iterator[Callable[..., Any]]:
    """Point the console at the sandbox (with a given key) for one test."""
    overrides: list[Any] = []

    def use(*, api_key: str | None = None, scim_token: str = "") -> Any:
        override = override_settings(
            BRAZE_REST_ENDPOINT=braze_sandbox.url,
            BRAZE_API_KEY=api_key or braze_sandbox.api_key,
            BRAZE_SCIM_TOKEN=scim_token,
            BRAZE_SCIM_ORIGIN=DEV_SCIM_ORIGIN,
            # A workspace of its own: what the limiter learns stays with this test.
            BRAZE_RATE_LIMITS={**settings.BRAZE_RATE_LIMITS, "workspace": uuid.uuid4().hex},
        )
        override.enable()
        overrides.append(override)
        cache.clear()
        return braze_sandbox

    yield use
    for override in overrides:
        override.disable()
    close_client()
    cache.clear()


def run_check() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("braze_check", stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def row(output: str, permission: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"| {permission} |"))


def test_it_reports_every_read_permission_of_a_full_key_as_granted(
    braze_settings: Any, braze_sandbox: Any
) -> None:
    braze_settings(scim_token="sandbox-dev-scim-token")
    code, output = run_check()
    assert code == 0, output
    for permission in (
        "catalogs.get",
        "catalogs.get_items",
        "catalogs.get_item",
        "templates.email.list",
        "templates.email.info",
        "content_blocks.list",
        "content_blocks.info",
        "preference_center.list",
        "preference_center.get",
        "users.export.ids",
        "templates.translations.get",
        "content_blocks.translations.get",
        "SCIM token",
    ):
        assert row(output, permission).endswith("| granted |")
    assert "not probed" in row(output, "catalogs.delete")
    # What Braze announced replaces the configured default once an answer has said it.
    catalogs = 5 if braze_sandbox.reference else 50
    assert (
        f"catalogs_sync: {catalogs} per 60 s (configured 50, learned from Braze: {catalogs};"
        in output
    )
    assert (
        "catalog_items_async: 16,000 per 60 s (configured 16,000, learned from Braze: not yet"
        in output
    )
    assert "background work: 35)" in output  # 0.7 of 50 synchronous item requests


def test_it_names_missing_permissions_and_fails(braze_settings: Any, braze_sandbox: Any) -> None:
    key = braze_sandbox.admin.create_key(["catalogs.get", "content_blocks.list"])
    braze_settings(api_key=key)
    code, output = run_check()
    assert code == 1
    assert row(output, "catalogs.get").endswith("| granted |")
    assert row(output, "templates.email.list").endswith("| MISSING |")
    assert row(output, "preference_center.list").endswith("| MISSING |")


def test_a_rejected_key_is_reported_as_a_problem(braze_settings: Any) -> None:
    braze_settings(api_key="not-a-key")
    code, output = run_check()
    assert code == 1
    assert "Braze rejected the API key (401)" in output


@pytest.mark.django_db
def test_healthz_shows_reachability_and_permissions_from_a_cached_probe(
    braze_settings: Any, braze_sandbox: Any, client_for: Callable[[Role | None], Client]
) -> None:
    key = braze_sandbox.admin.create_key(["catalogs.get", "catalogs.get_items"])
    sandbox = braze_settings(api_key=key)
    # The detail is for signed-in staff; anonymous callers get liveness only.
    staff = client_for(Role.VIEWER)
    first = staff.get(reverse("healthz")).json()["checks"]["braze"]
    assert first["ok"] is True
    assert "sandbox or proxy" in first["detail"]
    missing = first["detail"].split("missing: ")[1].split(", ")
    assert "catalogs.get_item" in missing
    assert "templates.email.list" in missing
    assert "catalogs.get_items" not in missing
    assert "catalogs.get" not in missing
    assert key not in first["detail"]
    before = len(sandbox.admin.log())
    again = staff.get(reverse("healthz")).json()["checks"]["braze"]
    assert again == first
    assert len(sandbox.admin.log()) == before  # served from the cache: no quota spent


@pytest.mark.django_db
def test_the_home_page_shows_braze_status_and_the_limits_in_effect(
    braze_settings: Any, client_for: Callable[[Role | None], Client]
) -> None:
    braze_settings()
    page = client_for(Role.VIEWER).get(reverse("home")).content.decode()
    assert "Braze connection" in page
    assert "Reachable" in page
    assert "catalog_items_async" in page
    assert "sandbox-dev-key-all-permissions" not in page


@pytest.mark.django_db
def test_the_home_page_shows_the_learned_limit_beside_the_configured_one(
    braze_settings: Any, client_for: Callable[[Role | None], Client]
) -> None:
    sandbox = braze_settings()
    sandbox.admin.set_limit("catalogs_sync", 400)  # raised for this workspace on request
    from console.braze import get_client

    get_client().catalog_list()
    page = client_for(Role.VIEWER).get(reverse("home")).content.decode()
    row = page.split('data-group="catalogs_sync">')[1].split("</tr>")[0]
    # Configured, learned, in effect, window, background work's share (0.7), others.
    assert row.count("<td>") == 7
    assert [cell.split("</td>")[0] for cell in row.split("<td>")[1:]] == [
        "catalogs_sync",
        "50",
        "400",
        "400",
        "60 s",
        "280",
        "0",
    ]
    async_row = page.split('data-group="catalog_items_async">')[1].split("</tr>")[0]
    assert "not yet seen" in async_row


def test_the_permissions_doc_lists_every_permission_the_client_uses() -> None:
    text = DOC.read_text()
    for op in OPERATIONS.values():
        if op.permission:
            assert f"`{op.permission}`" in text
            assert f"`{op.name}`" in text
