"""The limiter's cold start: after a Redis restart or flush, one probe learns Braze's window.

The sandbox is the referee: its request log says what reached Braze and when, its stats
count 429s and the most requests in any window.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from console.braze.client import BrazeClient
from console.braze.errors import BrazeRateLimited, BrazeUnavailable
from console.braze.limiter import Lane, RateLimiter
from console.braze.limiter.headers import parse_rate_limit_reset
from tests.console.braze.helpers import (
    get_once,
    make_client,
    make_limiter,
    make_limits,
    ready,
    redis_url,
    reset,
    try_acquire,
)

SCALE = 30.0  # sandbox and client clocks: a 60 s window lasts 2 s
WINDOW = 60 / SCALE
GROUP = "catalog_items_sync"
# A database of the suite's Redis that only this module uses, so a test may FLUSHDB it.
FLUSHABLE_DB = 9


def cold_limiter(prefix: str, **limits: Any) -> RateLimiter:
    """3 requests per 0.5 s (60 s at clock scale 120), starting as after a Redis flush."""
    return make_limiter(
        limits=make_limits(
            groups={"catalogs_sync": (3, 60.0)}, clock_scale=120, margin_seconds=0.0, **limits
        ),
        prefix=prefix,
        warm=False,
    )


def spy_on_settle(limiter: RateLimiter) -> list[dict[str, Any]]:
    """Record each call of probe_settle (one per cold start)."""
    calls: list[dict[str, Any]] = []
    original = limiter.probe_settle

    def settle(**kwargs: Any) -> int:
        calls.append(kwargs)
        return original(**kwargs)

    limiter.probe_settle = settle  # type: ignore[method-assign]
    return calls


def early_in_a_window(seconds: float) -> None:
    into = time.time() % seconds
    if into > seconds / 4:
        time.sleep(seconds - into + 0.02)


# --- the limiter alone ------------------------------------------------------------------


def test_a_cold_group_lets_exactly_one_caller_through_as_the_probe(prefix: str) -> None:
    limiter, other_process = cold_limiter(prefix), cold_limiter(prefix)
    first = limiter.acquire(group="catalogs_sync", max_wait=0)
    assert first.probe
    # The log has room for two more, yet both lanes wait for the probe's answer.
    lanes: tuple[Lane, ...] = ("interactive", "background")
    for lane in lanes:
        allowed, wait, _now = try_acquire(other_process, group="catalogs_sync", lane=lane)
        assert not allowed
        assert 0 < wait <= 0.05  # they look again soon: a probe is answered in milliseconds


def test_callers_go_on_once_the_probe_is_settled(prefix: str) -> None:
    limiter, other_process = cold_limiter(prefix), cold_limiter(prefix)
    probe = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    assert limiter.probe_settle(group="catalogs_sync", token=probe, used=1, reset_at=None) == 0
    permit = other_process.acquire(group="catalogs_sync", max_wait=0)
    assert permit.probe is None


def test_a_lost_probe_is_retried_after_its_timeout(prefix: str) -> None:
    limiter = cold_limiter(prefix, probe_timeout_seconds=0.3)
    other_process = cold_limiter(prefix, probe_timeout_seconds=0.3)
    lost = limiter.acquire(group="catalogs_sync", max_wait=0)  # its process dies unanswered
    assert lost.probe
    started = time.monotonic()
    retry = other_process.acquire(group="catalogs_sync", max_wait=2.0)
    waited = time.monotonic() - started
    assert retry.probe
    assert retry.probe != lost.probe
    assert 0.25 <= waited < 1.0


def test_a_probe_that_got_no_answer_hands_over_at_once(prefix: str) -> None:
    limiter, other_process = cold_limiter(prefix), cold_limiter(prefix)
    probe = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    limiter.probe_release(group="catalogs_sync", token=probe)
    assert other_process.acquire(group="catalogs_sync", max_wait=0).probe
    assert not limiter.redis.exists(limiter.keys("catalogs_sync").alive)


def test_a_late_release_does_not_end_the_next_probe(prefix: str) -> None:
    limiter = cold_limiter(prefix, probe_timeout_seconds=0.1)
    late = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    time.sleep(0.15)
    current = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert late
    assert current
    assert late != current
    limiter.probe_release(group="catalogs_sync", token=late)
    assert not try_acquire(limiter, group="catalogs_sync")[0]  # still waiting for `current`


def test_settling_counts_what_braze_counts_and_the_oldest_leaves_at_the_reset(
    prefix: str,
) -> None:
    limiter = cold_limiter(prefix)
    probe = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    # Braze counts 3 of 3 (the probe included); the oldest leaves its window in 0.2 s.
    added = limiter.probe_settle(
        group="catalogs_sync", token=probe, used=3, reset_at=time.time() + 0.2
    )
    assert added == 2
    assert limiter.usage(group="catalogs_sync").used == 3
    assert not try_acquire(limiter, group="catalogs_sync")[0]
    time.sleep(0.25)
    # One slot after the reset; the others may have been sent just before the probe, as
    # far as a sliding-log server's answer tells, so they stay a window.
    assert try_acquire(limiter, group="catalogs_sync")[0]
    assert not try_acquire(limiter, group="catalogs_sync")[0]
    time.sleep(0.3)
    assert [try_acquire(limiter, group="catalogs_sync")[0] for _ in range(3)] == [True, True, False]


def test_after_a_flush_each_process_puts_back_its_own_sends_before_anyone_probes(
    prefix: str,
) -> None:
    limits = make_limits(
        groups={"catalogs_sync": (5, 60.0)},
        clock_scale=120,
        margin_seconds=0.0,
        gather_seconds=0.2,
    )
    survivor = make_limiter(limits=limits, prefix=prefix)
    sent = [try_acquire(survivor, group="catalogs_sync") for _ in range(3)]
    assert all(allowed for allowed, _wait, _now in sent)
    reset(survivor, group="catalogs_sync")  # Redis restarted empty; the process lives on
    newcomer = make_limiter(limits=limits, prefix=prefix, warm=False)  # remembers nothing

    # The survivor remembers sends: it starts the gathering, and puts them back.
    assert not try_acquire(survivor, group="catalogs_sync")[0]
    assert survivor.usage(group="catalogs_sync").used == 3
    allowed, wait, _now = try_acquire(newcomer, group="catalogs_sync")
    assert not allowed
    assert 0.1 < wait <= 0.2
    started = time.monotonic()
    # Even a caller that may not wait at all waits the gathering out (once per flush).
    probe = newcomer.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    assert time.monotonic() - started >= wait - 0.02
    # Braze counts the three and the probe, and will release the first of them in a window:
    # all of them are in the log already.
    reset_at = sent[0][2] + 0.45
    assert newcomer.probe_settle(group="catalogs_sync", token=probe, used=4, reset_at=reset_at) == 0
    assert newcomer.usage(group="catalogs_sync").used == 4


def test_a_fresh_deployment_has_nothing_to_gather_and_probes_at_once(prefix: str) -> None:
    limits = make_limits(groups={"catalogs_sync": (5, 60.0)}, gather_seconds=5.0)
    limiter = make_limiter(limits=limits, prefix=prefix, warm=False)
    started = time.monotonic()
    assert limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert time.monotonic() - started < 1.0


def test_settling_never_seeds_more_than_our_own_limit(prefix: str) -> None:
    limiter = cold_limiter(prefix)
    probe = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    assert limiter.probe_settle(group="catalogs_sync", token=probe, used=500, reset_at=None) == 2


def test_an_answer_without_usage_just_marks_the_group_alive(prefix: str) -> None:
    limiter = cold_limiter(prefix)
    probe = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    assert limiter.probe_settle(group="catalogs_sync", token=probe) == 0
    assert [try_acquire(limiter, group="catalogs_sync")[0] for _ in range(3)] == [True, True, False]


def test_the_marker_survives_normal_operation(prefix: str) -> None:
    limiter = cold_limiter(prefix)
    probe = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    limiter.probe_settle(group="catalogs_sync", token=probe, used=1)
    permits = [limiter.acquire(group="catalogs_sync", max_wait=2.0) for _ in range(7)]
    assert all(p.probe is None for p in permits)
    names = limiter.keys("catalogs_sync")
    assert limiter.redis.ttl(names.alive) == -1  # no expiry: only a flush removes it
    assert not limiter.redis.exists(names.probe)


def test_reset_forgets_the_marker_as_a_flush_would(prefix: str) -> None:
    limiter = cold_limiter(prefix)
    probe = limiter.acquire(group="catalogs_sync", max_wait=0).probe
    assert probe
    limiter.probe_settle(group="catalogs_sync", token=probe)
    reset(limiter, group="catalogs_sync")
    assert limiter.acquire(group="catalogs_sync", max_wait=0).probe


def test_reset_header_units_are_epoch_seconds_milliseconds_or_seconds_from_now() -> None:
    now = 1_795_461_168.5
    assert parse_rate_limit_reset("1795461170", now=now) == 1_795_461_170
    assert parse_rate_limit_reset("1795461170250", now=now) == 1_795_461_170.25
    assert parse_rate_limit_reset("7", now=now) == now + 7
    assert parse_rate_limit_reset("soon", now=now) is None
    assert parse_rate_limit_reset("-3", now=now) is None
    assert parse_rate_limit_reset(None, now=now) is None


# --- the client, without Braze -------------------------------------------------------------


def mock_client(prefix: str, handler: Any) -> BrazeClient:
    return BrazeClient(
        http=httpx.Client(
            base_url="https://rest.iad-03.braze.com", transport=httpx.MockTransport(handler)
        ),
        limiter=make_limiter(limits=make_limits(), prefix=prefix, warm=False),
        api_key="k",
    )


def test_a_probe_answer_without_rate_limit_headers_ends_the_cold_start(prefix: str) -> None:
    client = mock_client(prefix, lambda request: httpx.Response(200, json={"catalogs": []}))
    settled = spy_on_settle(client.limiter)
    client.catalog_list()
    client.catalog_list()
    assert len(settled) == 1
    assert settled[0].get("used") is None  # nothing to seed: the group runs on our own log
    assert client.limiter.redis.exists(client.limiter.keys("catalogs_sync").alive)


def test_a_probe_that_cannot_connect_hands_over_to_the_next_caller_at_once(prefix: str) -> None:
    calls: list[float] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        raise httpx.ConnectError("refused", request=request)

    client = mock_client(prefix, refuse).with_options(max_wait=0.0)
    with pytest.raises(BrazeUnavailable):
        client.catalog_list()
    names = client.limiter.keys("catalogs_sync")
    assert not client.limiter.redis.exists(names.probe)  # released: no wait for its TTL
    assert not client.limiter.redis.exists(names.alive)  # nothing learnt: still cold
    assert client.limiter.acquire(group="catalogs_sync", max_wait=0).probe


# --- against the sandbox ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["fixed", "sliding", "token"])
def test_after_flushdb_the_next_burst_sends_one_probe_then_at_most_remaining_and_no_429(
    braze_sandbox: Any, algorithm: str
) -> None:
    limit = 10
    braze_sandbox.admin.configure(
        clock_scale=SCALE, algorithm=algorithm, limits={GROUP: {"limit": limit}}
    )
    store = redis.Redis.from_url(redis_url(FLUSHABLE_DB))
    store.flushdb()
    prefix = f"test:{uuid.uuid4().hex}"
    # A wide arrival margin: the suite shares two cores, and this is about the cold start,
    # not about how close to the limit the sliding log may run.
    limits = make_limits(groups={GROUP: (limit, 60.0)}, clock_scale=SCALE, margin_seconds=0.25)
    answers: list[tuple[float, httpx.Headers]] = []
    lock = threading.Lock()

    def new_client() -> BrazeClient:
        client = make_client(
            base_url=braze_sandbox.url,
            api_key=braze_sandbox.api_key,
            limits=limits,
            prefix=prefix,
            db=FLUSHABLE_DB,
            max_wait=30.0,
        )

        def record(response: httpx.Response) -> None:
            with lock:
                answers.append((time.time(), response.headers))

        client._http.event_hooks["response"].append(record)
        return client

    def read(client: BrazeClient, times: int = 1) -> None:
        for _ in range(times):
            client.catalog_item_get(catalog_name="stores", item_id="store-berlin")

    # Made first: building an HTTP client takes long enough to cross a 2 s window.
    before, clients = new_client(), [new_client() for _ in range(4)]
    # Before the restart the console used 6 of Braze's 10 requests in this window.
    early_in_a_window(WINDOW)
    started = time.time()
    read(before, 6)
    store.flushdb()  # Redis restarted empty: the limiter's log and marker are gone
    flushed = time.time()
    answers.clear()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(read, clients, [4] * len(clients)))
    store.close()

    log = sorted(
        (e for e in braze_sandbox.admin.log(since=flushed, group=GROUP) if not e["external"]),
        key=lambda e: e["t"],
    )
    assert [e["status"] for e in log] == [200] * 16  # no 429, nothing else
    probe, rest = log[0], log[1:]
    # Exactly one request until the probe's answer...
    assert all(e["t"] >= probe["t_end"] for e in rest)
    # ...then no more than Braze said remained until its reset...
    headers = min(answers, key=lambda a: a[0])[1]
    remaining = int(headers["x-ratelimit-remaining"])
    # Braze's header has whole seconds; the sandbox also tells the exact moment.
    reset_at = int(headers["x-sandbox-reset-ms"]) / 1000
    assert remaining <= limit - 6  # the probe saw the requests made before the flush
    assert len([e for e in rest if e["t"] < reset_at]) <= remaining
    # ...and Braze, the referee, refused nothing and never counted more than its limit.
    stats = braze_sandbox.admin.group_stats(GROUP, since=started)
    assert stats["rate_limited"] == 0, stats["status_counts"]
    # Each server's own kind of window (a token bucket may admit 2L in one after idling).
    if algorithm == "fixed":
        assert stats["peak_requests_in_fixed_window"] <= limit
    if algorithm == "sliding":
        assert stats["peak_requests_in_sliding_window"] <= limit


@pytest.mark.slow
def test_after_flushdb_a_full_window_is_waited_out_without_a_429_when_the_senders_survive(
    braze_sandbox: Any,
) -> None:
    limit = 10
    braze_sandbox.admin.configure(
        clock_scale=SCALE, algorithm="fixed", limits={GROUP: {"limit": limit}}
    )
    store = redis.Redis.from_url(redis_url(FLUSHABLE_DB))
    store.flushdb()
    prefix = f"test:{uuid.uuid4().hex}"
    limits = make_limits(
        groups={GROUP: (limit, 60.0)},
        clock_scale=SCALE,
        margin_seconds=0.25,
        gather_seconds=0.3,
    )

    def sender() -> BrazeClient:
        return make_client(
            base_url=braze_sandbox.url,
            api_key=braze_sandbox.api_key,
            limits=limits,
            prefix=prefix,
            db=FLUSHABLE_DB,
            max_wait=30.0,
        )

    clients = [sender() for _ in range(4)]

    def read(client: BrazeClient, times: int) -> None:
        for _ in range(times):
            client.catalog_item_get(catalog_name="stores", item_id="store-berlin")

    early_in_a_window(WINDOW)
    started = time.time()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(read, clients, [3, 3, 2, 2]))  # Braze's window is now full
    store.flushdb()  # Redis restarted empty; the four senders live on
    flushed = time.time()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(read, clients, [2] * len(clients)))
    store.close()

    log = sorted(braze_sandbox.admin.log(since=started, group=GROUP), key=lambda e: e["t"])
    assert [e["status"] for e in log] == [200] * 18  # not even the probe was refused
    after = [e for e in log if e["t"] >= flushed]
    # The first request after the flush waited for Braze's next window.
    assert int(after[0]["t"] // WINDOW) > int(log[0]["t"] // WINDOW)
    stats = braze_sandbox.admin.group_stats(GROUP, since=started)
    assert stats["rate_limited"] == 0
    assert stats["peak_requests_in_fixed_window"] <= limit


@pytest.mark.slow
def test_other_processes_wait_in_both_lanes_while_the_probe_is_out(
    braze_sandbox: Any, prefix: str
) -> None:
    braze_sandbox.admin.configure(clock_scale=SCALE)
    braze_sandbox.admin.set_injection(latency_ms=1200, groups=[GROUP])
    limits: dict[str, Any] = {"clock_scale": SCALE, "margin_seconds": 0.05}
    spec = {
        "url": braze_sandbox.url,
        "api_key": braze_sandbox.api_key,
        "prefix": prefix,
        "item_id": "store-berlin",
        "limits": limits,
    }
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=make_limits(**limits),
        prefix=prefix,
        max_wait=30.0,
    )
    since = time.time()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(ready, range(2))  # imports done before the probe goes out
        probe = threading.Thread(
            target=client.catalog_item_get,
            kwargs={"catalog_name": "stores", "item_id": "store-berlin"},
        )
        probe.start()
        time.sleep(0.3)  # the probe is out for 1.2 s
        pool.map(get_once, [{**spec, "lane": "interactive"}, {**spec, "lane": "background"}])
        probe.join()
    log = sorted(braze_sandbox.admin.log(since=since, group=GROUP), key=lambda e: e["t"])
    assert len(log) == 3
    assert all(e["t"] >= log[0]["t_end"] for e in log[1:])


def test_a_lost_probe_does_not_hold_back_the_client_longer_than_its_timeout(
    braze_sandbox: Any, prefix: str
) -> None:
    limits = make_limits(probe_timeout_seconds=0.5)
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=limits,
        prefix=prefix,
        max_wait=5.0,
    )
    lost = make_limiter(limits=limits, prefix=prefix, warm=False)
    since = time.time()
    assert lost.acquire(group=GROUP, max_wait=0).probe  # a worker killed mid-probe
    assert client.catalog_item_get(catalog_name="stores", item_id="store-berlin")
    log = braze_sandbox.admin.log(since=since - 1, group=GROUP)
    assert len(log) == 1  # the lost probe never reached Braze; the client's own did
    assert log[0]["t"] - since >= 0.45


def test_the_client_probes_once_and_then_runs_on_its_log(braze_sandbox: Any, prefix: str) -> None:
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=make_limits(),
        prefix=prefix,
    )
    settled = spy_on_settle(client.limiter)
    for _ in range(5):
        client.catalog_item_get(catalog_name="stores", item_id="store-berlin")
    assert len(settled) == 1
    assert settled[0]["used"] == 1  # a fresh sandbox window: Braze counts the probe only
    assert len(braze_sandbox.admin.log(group=GROUP)) == 5


def test_a_429_on_the_probe_blocks_the_group_ends_the_cold_start_and_keeps_the_grid(
    braze_sandbox: Any, prefix: str
) -> None:
    braze_sandbox.admin.configure(
        clock_scale=SCALE, algorithm="fixed", limits={"catalogs_sync": {"limit": 2}}
    )
    early_in_a_window(WINDOW)
    with braze_sandbox.client() as other_integration:
        for _ in range(2):
            assert other_integration.get("/catalogs").status_code == 200
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=make_limits(clock_scale=SCALE),
        prefix=prefix,
        max_wait=0.0,
    )
    names = client.limiter.keys("catalogs_sync")
    client.limiter.redis.set(names.grid, 0)  # put back by a process that saw it
    with pytest.raises(BrazeRateLimited) as caught:
        client.catalog_list()
    assert caught.value.from_braze is True
    # Our log lacked the other integration's sends; Braze's windows are no different.
    assert client.limiter.redis.exists(names.grid)
    assert client.limiter.redis.exists(names.alive)
    assert not client.limiter.redis.exists(names.probe)
    assert client.limiter.usage(group="catalogs_sync").blocked_for > 0
