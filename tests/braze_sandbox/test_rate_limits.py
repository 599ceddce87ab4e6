"""Rate limits per workspace and group, shared across keys, under every algorithm."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox
from braze_sandbox.ratelimit import FixedWindow, SlidingLog, TokenBucket

ALGORITHMS = ["fixed", "sliding", "token"]

# The limiter's mechanics are the same under both profiles; the reference profile's 5/min
# sync-catalog group lets a test exhaust it in a handful of requests.
pytestmark = pytest.mark.one_profile("reference")


def new_key(
    client: TestClient, workspace: str = "demo", permissions: list[str] | None = None
) -> dict[str, str]:
    response = client.post(
        "/_sandbox/keys", json={"workspace": workspace, "permissions": permissions or ["*"]}
    )
    return {"Authorization": f"Bearer {response.json()['key']}"}


def catalogs_limit(sandbox: Sandbox) -> int:
    """The sync catalog group's limit: 50/min today, 5/min in the reference collection."""
    return sandbox.config.limits["catalogs_sync"].limit


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_burst_over_the_sync_catalog_limit_gets_429s_with_headers(
    client: TestClient, sandbox: Sandbox, algorithm: str
) -> None:
    client.patch("/_sandbox/config", json={"algorithm": algorithm})
    limit = catalogs_limit(sandbox)
    assert limit == (5 if sandbox.config.reference else 50)
    responses = [client.get("/catalogs") for _ in range(limit + 2)]
    assert [r.status_code for r in responses] == [200] * limit + [429] * 2
    remaining = [r.headers["x-ratelimit-remaining"] for r in responses[:limit]]
    assert remaining == [str(n) for n in range(limit - 1, -1, -1)]
    limited = responses[limit]
    assert limited.headers["x-ratelimit-limit"] == str(limit)
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) >= int(time.time())
    assert limited.json() == {"message": "Rate limit exceeded"}


def test_a_429_carries_retry_after_only_in_the_reference_collection(
    client: TestClient, sandbox: Sandbox
) -> None:
    # Braze documents X-RateLimit-Limit, -Remaining and -Reset, and no Retry-After.
    for _ in range(catalogs_limit(sandbox)):
        client.get("/catalogs")
    limited = client.get("/catalogs")
    assert limited.status_code == 429
    assert int(limited.headers["x-ratelimit-reset"]) >= int(time.time())
    if sandbox.config.reference:
        assert 1 <= int(limited.headers["retry-after"]) <= 61
    else:
        assert "retry-after" not in limited.headers
    assert int(limited.headers["x-sandbox-retry-after-ms"]) > 0


def test_every_response_carries_rate_limit_headers(client: TestClient) -> None:
    for response in (client.get("/content_blocks/list"), client.get("/catalogs/nope/items")):
        assert response.headers["x-ratelimit-limit"]
        assert response.headers["x-ratelimit-remaining"]
        assert response.headers["x-ratelimit-reset"].isdigit()


def test_the_limit_is_shared_by_all_keys_of_a_workspace(
    client: TestClient, sandbox: Sandbox
) -> None:
    other = new_key(client)
    limit = catalogs_limit(sandbox)
    for _ in range(limit - 2):
        assert client.get("/catalogs").status_code == 200
    for _ in range(2):
        assert client.get("/catalogs", headers=other).status_code == 200
    assert client.get("/catalogs", headers=other).status_code == 429
    assert client.get("/catalogs").status_code == 429


def test_each_workspace_has_its_own_quota(client: TestClient, sandbox: Sandbox) -> None:
    elsewhere = new_key(client, workspace="elsewhere")
    for _ in range(catalogs_limit(sandbox)):
        client.get("/catalogs")
    assert client.get("/catalogs").status_code == 429
    assert client.get("/catalogs", headers=elsewhere).status_code == 200


def test_groups_do_not_share_quota(client: TestClient, sandbox: Sandbox) -> None:
    for _ in range(catalogs_limit(sandbox) + 1):
        client.get("/catalogs")
    assert client.get("/catalogs/products/items").status_code == 200


def test_the_clock_scale_shortens_the_window(client: TestClient) -> None:
    # At S=120 a "minute" lasts half a second.
    client.patch(
        "/_sandbox/config",
        json={
            "clock_scale": 120,
            "limits": {"catalogs_sync": {"limit": 5}},
        },
    )
    now = time.time()
    time.sleep(0.5 - (now % 0.5) + 0.01)  # start at a window boundary
    statuses = [client.get("/catalogs").status_code for _ in range(6)]
    assert statuses[-1] == 429
    time.sleep(0.55)
    assert client.get("/catalogs").status_code == 200


