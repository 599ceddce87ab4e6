"""The real process over real HTTP: CLI, persistence, shutdown, and the shared fixture."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle, start_sandbox

pytestmark = pytest.mark.slow


def test_it_keeps_its_state_across_a_restart_and_seeds_only_an_empty_store(
    tmp_path: Path,
) -> None:
    process = start_sandbox(tmp_path, seed_demo=True, seed_products=200, async_delay=0.05)
    try:
        headers = {"Authorization": f"Bearer {process.api_key}"}
        with httpx.Client(base_url=process.url, headers=headers) as client:
            body = {"items": [{"id": "store-oslo", "city": "Oslo"}]}
            assert client.post("/catalogs/stores/items", json=body).status_code == 202
            time.sleep(0.3)
            client.delete("/catalogs/loyalty_tiers")
        process.kill()  # a crash, not a clean stop
        process.start()
        with httpx.Client(base_url=process.url, headers=headers) as client:
            assert client.get("/catalogs/stores/items/store-oslo").status_code == 200
            names = [c["name"] for c in client.get("/catalogs").json()["catalogs"]]
            assert names == ["products", "stores"]  # --seed-demo did not re-seed
    finally:
        process.stop()


def test_an_accepted_async_write_survives_a_crash_before_it_is_applied(tmp_path: Path) -> None:
    process = start_sandbox(tmp_path, seed_demo=True, seed_products=60, async_delay=60)
    try:
        headers = {"Authorization": f"Bearer {process.api_key}"}
        body = {"items": [{"id": "store-rome", "city": "Rome"}]}
        response = httpx.post(process.url + "/catalogs/stores/items", json=body, headers=headers)
        assert response.status_code == 202
        process.kill()
        process.start()
        assert process.admin.flush_async() == 1
        item = httpx.get(process.url + "/catalogs/stores/items/store-rome", headers=headers)
        assert item.status_code == 200
    finally:
        process.stop()


def test_it_starts_fast_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    started = time.monotonic()
    process = start_sandbox(tmp_path)
    assert time.monotonic() - started < 5  # < 2 s on an idle machine; CI is shared
    assert process.stop() == 0


def test_a_dropped_connection_is_seen_by_the_client_as_a_transport_error(tmp_path: Path) -> None:
    process = start_sandbox(
        tmp_path, seed_demo=True, seed_products=60, timeout_rate=1.0, timeout_mode="drop"
    )
    try:
        headers = {"Authorization": f"Bearer {process.api_key}"}
        with pytest.raises(httpx.TransportError):
            httpx.get(process.url + "/catalogs", headers=headers)
        assert process.admin.log()[0]["injected"] == "drop-applied"
    finally:
        process.stop()


def test_the_shared_fixture_gives_a_clean_seeded_sandbox(braze_sandbox: SandboxHandle) -> None:
    with braze_sandbox.client() as client:
        catalogs = client.get("/catalogs").json()["catalogs"]
        products = next(c for c in catalogs if c["name"] == "products")
        assert products["num_items"] >= 10_000
        client.delete("/catalogs/stores")
    assert braze_sandbox.admin.stats()["groups"][0]["requests"] == 2


def test_the_shared_fixture_reset_undoes_the_previous_test(braze_sandbox: SandboxHandle) -> None:
    with braze_sandbox.client() as client:
        names = [c["name"] for c in client.get("/catalogs").json()["catalogs"]]
    assert "stores" in names
    assert len(braze_sandbox.admin.log()) == 1


def test_the_fixture_admin_helper_drives_keys_and_limits(braze_sandbox: SandboxHandle) -> None:
    admin = braze_sandbox.admin
    admin.set_algorithm("sliding")
    admin.set_limit("catalog_items_sync", 3)
    key = admin.create_key(["catalogs.get_item"])
    with braze_sandbox.client(key) as client:
        statuses = [client.get("/catalogs/products/items/sku-000001").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert client.get("/catalogs").status_code == 403
    stats = admin.group_stats("catalog_items_sync")
    assert stats["rate_limited"] == 1
    assert stats["peak_sliding_window_ratio"] == 1.0


def test_the_fixture_edits_resources_as_if_in_the_dashboard(braze_sandbox: SandboxHandle) -> None:
    admin = braze_sandbox.admin
    admin.edit_catalog_item("products", "sku-000002", {"price": 1.5})
    with braze_sandbox.client() as client:
        item = client.get("/catalogs/products/items/sku-000002").json()["items"][0]
    assert item["price"] == 1.5
    scim = braze_sandbox.scim_headers()
    query = {"filter": 'userName eq "fin.ance@example.com"'}
    found = httpx.get(braze_sandbox.url + "/scim/v2/Users", params=query, headers=scim)
    user_id = found.json()["Resources"][0]["id"]
    admin.edit_scim_user(user_id, department="bi")
    got = httpx.get(f"{braze_sandbox.url}/scim/v2/Users/{user_id}", headers=scim).json()
    assert got["department"] == "bi"
