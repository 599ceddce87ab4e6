"""Accepted bulk requests are applied later, in acceptance order, without slowing the API."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox

pytestmark = pytest.mark.usefixtures("unlimited")

ITEM = "/catalogs/products/items"


def _stock(client: TestClient) -> Any:
    return client.get(f"{ITEM}/sku-000001").json()["items"][0]["stock"]


def _edit(client: TestClient, stock: int) -> None:
    body = {"items": [{"id": "sku-000001", "stock": stock}]}
    assert client.patch(ITEM, json=body).status_code == 202


def test_a_later_request_due_sooner_never_overtakes_an_earlier_one(
    client: TestClient, sandbox: Sandbox
) -> None:
    before = _stock(client)
    sandbox.config.async_delay_seconds = 3600.0
    _edit(client, 1)
    sandbox.config.async_delay_seconds = 0.0
    _edit(client, 2)

    assert sandbox.apply_due(time.time()) == 0
    assert _stock(client) == before
    assert sandbox.apply_due(time.time() + 3601) == 2
    assert _stock(client) == 2


def test_applying_reads_only_the_due_requests_not_the_queue_waiting_behind(
    client: TestClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It runs after every bulk request: reading the whole queue slowed every answer."""
    sandbox.config.async_delay_seconds = 3600.0
    for stock in range(3):
        _edit(client, stock)
    read: list[Any] = []
    query = sandbox.store.q

    def counting(sql: str, params: Any = ()) -> Any:
        rows = query(sql, params)
        read.extend(rows)
        return rows

    monkeypatch.setattr(sandbox.store, "q", counting)

    assert sandbox.apply_due(time.time()) == 0
    assert read == []


def test_without_storing_a_bulk_request_is_checked_answered_and_logged_but_never_applied(
    client: TestClient, sandbox: Sandbox
) -> None:
    from braze_sandbox import stats

    before = _stock(client)
    sandbox.config.store_items = False
    sandbox.config.async_delay_seconds = 0.0
    since = time.time()
    _edit(client, before + 5)
    refused = client.patch(ITEM, json={"items": [{"id": "bad id!", "stock": 1}]})
    assert refused.status_code == 400
    assert sandbox.apply_due(time.time() + 1) == 0
    assert _stock(client) == before
    logged = [e for e in stats.read_log(sandbox.store, since=since) if e["path"] == ITEM]
    assert [(e["status"], e["item_ids"]) for e in logged] == [(202, ["sku-000001"]), (400, [])]
