"""Fault injection, async delay, admin edits and reset."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox


def test_injected_errors_return_5xx_and_write_nothing(client: TestClient) -> None:
    client.patch("/_sandbox/config", json={"injection": {"error_rate": 1.0, "error_status": 503}})
    response = client.post("/catalogs/stores/items", json={"items": [{"id": "x1", "city": "Oslo"}]})
    assert response.status_code == 503
    client.post("/_sandbox/async/flush")
    client.patch("/_sandbox/config", json={"injection": {"error_rate": 0.0}})
    assert client.get("/catalogs/stores/items/x1").status_code == 404
    entry = client.get("/_sandbox/log").text.splitlines()[0]
    assert '"injected": "error-503"' in entry


def test_injected_latency_delays_responses(client: TestClient) -> None:
    client.patch("/_sandbox/config", json={"injection": {"latency_ms": 200}})
    started = time.monotonic()
    client.get("/content_blocks/list")
    assert time.monotonic() - started >= 0.2


def test_a_held_timeout_still_applies_the_write_by_default(client: TestClient) -> None:
    client.patch(
        "/_sandbox/config", json={"injection": {"timeout_rate": 1.0, "timeout_seconds": 0.2}}
    )
    started = time.monotonic()
    response = client.put("/catalogs/stores/items/held", json={"items": [{"city": "Rome"}]})
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200
    client.patch("/_sandbox/config", json={"injection": {"timeout_rate": 0.0}})
    assert client.get("/catalogs/stores/items/held").status_code == 200


def test_a_malformed_answer_is_an_html_page_with_the_success_status_and_the_write_lands(
    client: TestClient,
) -> None:
    client.patch("/_sandbox/config", json={"injection": {"malformed_rate": 1.0}})
    response = client.put("/catalogs/stores/items/paged", json={"items": [{"city": "Rome"}]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "maintenance" in response.text
    refused = client.get("/catalogs/stores/items/nope")
    assert refused.status_code == 404  # only success answers are replaced
    client.patch("/_sandbox/config", json={"injection": {"malformed_rate": 0.0}})
    assert client.get("/catalogs/stores/items/paged").json()["items"][0]["city"] == "Rome"
    entries = client.get("/_sandbox/log").text.splitlines()
    assert '"injected": "malformed-html"' in entries[0]


def test_a_malformed_answer_can_be_json_without_the_documented_fields(
    client: TestClient,
) -> None:
    client.patch(
        "/_sandbox/config", json={"injection": {"malformed_rate": 1.0, "malformed": "shape"}}
    )
    response = client.get("/content_blocks/list")
    assert response.status_code == 200
    assert "content_blocks" not in response.json()


def test_the_async_delay_is_configurable(client: TestClient, sandbox: Sandbox) -> None:
    client.patch("/_sandbox/config", json={"async_delay_seconds": 5})
    client.post("/catalogs/stores/items", json={"items": [{"id": "later", "city": "Oslo"}]})
    time.sleep(0.3)
    assert client.get("/catalogs/stores/items/later").status_code == 404
    assert len(client.get("/_sandbox/async").json()["pending"]) == 1
    assert client.post("/_sandbox/async/flush").json() == {"applied": 1}
    assert client.get("/catalogs/stores/items/later").status_code == 200


def test_admin_edits_items_as_if_in_the_dashboard(client: TestClient) -> None:
    client.patch("/_sandbox/catalogs/stores/items/store-paris", json={"city": "Paris 2"})
    item = client.get("/catalogs/stores/items/store-paris").json()["items"][0]
    assert item["city"] == "Paris 2"
    assert item["lat"] == 48.86


def test_reset_restores_the_seeded_state_and_default_knobs(client: TestClient) -> None:
    client.patch("/_sandbox/config", json={"clock_scale": 10, "algorithm": "token"})
    client.delete("/catalogs/stores")
    client.post("/_sandbox/reset", json={"products": 120})
    assert client.get("/_sandbox/config").json()["algorithm"] == "fixed"
    names = [c["name"] for c in client.get("/catalogs").json()["catalogs"]]
    assert names == ["products", "stores", "loyalty_tiers"]
    # Second reset uses the snapshot path; it must give the same result.
    client.delete("/catalogs/stores")
    client.post("/_sandbox/reset", json={"products": 120})
    assert client.get("/catalogs/stores/items/store-paris").status_code == 200
    assert client.get("/_sandbox/log").text.count("\n") == 1


def test_the_admin_api_always_requires_its_token(sandbox: Sandbox) -> None:
    from braze_sandbox.asgi import create_app

    assert len(sandbox.admin_token) >= 32, "a token is made up when none is given"
    with TestClient(create_app(sandbox), base_url="http://127.0.0.1") as plain:
        assert plain.get("/_sandbox/config").status_code == 401
        assert plain.post("/_sandbox/reset", json={}).status_code == 401
        wrong = {"X-Sandbox-Admin-Token": "guess"}
        assert plain.get("/_sandbox/log", headers=wrong).status_code == 401
        right = {"X-Sandbox-Admin-Token": sandbox.admin_token}
        assert plain.get("/_sandbox/config", headers=right).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io:9400", "192.168.1.5"])
def test_the_admin_api_refuses_a_host_that_is_not_loopback(client: TestClient, host: str) -> None:
    # A page whose own name resolves to 127.0.0.1 (DNS rebinding) sends its name as Host.
    response = client.get("/_sandbox/log", headers={"Host": host})
    assert response.status_code == 403
    assert client.get("/_sandbox/log", headers={"Host": "localhost:9400"}).status_code == 200
    assert client.get("/_sandbox/log", headers={"Host": "[::1]:9400"}).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]
)
def test_the_admin_api_refuses_what_a_cross_site_form_can_send(
    client: TestClient, content_type: str
) -> None:
    before = client.get("/_sandbox/config").json()
    for method, path in (("POST", "/_sandbox/reset"), ("PATCH", "/_sandbox/config")):
        response = client.request(
            method, path, content=b'{"clock_scale": 9}', headers={"Content-Type": content_type}
        )
        assert response.status_code == 415
    assert client.get("/_sandbox/config").json() == before
    assert client.patch("/_sandbox/config", json={"clock_scale": 9}).status_code == 200


@pytest.mark.one_profile("current")
def test_the_current_profile_has_the_limits_braze_documents_today(client: TestClient) -> None:
    limits = client.get("/_sandbox/config").json()["limits"]
    assert limits["catalogs_sync"] == {"limit": 50, "window_seconds": 60.0}
    assert limits["catalog_items_async"] == {"limit": 16_000, "window_seconds": 60.0}
    assert limits["catalog_fields_selections"] == {"limit": 50, "window_seconds": 60.0}


@pytest.mark.one_profile("current")
def test_switching_profile_takes_that_profiles_limits_until_a_reset_without_one(
    client: TestClient,
) -> None:
    config = client.patch("/_sandbox/config", json={"profile": "reference"}).json()
    assert config["profile"] == "reference"
    assert config["limits"]["catalogs_sync"]["limit"] == 5
    assert config["limits"]["catalog_items_async"]["limit"] == 100
    body = client.post("/_sandbox/reset", json={"profile": "reference"}).json()
    assert body["config"]["profile"] == "reference"
    body = client.post("/_sandbox/reset", json={}).json()
    assert body["config"]["profile"] == "current"


def test_an_unknown_profile_is_refused(client: TestClient) -> None:
    response = client.patch("/_sandbox/config", json={"profile": "2019"})
    assert response.status_code == 400
    assert "profile must be one of" in response.text
