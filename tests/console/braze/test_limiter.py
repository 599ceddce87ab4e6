from __future__ import annotations

import multiprocessing
import time

import pytest

from console.braze.errors import BrazeRateLimited
from tests.console.braze.helpers import drive_group, make_limiter, make_limits

# Tiny windows keep these fast: 3 requests per 0.5 s real time (60 s at clock scale 120).
SMALL = {"catalogs_sync": (3, 60.0)}


def small_limiter(prefix: str, **kwargs: object):
    limits = make_limits(groups=SMALL, clock_scale=120, margin_seconds=0.0, **kwargs)  # type: ignore[arg-type]
    return make_limiter(limits=limits, prefix=prefix)


def test_it_allows_the_limit_and_refuses_the_next_request_in_the_same_window(prefix: str) -> None:
    limiter = small_limiter(prefix)
    results = [limiter.try_acquire(group="catalogs_sync")[0] for _ in range(4)]
    assert results == [True, True, True, False]


def test_it_says_how_long_until_the_oldest_request_leaves_the_window(prefix: str) -> None:
    limiter = small_limiter(prefix)
    for _ in range(3):
        limiter.try_acquire(group="catalogs_sync")
    allowed, wait, _ = limiter.try_acquire(group="catalogs_sync")
    assert not allowed
    assert 0.3 < wait <= 0.5


def test_acquire_waits_for_a_free_slot_and_never_exceeds_the_limit(prefix: str) -> None:
    limiter = small_limiter(prefix)
    started = time.monotonic()
    for _ in range(7):
        limiter.acquire(group="catalogs_sync", max_wait=2.0)
    # 7 requests at 3 per 0.5 s need two full windows.
    assert time.monotonic() - started >= 1.0


def test_it_raises_rate_limited_with_the_retry_time_when_the_wait_is_too_long(
    prefix: str,
) -> None:
    limiter = small_limiter(prefix)
    for _ in range(3):
        limiter.acquire(group="catalogs_sync", max_wait=0)
    with pytest.raises(BrazeRateLimited) as caught:
        limiter.acquire(group="catalogs_sync", max_wait=0.05)
    assert caught.value.group == "catalogs_sync"
    assert caught.value.from_braze is False
    assert 0 < caught.value.retry_after <= 0.5


def test_groups_and_workspaces_are_counted_separately(prefix: str) -> None:
    limiter = small_limiter(prefix)
    other_workspace = small_limiter(prefix, workspace="other")
    for _ in range(3):
        assert limiter.try_acquire(group="catalogs_sync")[0]
    assert limiter.try_acquire(group="catalog_items_sync")[0]
    assert other_workspace.try_acquire(group="catalogs_sync")[0]


def test_background_work_stops_at_its_share_while_interactive_edits_still_pass(
    prefix: str,
) -> None:
    limits = make_limits(
        groups={"catalog_items_async": (10, 60.0)}, clock_scale=60, background_share=0.7
    )
    limiter = make_limiter(limits=limits, prefix=prefix)
    assert limiter.try_acquire(group="catalog_items_async")[0]  # someone is at work
    background = [
        limiter.try_acquire(group="catalog_items_async", lane="background")[0] for _ in range(8)
    ]
    assert background == [True] * 7 + [False]
    interactive = [limiter.try_acquire(group="catalog_items_async")[0] for _ in range(3)]
    assert interactive == [True, True, False]


def test_with_nobody_interactive_background_work_may_use_the_whole_limit(prefix: str) -> None:
    limits = make_limits(
        groups={"catalog_items_sync": (10, 60.0)}, clock_scale=60, background_share=0.7
    )
    limiter = make_limiter(limits=limits, prefix=prefix)
    background = [
        limiter.try_acquire(group="catalog_items_sync", lane="background")[0] for _ in range(11)
    ]
    assert background == [True] * 10 + [False]


def test_an_interactive_request_reserves_headroom_for_one_window(prefix: str) -> None:
    limits = make_limits(
        groups={"catalog_items_sync": (10, 60.0)},
        clock_scale=120,
        background_share=0.5,
        margin_seconds=0.0,
    )
    limiter = make_limiter(limits=limits, prefix=prefix)
    for _ in range(5):
        assert limiter.try_acquire(group="catalog_items_sync", lane="background")[0]
    # An editor arrives: background work now stops at half the limit...
    assert limiter.try_acquire(group="catalog_items_sync")[0]
    assert not limiter.try_acquire(group="catalog_items_sync", lane="background")[0]
    # ...until a whole window (0.5 s here) passes without interactive demand; then the
    # whole limit is background work's again.
    time.sleep(0.6)
    background = [
        limiter.try_acquire(group="catalog_items_sync", lane="background")[0] for _ in range(10)
    ]
    assert background == [True] * 10


