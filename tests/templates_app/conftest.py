from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from pytest_django.fixtures import Settings

from console.braze import close_client
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def braze(braze_sandbox: SandboxHandle, settings: Settings) -> Iterator[SandboxHandle]:
    """The console's Braze client pointed at a freshly seeded sandbox."""
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    close_client()
    cache.clear()
    yield braze_sandbox
    close_client()
    cache.clear()


def writes(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    """Requests that would change content in Braze (creates and updates), from its log."""
    return [
        entry
        for entry in sandbox.admin.log()
        if entry["method"] in {"POST", "PUT"}
        and any(p in entry["path"] for p in ("/create", "/update", "/preference_center"))
    ]


def block_named(sandbox: SandboxHandle, name: str) -> dict[str, Any]:
    with sandbox.client() as http:
        blocks = http.get("/content_blocks/list").json()["content_blocks"]
        block_id = next(b["content_block_id"] for b in blocks if b["name"] == name)
        info: dict[str, Any] = http.get(
            "/content_blocks/info", params={"content_block_id": block_id}
        ).json()
    return info
