"""The ``storage_limit`` knob: item writes refused as Braze refuses them when catalog storage is
full ("PUT: Replace Multiple Catalog Items", Troubleshooting), and accepted again once cleared."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

ERROR_IDS = {
    "reached": "company-size-limit-already-reached",
    "surge": "company-size-limit-surge",
}

# Every endpoint that writes item data: (method, path, body).
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/catalogs/stores/items", {"items": [{"id": "new-1", "city": "Oslo"}]}),
    ("PUT", "/catalogs/stores/items", {"items": [{"id": "new-1", "city": "Oslo"}]}),
    ("PATCH", "/catalogs/stores/items", {"items": [{"id": "store-paris", "city": "Lyon"}]}),
    ("POST", "/catalogs/stores/items/new-2", {"items": [{"city": "Oslo"}]}),
    ("PUT", "/catalogs/stores/items/store-paris", {"items": [{"city": "Lyon"}]}),
    ("PATCH", "/catalogs/stores/items/store-paris", {"items": [{"city": "Lyon"}]}),
]


def _write(client: TestClient, method: str, path: str, body: dict[str, Any]) -> Any:
    return client.request(method, path, json=body)


@pytest.mark.parametrize("state", ["reached", "surge"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_item_writes_are_refused_with_brazes_error_while_storage_is_full(
    client: TestClient, state: str, method: str, path: str, body: dict[str, Any]
) -> None:
    assert client.patch("/_sandbox/config", json={"storage_limit": state}).status_code == 200

    response = _write(client, method, path, body)

    assert response.status_code == 400
    error = response.json()
    assert error["message"] == "Invalid Request"
    assert [e["id"] for e in error["errors"]] == [ERROR_IDS[state]]
    assert set(error["errors"][0]) == {"id", "message", "parameters", "parameter_values"}
    # Nothing is queued to land later.
    assert client.get("/_sandbox/async").json()["pending"] == []


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_item_writes_pass_again_once_the_knob_is_cleared(
    client: TestClient, method: str, path: str, body: dict[str, Any]
) -> None:
    client.patch("/_sandbox/config", json={"storage_limit": "reached"})
    assert _write(client, method, path, body).status_code == 400
    client.patch("/_sandbox/config", json={"storage_limit": "none"})

    assert _write(client, method, path, body).status_code in (200, 201, 202)


def test_a_refused_bulk_write_never_lands(client: TestClient) -> None:
    client.patch("/_sandbox/config", json={"storage_limit": "surge"})
    client.post("/catalogs/stores/items", json={"items": [{"id": "never", "city": "Oslo"}]})
    client.patch("/_sandbox/config", json={"storage_limit": "none"})
    client.post("/_sandbox/async/flush")
    assert client.get("/catalogs/stores/items/never").status_code == 404


def test_deletes_still_pass_because_they_free_storage(client: TestClient) -> None:
    client.patch("/_sandbox/config", json={"storage_limit": "reached"})
    bulk = client.request(
        "DELETE", "/catalogs/stores/items", json={"items": [{"id": "store-paris"}]}
    )
    assert bulk.status_code == 202
    assert client.delete("/catalogs/stores/items/store-london").status_code == 202


def test_an_invalid_request_gets_its_own_error_first(client: TestClient) -> None:
    client.patch("/_sandbox/config", json={"storage_limit": "reached"})
    response = client.post("/catalogs/stores/items", json={"items": [{"id": "x", "ghost": 1}]})
    assert [e["id"] for e in response.json()["errors"]] == ["invalid-fields"]


def test_the_knob_is_validated_and_cleared_by_a_reset(client: TestClient) -> None:
    refused = client.patch("/_sandbox/config", json={"storage_limit": "full"})
    assert refused.status_code == 400
    assert "storage_limit" in refused.json()["message"]
    assert client.get("/_sandbox/config").json()["storage_limit"] == "none"
    client.patch("/_sandbox/config", json={"storage_limit": "surge"})
    client.post("/_sandbox/reset", json={"products": 120})
    assert client.get("/_sandbox/config").json()["storage_limit"] == "none"