def test_limits_can_be_overridden_at_runtime(client: TestClient) -> None:
    limits = {"catalogs_sync": {"limit": 20, "window_seconds": 60}}
    client.patch("/_sandbox/config", json={"limits": limits})
    statuses = [client.get("/catalogs").status_code for _ in range(20)]
    assert statuses == [200] * 20
    assert client.get("/catalogs").status_code == 429


def test_rejected_requests_are_logged_but_not_counted(client: TestClient, sandbox: Sandbox) -> None:
    limit = catalogs_limit(sandbox)
    for _ in range(limit + 2):
        client.get("/catalogs")
    log = [e for e in client.get("/_sandbox/log").text.splitlines() if e]
    assert len(log) == limit + 2
    stats = client.get("/_sandbox/stats", params={"group": "catalogs_sync"}).json()["groups"][0]
    assert stats["requests"] == limit + 2
    assert stats["rate_limited"] == 2
    assert stats["counted"] == limit
    assert stats["peak_requests_in_fixed_window"] == limit
    assert stats["peak_fixed_window_ratio"] == 1.0
    assert stats["peak_sliding_window_ratio"] == 1.0


def test_the_request_log_never_contains_keys(client: TestClient) -> None:
    client.get("/catalogs")
    client.get("/catalogs", headers={"Authorization": "Bearer wrong-secret"})
    text = client.get("/_sandbox/log").text
    assert "sandbox-dev-key-all-permissions" not in text
    assert "wrong-secret" not in text


def test_the_external_consumer_uses_its_share_of_the_quota(
    client: TestClient, sandbox: Sandbox
) -> None:
    # 100/min at S=60 is 100 requests a second; half goes to the external consumer.
    client.patch(
        "/_sandbox/config",
        json={
            "clock_scale": 60,
            "limits": {"catalog_items_async": {"limit": 100}},
            "consumers": [{"workspace": "demo", "group": "catalog_items_async", "fraction": 0.5}],
        },
    )
    time.sleep(1.0)
    stats = client.get("/_sandbox/stats", params={"group": "catalog_items_async"}).json()
    group = stats["groups"][0]
    assert 35 <= group["external_requests"] <= 65
    assert group["requests"] == 0


def test_a_bad_key_gets_401_and_a_missing_permission_gets_403(
    client: TestClient, sandbox: Sandbox
) -> None:
    assert client.get("/catalogs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/catalogs", headers={"Authorization": ""}).status_code == 401
    reader = new_key(client, permissions=["catalogs.get"])
    assert client.get("/catalogs", headers=reader).status_code == 200
    denied = client.post("/catalogs", headers=reader, json={})
    assert denied.status_code == 403
    if sandbox.config.reference:
        assert denied.json()["missing_permission"] == "catalogs.create"
        assert "catalogs.create" in denied.json()["message"]
    else:
        # "403 Access Denied" in "API errors and responses" (_docs/_api/errors.md).
        assert denied.json() == {"message": "Access Denied"}


def test_unknown_permission_names_are_refused_when_creating_keys(client: TestClient) -> None:
    response = client.post("/_sandbox/keys", json={"permissions": ["catalogs.everything"]})
    assert response.status_code == 400


def test_fixed_window_resets_at_the_window_boundary() -> None:
    bucket = FixedWindow()
    assert all(bucket.acquire(10.0 + i * 0.01, 3, 10.0).allowed for i in range(3))
    denied = bucket.acquire(19.9, 3, 10.0)
    assert not denied.allowed
    assert denied.reset_at == 20.0
    assert denied.retry_after == pytest.approx(0.1)
    assert bucket.acquire(20.0, 3, 10.0).allowed


def test_sliding_log_never_allows_more_than_the_limit_in_any_window() -> None:
    bucket = SlidingLog()
    assert all(bucket.acquire(t, 3, 10.0).allowed for t in (9.0, 9.5, 9.9))
    assert not bucket.acquire(10.1, 3, 10.0).allowed  # a fixed window would allow this
    assert bucket.acquire(19.01, 3, 10.0).allowed


def test_token_bucket_refills_continuously() -> None:
    bucket = TokenBucket()
    assert all(bucket.acquire(0.0, 3, 3.0).allowed for _ in range(3))
    denied = bucket.acquire(0.5, 3, 3.0)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(0.5)
    assert bucket.acquire(1.01, 3, 3.0).allowed
