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


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) of every request the console's Braze client sends."""
    from console.braze.client import BrazeClient

    calls: list[tuple[str, str, Any]] = []
    send = BrazeClient._send

    def spy(self: BrazeClient, slot: Any, method: str, path: str, **kw: Any) -> Any:
        calls.append((method, path, kw.get("json")))
        return send(self, slot, method, path, **kw)

    monkeypatch.setattr(BrazeClient, "_send", spy)
    return calls


def bodies(calls: list[tuple[str, str, Any]], path: str) -> list[dict[str, Any]]:
    """The JSON bodies of the writes sent to paths starting with `path`."""
    return [
        body
        for method, sent_path, body in calls
        if method in {"POST", "PUT"} and sent_path.startswith(path)
    ]
