"""Builders shared by the Braze client tests and the limiter's worker processes.

Nothing here touches Django's settings, so spawned worker processes can import it cheaply.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import redis

from console.braze.client import BrazeClient, RetryPolicy
from console.braze.errors import BrazeRateLimited
from console.braze.limiter import GROUPS, BrazeLimits, GroupLimit, Lane, RateLimiter
from tests.fixtures.sandbox import DEV_SCIM_ORIGIN

# The reference profile's figures: small enough for tests to fill a window. The console
# learns the sandbox's actual limit from X-RateLimit-Limit unless a group is overridden.
SANDBOX_DEFAULTS = {
    "catalogs_sync": (5, 60.0),
    "catalog_items_sync": (50, 60.0),
    "catalog_items_async": (100, 60.0),
    "catalog_fields_selections": (50, 60.0),
    "preference_center_read": (1000, 60.0),
    "preference_center_write": (10, 60.0),
    "scim": (5000, 86400.0),
    "users_export_ids": (2500, 60.0),
    "translations": (250_000, 60.0),
    "default": (250_000, 3600.0),
}


def redis_url(db: int | None = None) -> str:
    """The suite's Redis; ``db`` picks another database of it (one a test may FLUSHDB)."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if db is None:
        return url
    if url.startswith("unix://"):
        path, _, query = url.partition("?")
        return f"{path}?{urlencode({**dict(parse_qsl(query)), 'db': str(db)})}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def make_limits(
    *,
    groups: dict[str, tuple[int, float]] | None = None,
    clock_scale: float = 1.0,
    margin_seconds: float = 0.05,
    background_share: float = 0.7,
    yield_margin: float = 0.05,
    overrides: tuple[str, ...] = (),
    workspace: str = "demo",
    probe_timeout_seconds: float = 5.0,
    gather_seconds: float = 0.0,
    align_fixed_windows: bool = True,
    pace_share: float = 0.7,
) -> BrazeLimits:
    table = {**SANDBOX_DEFAULTS, **(groups or {})}
    assert set(table) == set(GROUPS)
    return BrazeLimits(
        groups={name: GroupLimit(limit, window) for name, (limit, window) in table.items()},
        workspace=workspace,
        background_share=background_share,
        yield_margin=yield_margin,
        overrides=frozenset(overrides),
        clock_scale=clock_scale,
        margin_seconds=margin_seconds,
        probe_timeout_seconds=probe_timeout_seconds,
        gather_seconds=gather_seconds,
        align_fixed_windows=align_fixed_windows,
        pace_share=pace_share,
    )


def try_acquire(
    limiter: RateLimiter, *, group: str, lane: Lane = "interactive", share: float | None = None
) -> tuple[bool, float, float]:
    """Take a slot if one is free now. Returns (allowed, wait seconds, Redis time)."""
    take = limiter.take(group, lane, share)
    return take.allowed, take.wait, take.now_us / 1_000_000


def mark_alive(limiter: RateLimiter, *, group: str) -> None:
    """Skip the cold-start probe (tests that start from a known state)."""
    limiter.redis.set(limiter.keys(group).alive, "1")


def reset(limiter: RateLimiter, *, group: str) -> None:
    """Forget everything about a group, as a Redis flush would."""
    limiter.redis.delete(*limiter.keys(group).all())


def make_limiter(
    *, limits: BrazeLimits, prefix: str, warm: bool = True, db: int | None = None
) -> RateLimiter:
    """A limiter on a private prefix; ``warm`` skips the cold-start probe of every group
    (tests of the sliding log itself), ``warm=False`` starts as after a Redis flush."""
    limiter = RateLimiter(
        redis_client=redis.Redis.from_url(redis_url(db)), limits=limits, prefix=prefix
    )
    if warm:
        for group in GROUPS:
            mark_alive(limiter, group=group)
    return limiter


def make_client(
    *,
    base_url: str,
    api_key: str,
    limits: BrazeLimits,
    prefix: str | None = None,
    scim_token: str = "",
    scim_origin: str = DEV_SCIM_ORIGIN,
    max_wait: float = 5.0,
    read_timeout: float = 10.0,
    retry: RetryPolicy | None = None,
    lane: Any = "interactive",
    db: int | None = None,
) -> BrazeClient:
    http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(read_timeout, connect=2.0))
    return BrazeClient(
        http=http,
        # Cold, as a deployment starts: the first request of each group is its probe.
        limiter=make_limiter(
            limits=limits, prefix=prefix or f"test:{uuid.uuid4().hex}", warm=False, db=db
        ),
        api_key=api_key,
        scim_token=scim_token,
        scim_origin=scim_origin,
        max_wait=max_wait,
        retry=retry or RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.05),
        lane=lane,
    )


def drive_group(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker-process body: call one sync-items endpoint as fast as the limiter allows."""
    limits = make_limits(**spec["limits"])
    client = make_client(
        base_url=spec["url"],
        api_key=spec["api_key"],
        limits=limits,
        prefix=spec["prefix"],
        max_wait=60.0,
    )
    sent = braze_429s = 0
    sent_at: list[float] = []
    deadline = time.time() + spec["seconds"]
    while time.time() < deadline:
        try:
            client.catalog_item_get(catalog_name="stores", item_id=spec["item_id"])
        except BrazeRateLimited as exc:
            braze_429s += int(exc.from_braze)
            continue
        sent += 1
        sent_at.append(time.time())
        time.sleep(spec.get("spacing", 0.0))
    return {"sent": sent, "braze_429s": braze_429s, "sent_at": sent_at}


def try_acquire_once(spec: dict[str, Any]) -> tuple[bool, float]:
    """Worker-process body: does this (other) process see the group as blocked?"""
    limiter = make_limiter(limits=make_limits(**spec["limits"]), prefix=spec["prefix"], warm=False)
    allowed, wait, _now = try_acquire(limiter, group=spec["group"])
    return allowed, wait


def ready(_: object) -> bool:
    """Worker-process body that does nothing: the imports are done once it returns."""
    return True


def get_once(spec: dict[str, Any]) -> None:
    """Worker-process body: one sync-items read in the given lane, waiting as long as needed."""
    client = make_client(
        base_url=spec["url"],
        api_key=spec["api_key"],
        limits=make_limits(**spec["limits"]),
        prefix=spec["prefix"],
        max_wait=30.0,
        lane=spec["lane"],
    )
    client.catalog_item_get(catalog_name="stores", item_id=spec["item_id"])
