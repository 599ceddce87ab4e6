"""``limiter.slot``: the one way a request takes, answers and gives back its limiter slot."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from console.braze.errors import BrazeRateLimited
from console.braze.limiter import RateLimiter, Refusal
from tests.console.braze.helpers import make_limiter, make_limits, try_acquire

GROUP = "catalogs_sync"
# 3 requests per 0.5 s real time (60 s at clock scale 120).
SMALL = {GROUP: (3, 60.0)}


def limiter_for(prefix: str, *, warm: bool) -> RateLimiter:
    limits = make_limits(groups=SMALL, clock_scale=120, margin_seconds=0.0)
    return make_limiter(limits=limits, prefix=prefix, warm=warm)


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def spy(limiter: RateLimiter) -> list[str]:
    """Record the order of the limiter calls a slot makes."""
    calls: list[str] = []
    for name in ("learn", "block", "probe_settle", "probe_release", "observe"):
        original = getattr(limiter, name)

        def recorded(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        setattr(limiter, name, recorded)
    return calls


def fail_inside_a_slot(limiter: RateLimiter, error: Exception, probes: list[str | None]) -> None:
    """Take a slot and raise before any answer, as a lost connection would."""
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        probes.append(slot.permit.probe)
        raise error


def test_a_cold_groups_first_slot_is_the_probe_and_its_answer_ends_the_cold_start(
    prefix: str,
) -> None:
    limiter = limiter_for(prefix, warm=False)
    calls = spy(limiter)
    reset = str(int(time.time()) + 1)
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        assert slot.permit.probe is not None
        refusal = slot.answer(
            answer(200, x_ratelimit_limit="3", x_ratelimit_remaining="2", x_ratelimit_reset=reset)
        )
    assert refusal is None
    assert calls == ["learn", "probe_settle", "observe"]
    assert limiter.redis.exists(limiter.keys(GROUP).alive)
    assert not limiter.redis.exists(limiter.keys(GROUP).probe)
    assert limiter.usage(group=GROUP).learned == 3


def test_an_exception_before_the_answer_gives_the_probe_to_the_next_caller(prefix: str) -> None:
    limiter = limiter_for(prefix, warm=False)
    calls = spy(limiter)
    probes: list[str | None] = []
    with pytest.raises(httpx.ReadTimeout):
        fail_inside_a_slot(limiter, httpx.ReadTimeout("no answer"), probes)
    assert probes[0] is not None
    assert calls == ["probe_release"]
    assert not limiter.redis.exists(limiter.keys(GROUP).probe)
    assert not limiter.redis.exists(limiter.keys(GROUP).alive)  # nothing learnt: still cold
    assert try_acquire(limiter, group=GROUP)[0]  # the next caller probes at once


def test_leaving_without_an_answer_and_without_an_error_releases_the_probe_too(
    prefix: str,
) -> None:
    limiter = limiter_for(prefix, warm=False)
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        probe = slot.permit.probe
    assert probe is not None
    assert not limiter.redis.exists(limiter.keys(GROUP).probe)


def test_a_slot_that_is_not_the_probe_releases_nothing(prefix: str) -> None:
    limiter = limiter_for(prefix, warm=True)
    calls = spy(limiter)
    probes: list[str | None] = []
    with pytest.raises(RuntimeError):
        fail_inside_a_slot(limiter, RuntimeError("boom"), probes)
    assert probes == [None]
    assert calls == []


def test_a_429_blocks_the_group_until_the_reset_before_it_settles_the_probe(prefix: str) -> None:
    limiter = limiter_for(prefix, warm=False)
    calls = spy(limiter)
    reset_at = time.time() + 0.4
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        refusal = slot.answer(
            answer(
                429,
                x_ratelimit_limit="3",
                x_ratelimit_remaining="0",
                x_ratelimit_reset=f"{reset_at * 1000:.0f}",
            )
        )
    assert isinstance(refusal, Refusal)
    assert 0.2 < refusal.wait <= 0.4
    assert refusal.retry_at == pytest.approx(reset_at, abs=0.1)
    # Blocked first, so nobody slips in between the alive marker and the block.
    assert calls == ["learn", "block", "probe_settle"]
    allowed, wait, _now = try_acquire(limiter, group=GROUP)
    assert not allowed
    assert 0.1 < wait <= 0.4


def test_a_429_without_any_header_blocks_for_at_most_a_window(prefix: str) -> None:
    limiter = limiter_for(prefix, warm=True)
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        refusal = slot.answer(answer(429))
    assert refusal is not None
    # The window is 0.5 s; a wait is never trusted beyond max(window, 1 s).
    assert refusal.wait == pytest.approx(0.5)


def test_remaining_zero_while_our_log_has_room_blocks_the_group_until_the_reset(
    prefix: str,
) -> None:
    limiter = limiter_for(prefix, warm=True)
    calls = spy(limiter)
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        refusal = slot.answer(
            answer(
                200,
                x_ratelimit_limit="3",
                x_ratelimit_remaining="0",
                x_ratelimit_reset=f"{(time.time() + 0.3) * 1000:.0f}",
            )
        )
    assert refusal is None
    assert calls == ["learn", "observe", "block"]
    assert limiter.usage(group=GROUP).blocked_for > 0.1  # another integration used the rest


def test_an_answer_without_rate_limit_headers_learns_nothing_but_ends_the_cold_start(
    prefix: str,
) -> None:
    limiter = limiter_for(prefix, warm=False)
    calls = spy(limiter)
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        slot.answer(answer(401))
    assert calls == ["probe_settle", "observe"]
    assert limiter.redis.exists(limiter.keys(GROUP).alive)


def test_a_slot_takes_one_answer(prefix: str) -> None:
    limiter = limiter_for(prefix, warm=True)
    with limiter.slot(GROUP, max_wait=1.0) as slot:
        slot.answer(answer(200))
        with pytest.raises(RuntimeError):
            slot.answer(answer(200))


def test_a_wait_longer_than_the_budget_raises_before_anything_is_sent(prefix: str) -> None:
    limiter = limiter_for(prefix, warm=True)
    for _ in range(3):
        try_acquire(limiter, group=GROUP)
    calls = spy(limiter)
    entered = False
    with pytest.raises(BrazeRateLimited) as caught, limiter.slot(GROUP, max_wait=0.01):
        entered = True
    assert not entered
    assert caught.value.from_braze is False
    assert calls == []