def test_a_block_holds_back_every_caller_until_it_ends(prefix: str) -> None:
    limiter = small_limiter(prefix)
    other_process_view = small_limiter(prefix)
    until = limiter.block(group="catalogs_sync", seconds=0.4)
    assert until is not None
    allowed, wait, _ = other_process_view.try_acquire(group="catalogs_sync")
    assert not allowed
    assert 0.2 < wait <= 0.4
    time.sleep(wait + 0.01)
    assert other_process_view.try_acquire(group="catalogs_sync")[0]


def test_remaining_zero_blocks_only_when_our_own_log_still_has_room(prefix: str) -> None:
    limiter = small_limiter(prefix)
    # Someone else (another integration in the workspace) used the quota: block.
    assert limiter.block(group="catalogs_sync", seconds=0.3, only_if_room=True) is not None
    assert not limiter.try_acquire(group="catalogs_sync")[0]


def test_remaining_zero_does_not_block_when_our_own_log_explains_it(prefix: str) -> None:
    limiter = small_limiter(prefix)
    for _ in range(3):
        limiter.acquire(group="catalogs_sync", max_wait=0)
    assert limiter.block(group="catalogs_sync", seconds=30, only_if_room=True) is None
    assert limiter.usage(group="catalogs_sync").blocked_for == 0


def test_usage_reports_the_limit_in_effect_and_what_is_used(prefix: str) -> None:
    limiter = small_limiter(prefix)
    limiter.acquire(group="catalogs_sync", max_wait=0)
    usage = limiter.usage(group="catalogs_sync")
    assert (usage.limit, usage.used, usage.background_limit) == (3, 1, 2)


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.slow
def test_several_processes_together_never_exceed_the_limit(prefix: str) -> None:
    """Three processes take slots as fast as they can; Redis time decides."""
    spec: dict[str, object] = {
        "limits": {
            "groups": {"catalogs_sync": (4, 60.0)},
            "clock_scale": 100,
            "margin_seconds": 0.0,
        },
        "prefix": prefix,
    }
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        runs = pool.map(_take_slots, [spec] * 3)
    times = [t for run in runs for t in run]
    window = 60.0 / 100
    assert _max_in_any_window(times, window) <= 4
    # And it is not trivially slow: about 4 per 0.6 s over 3 s, across all processes.
    assert len(times) >= 4 * int(3.0 / window) - 4


def _take_slots(spec: dict[str, object]) -> list[float]:
    limiter = make_limiter(limits=make_limits(**spec["limits"]), prefix=str(spec["prefix"]))  # type: ignore[arg-type]
    taken: list[float] = []
    deadline = time.time() + 3.0
    while time.time() < deadline:
        allowed, wait, now = limiter.try_acquire(group="catalogs_sync")
        if allowed:
            taken.append(now)
        else:
            time.sleep(min(wait, 0.05))
    return taken


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["fixed", "sliding", "token"])
def test_several_processes_cause_no_429_under_each_sandbox_algorithm(
    braze_sandbox, prefix: str, algorithm: str
) -> None:
    scale = 30.0  # a 60 s window lasts 2 s
    braze_sandbox.admin.configure(
        clock_scale=scale, algorithm=algorithm, limits={"catalog_items_sync": {"limit": 10}}
    )
    since = time.time()
    spec = {
        "url": braze_sandbox.url,
        "api_key": braze_sandbox.api_key,
        "prefix": prefix,
        "item_id": "store-berlin",
        "seconds": 5.0,
        "limits": {"groups": {"catalog_items_sync": (10, 60.0)}, "clock_scale": scale,
                   "margin_seconds": 0.05},
    }  # fmt: skip
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        runs = pool.map(drive_group, [spec] * 3)
    stats = braze_sandbox.admin.group_stats("catalog_items_sync", since=since)
    assert stats["rate_limited"] == 0, stats["status_counts"]
    assert sum(run["braze_429s"] for run in runs) == 0
    # 10 per 2 s for ~5 s: the limiter must not be needlessly slow either.
    assert stats["counted"] >= 20
