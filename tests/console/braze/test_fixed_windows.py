"""The limiter learns Braze's fixed windows from its reset headers and aligns to them."""

from __future__ import annotations

import math
import multiprocessing
import time
from typing import Any, cast

import pytest
import redis

from console.braze.limiter import Permit, RateLimiter
from tests.console.braze.helpers import drive_group, make_limiter, make_limits, reset, try_acquire

GROUP = "catalog_items_async"
# 5 requests per 60 s at clock scale 15: Braze's window lasts 4 real seconds.
LIMIT, SCALE, WINDOW, MARGIN = 5, 15.0, 4, 0.05
OPEN, CLOSE = MARGIN, 1.0 + 2 * MARGIN


def grid_limiter(prefix: str, **kwargs: object) -> RateLimiter:
    limits = make_limits(
        groups={GROUP: (LIMIT, 60.0)},
        clock_scale=SCALE,
        margin_seconds=MARGIN,
        **kwargs,  # type: ignore[arg-type]
    )
    return make_limiter(limits=limits, prefix=prefix)


def redis_now(limiter: RateLimiter) -> float:
    seconds, micros = limiter.redis.time()
    return seconds + micros / 1_000_000


def answer(limiter: RateLimiter, *, reset: int, sent_at: float) -> None:
    permit = Permit(waited=0.0, at_us=round(sent_at * 1_000_000))
    limiter.observe(group=GROUP, permit=permit, reset=str(reset))


def learn_grid(limiter: RateLimiter, *, first_reset: int, windows: int = 4) -> int:
    """Two answers per window, each window ending one window after the last; the last reset."""
    reset = first_reset
    for k in range(windows):
        reset = first_reset + k * WINDOW
        answer(limiter, reset=reset, sent_at=reset - 2.5)
        answer(limiter, reset=reset, sent_at=reset - 2.0)
    return reset


def next_boundary(limiter: RateLimiter) -> int:
    return math.floor(redis_now(limiter) / WINDOW) * WINDOW + WINDOW


@pytest.fixture
def limiter(prefix: str) -> RateLimiter:
    """A limiter that has already learnt the sandbox's grid (boundaries at multiples of W)."""
    aligned = grid_limiter(prefix)
    learn_grid(aligned, first_reset=next_boundary(aligned) - 4 * WINDOW)
    assert aligned.aligned(group=GROUP)
    return aligned


def grid_seen_by_this_process(limiter: RateLimiter) -> None:
    """Learn the grid, then see it in an answer: what a process puts back after a flush."""
    base = next_boundary(limiter)
    learn_grid(limiter, first_reset=base - 4 * WINDOW)
    answer(limiter, reset=base, sent_at=base - 2.0)


def test_it_aligns_after_three_whole_window_steps_each_answered_twice(prefix: str) -> None:
    limiter = grid_limiter(prefix)
    base = next_boundary(limiter)
    learn_grid(limiter, first_reset=base, windows=3)
    assert not limiter.aligned(group=GROUP)
    answer(limiter, reset=base + 3 * WINDOW, sent_at=base + 3 * WINDOW - 2.5)
    assert limiter.aligned(group=GROUP)


def test_resets_that_move_by_a_second_as_a_sliding_log_announces_never_align(prefix: str) -> None:
    limiter = grid_limiter(prefix)
    base = next_boundary(limiter)
    for k in range(12):
        answer(limiter, reset=base + k, sent_at=base + k - 3.5)
        answer(limiter, reset=base + k, sent_at=base + k - 3.4)
    assert not limiter.aligned(group=GROUP)


def test_one_answer_per_window_is_not_evidence_of_a_fixed_window(prefix: str) -> None:
    """A sliding log also announces resets one window apart when requests come one per window."""
    limiter = grid_limiter(prefix)
    base = next_boundary(limiter)
    for k in range(8):
        answer(limiter, reset=base + k * WINDOW, sent_at=base + k * WINDOW - 3.0)
    assert not limiter.aligned(group=GROUP)


def test_short_bursts_whose_reset_is_a_sliding_logs_oldest_plus_a_window_never_align(
    prefix: str,
) -> None:
    """Each burst left within a second of the window start it was told: no proof of a grid."""
    limiter = grid_limiter(prefix)
    base = next_boundary(limiter)
    for k in range(8):
        start = base + k * WINDOW - WINDOW
        answer(limiter, reset=start + WINDOW, sent_at=start + 0.1)
        answer(limiter, reset=start + WINDOW, sent_at=start + 0.6)
    assert not limiter.aligned(group=GROUP)


def test_resets_that_are_not_whole_epoch_seconds_are_ignored(prefix: str) -> None:
    limiter = grid_limiter(prefix)
    base = next_boundary(limiter)
    for k in range(5):
        for form in (f"{base + k * WINDOW}.0", "4", f"{(base + k * WINDOW) * 1000}"):
            permit = Permit(waited=0.0, at_us=(base + k * WINDOW - 2) * 1_000_000)
            limiter.observe(group=GROUP, permit=permit, reset=form)
    assert not limiter.aligned(group=GROUP)


def test_an_answer_that_contradicts_the_grid_drops_back_to_the_sliding_log(prefix: str) -> None:
    limiter = grid_limiter(prefix)
    last = learn_grid(limiter, first_reset=next_boundary(limiter))
    # Sent in the middle of the window ending at last + WINDOW: that is the reset to announce.
    answer(limiter, reset=last + WINDOW, sent_at=last + 1.5)
    assert limiter.aligned(group=GROUP)
    answer(limiter, reset=last + WINDOW + 1, sent_at=last + 1.6)
    assert not limiter.aligned(group=GROUP)


def test_a_429_drops_the_grid_and_it_is_not_learnt_again_during_the_cooldown(
    prefix: str,
) -> None:
    limiter = grid_limiter(prefix)
    last = learn_grid(limiter, first_reset=next_boundary(limiter))
    limiter.block(group=GROUP, seconds=0.01)
    assert not limiter.aligned(group=GROUP)
    learn_grid(limiter, first_reset=last + WINDOW, windows=6)
    assert not limiter.aligned(group=GROUP)


def test_remaining_zero_without_a_429_keeps_the_grid(prefix: str) -> None:
    limiter = grid_limiter(prefix)
    learn_grid(limiter, first_reset=next_boundary(limiter))
    limiter.block(group=GROUP, seconds=0.01, only_if_room=True)
    assert limiter.aligned(group=GROUP)


def test_windows_too_short_for_the_guards_are_never_aligned(prefix: str) -> None:
    # At clock scale 30 a window lasts 2 s, and the guards would leave less than half of it.
    limits = make_limits(groups={GROUP: (LIMIT, 60.0)}, clock_scale=30.0, margin_seconds=MARGIN)
    limiter = make_limiter(limits=limits, prefix=prefix)
    base = math.floor(redis_now(limiter) / 2) * 2 + 2
    for k in range(6):
        for offset in (1.5, 1.2):
            permit = Permit(waited=0.0, at_us=round((base + 2 * k - offset) * 1_000_000))
            limiter.observe(group=GROUP, permit=permit, reset=str(base + 2 * k))
    assert not limiter.aligned(group=GROUP)


def test_alignment_can_be_switched_off(prefix: str) -> None:
    limiter = grid_limiter(prefix, align_fixed_windows=False)
    learn_grid(limiter, first_reset=next_boundary(limiter), windows=6)
    assert not limiter.aligned(group=GROUP)


def _wait_for_an_open_window(limiter: RateLimiter) -> int:
    """Sleep until just after a boundary; returns it (Redis time)."""
    boundary = next_boundary(limiter)
    time.sleep(max(0.0, boundary + OPEN + 0.02 - redis_now(limiter)))
    return boundary


@pytest.mark.slow
def test_aligned_each_window_gets_the_whole_limit_right_after_its_boundary(
    limiter: RateLimiter,
) -> None:
    boundary = _wait_for_an_open_window(limiter)
    taken = [limiter.acquire(group=GROUP, max_wait=10.0).at_us / 1e6 for _ in range(2 * LIMIT)]
    first, second = taken[:LIMIT], taken[LIMIT:]
    assert all(boundary + OPEN <= t < boundary + WINDOW - CLOSE for t in first)
    assert all(boundary + WINDOW + OPEN <= t < boundary + WINDOW + OPEN + 0.3 for t in second)
    # Sooner than the sliding log (L per window plus margin) would ever have allowed.
    assert second[0] - first[0] < WINDOW + MARGIN


@pytest.mark.slow
def test_a_send_near_a_boundary_passes_when_both_windows_have_room_and_counts_in_both(
    limiter: RateLimiter,
) -> None:
    boundary = _wait_for_an_open_window(limiter)
    for _ in range(LIMIT - 1):
        limiter.acquire(group=GROUP, max_wait=10.0)
    time.sleep(max(0.0, boundary + WINDOW - 0.5 - redis_now(limiter)))
    near = limiter.acquire(group=GROUP, max_wait=10.0)
    assert near.waited < 0.05  # a person's edit does not wait out the boundary
    after = [limiter.acquire(group=GROUP, max_wait=10.0).at_us / 1e6 for _ in range(LIMIT)]
    # It may have landed after the boundary, so the next window holds one fewer.
    assert all(boundary + WINDOW + OPEN <= t < boundary + WINDOW + 1 for t in after[:-1])
    assert after[-1] >= boundary + 2 * WINDOW + OPEN


# Background work's share of the window: 0.7 of 5 requests.
BACKGROUND = 3


@pytest.mark.slow
def test_aligned_background_work_is_paced_over_the_window(limiter: RateLimiter) -> None:
    boundary = _wait_for_an_open_window(limiter)
    taken = [
        limiter.acquire(group=GROUP, lane="background", max_wait=10.0).at_us / 1e6
        for _ in range(BACKGROUND)
    ]
    pace = (WINDOW - OPEN - CLOSE) * 0.7 / BACKGROUND
    slots = [boundary + OPEN + n * pace for n in range(BACKGROUND)]
    assert all(slot - 0.005 <= t < slot + 0.1 for slot, t in zip(slots, taken, strict=True)), [
        round(t - slot, 3) for slot, t in zip(slots, taken, strict=True)
    ]
    assert taken[-1] < boundary + WINDOW - CLOSE
    # Its share taken, background work waits for the next window; people still have room.
    assert not try_acquire(limiter, group=GROUP, lane="background")[0]
    assert try_acquire(limiter, group=GROUP)[0]


@pytest.mark.slow
def test_aligned_a_late_background_sender_catches_up_within_the_window(
    limiter: RateLimiter,
) -> None:
    boundary = _wait_for_an_open_window(limiter)
    time.sleep(1.4)  # two pace slots (0.67 s apart) missed, a third due
    allowed = [try_acquire(limiter, group=GROUP, lane="background")[0] for _ in range(4)]
    assert allowed == [True, True, True, False]
    assert redis_now(limiter) < boundary + WINDOW - CLOSE


def _window_counts(times: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for t in times:
        counts[math.floor(t / WINDOW)] = counts.get(math.floor(t / WINDOW), 0) + 1
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["fixed", "sliding"])
def test_against_the_sandbox_it_aligns_only_to_a_fixed_window_server_and_draws_no_429(
    braze_sandbox, prefix: str, redis_client: redis.Redis, algorithm: str
) -> None:
    group = "catalog_items_sync"
    braze_sandbox.admin.configure(
        clock_scale=SCALE, algorithm=algorithm, limits={group: {"limit": 10}}
    )
    since = time.time()
    spec = {
        "url": braze_sandbox.url,
        "api_key": braze_sandbox.api_key,
        "prefix": prefix,
        "item_id": "store-berlin",
        "seconds": 20.0,
        "spacing": 0.3,
        "limits": {"groups": {group: (10, 60.0)}, "clock_scale": SCALE, "margin_seconds": MARGIN},
    }
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = pool.map(drive_group, [spec] * 2)
    stats = braze_sandbox.admin.group_stats(group, since=since)
    assert stats["rate_limited"] == 0, stats["status_counts"]
    assert sum(run["braze_429s"] for run in runs) == 0
    limiter = make_limiter(
        limits=make_limits(groups={group: (10, 60.0)}, clock_scale=SCALE, margin_seconds=MARGIN),
        prefix=prefix,
    )
    assert limiter.aligned(group=group) is (algorithm == "fixed")
    if algorithm == "fixed":
        assert stats["peak_requests_in_fixed_window"] == 10
        # Once aligned (the fourth window), the server's windows are filled to the limit.
        counts = _window_counts([t for run in runs for t in run["sent_at"]])
        assert [counts[k] for k in sorted(counts)[1:-1]][-1] == 10, counts


def test_the_sustained_rate_for_etas_is_a_limit_per_braze_window_once_aligned(
    prefix: str,
) -> None:
    limiter = grid_limiter(prefix)
    assert limiter.requests_per_second(group=GROUP) == pytest.approx(LIMIT / (WINDOW + MARGIN))
    learn_grid(limiter, first_reset=next_boundary(limiter))
    assert limiter.requests_per_second(group=GROUP) == pytest.approx(LIMIT / WINDOW)


@pytest.mark.slow
def test_after_a_redis_flush_the_grid_put_back_takes_the_probe_in_the_current_window(
    prefix: str,
) -> None:
    limiter = grid_limiter(prefix, gather_seconds=0.1)
    grid_seen_by_this_process(limiter)
    boundary = _wait_for_an_open_window(limiter)
    limiter.acquire(group=GROUP, max_wait=10.0)  # a send of its own to put back
    reset(limiter, group=GROUP)  # as a Redis flush would
    assert not limiter.aligned(group=GROUP)
    permit = limiter.acquire(group=GROUP, max_wait=10.0)
    assert limiter.aligned(group=GROUP)
    # The window is not given up: the probe's answer will tell what dead processes sent.
    assert permit.probe is not None
    assert permit.at_us / 1e6 < boundary + WINDOW - CLOSE


@pytest.mark.slow
def test_after_a_redis_flush_into_a_window_the_sends_put_back_fill_the_probe_waits_for_the_next(
    prefix: str,
) -> None:
    limiter = grid_limiter(prefix, gather_seconds=0.1)
    grid_seen_by_this_process(limiter)
    boundary = _wait_for_an_open_window(limiter)
    for _ in range(LIMIT):
        limiter.acquire(group=GROUP, max_wait=10.0)
    reset(limiter, group=GROUP)
    permit = limiter.acquire(group=GROUP, max_wait=10.0)
    assert permit.probe is not None
    assert permit.at_us / 1e6 >= boundary + WINDOW + OPEN


def test_a_429_on_the_cold_start_probe_keeps_the_grid(prefix: str) -> None:
    """The probe's 429 says our log lacked sends (of dead processes), not that the grid is wrong."""
    limiter = grid_limiter(prefix)
    learn_grid(limiter, first_reset=next_boundary(limiter))
    limiter.block(group=GROUP, seconds=0.01, keep_grid=True)
    assert limiter.aligned(group=GROUP)


def test_a_process_that_drew_a_429_does_not_put_the_grid_back(prefix: str) -> None:
    limiter = grid_limiter(prefix)
    grid_seen_by_this_process(limiter)
    limiter.acquire(group=GROUP, max_wait=10.0)
    limiter.block(group=GROUP, seconds=0.01)
    reset(limiter, group=GROUP)
    permit = limiter.acquire(group=GROUP, max_wait=10.0)
    if permit.probe:
        limiter.probe_settle(group=GROUP, token=permit.probe)
    assert not limiter.aligned(group=GROUP)


@pytest.mark.slow
def test_aligned_background_work_waits_out_the_boundary_that_people_may_use(
    limiter: RateLimiter,
) -> None:
    boundary = _wait_for_an_open_window(limiter)
    time.sleep(max(0.0, boundary + WINDOW - 0.5 - redis_now(limiter)))
    assert try_acquire(limiter, group=GROUP)[0]
    allowed, wait, _now = try_acquire(limiter, group=GROUP, lane="background")
    assert not allowed
    assert 0.5 < wait <= 0.5 + OPEN + 0.05


@pytest.mark.slow
def test_sends_just_before_the_previous_window_still_count_for_it_at_the_boundary(
    limiter: RateLimiter,
) -> None:
    """Sent in the guard before window k-1 began, they may have landed in it: k-1 is full."""
    boundary = next_boundary(limiter)
    log_key = limiter.keys(GROUP).log
    early = round((boundary - WINDOW - 0.5) * 1_000_000)
    limiter.redis.zadd(log_key, {f"early-{n}": early + n for n in range(LIMIT)})
    time.sleep(max(0.0, boundary + 0.005 - redis_now(limiter)))
    allowed, wait, _now = try_acquire(limiter, group=GROUP)
    assert not allowed
    assert wait <= OPEN


def _fill(limiter: RateLimiter, at: float) -> None:
    """L sends in the log at one moment, as a sliding-log burst leaves them."""
    start = round(at * 1_000_000)
    limiter.redis.zadd(limiter.keys(GROUP).log, {f"burst-{n}": start + n for n in range(LIMIT)})


@pytest.mark.slow
def test_guard_sends_braze_counted_before_the_boundary_no_longer_count_after_it(
    limiter: RateLimiter,
) -> None:
    """The sliding log's burst just before the first aligned window must not fill it twice."""
    boundary = next_boundary(limiter)
    _fill(limiter, boundary - 0.5)
    time.sleep(max(0.0, boundary + OPEN + 0.02 - redis_now(limiter)))
    assert not try_acquire(limiter, group=GROUP)[0]  # counted in both windows, unanswered
    for n in range(LIMIT):
        answer(limiter, reset=boundary, sent_at=boundary - 0.5 + n / 1e6)
    taken = [try_acquire(limiter, group=GROUP)[0] for _ in range(LIMIT + 1)]
    assert taken == [True] * LIMIT + [False]


@pytest.mark.slow
def test_guard_sends_braze_counted_after_the_boundary_no_longer_count_before_it(
    limiter: RateLimiter,
) -> None:
    boundary = _wait_for_an_open_window(limiter)
    _fill(limiter, boundary + WINDOW - 0.5)  # in the closing guard: this window or the next
    assert not try_acquire(limiter, group=GROUP)[0]
    for n in range(LIMIT):
        answer(limiter, reset=boundary + 2 * WINDOW, sent_at=boundary + WINDOW - 0.5 + n / 1e6)
    assert try_acquire(limiter, group=GROUP)[0]


@pytest.mark.slow
def test_guard_sends_still_count_in_the_window_braze_named(limiter: RateLimiter) -> None:
    boundary = next_boundary(limiter)
    _fill(limiter, boundary - 0.5)
    time.sleep(max(0.0, boundary + OPEN + 0.02 - redis_now(limiter)))
    for n in range(LIMIT):
        answer(limiter, reset=boundary + WINDOW, sent_at=boundary - 0.5 + n / 1e6)
    assert not try_acquire(limiter, group=GROUP)[0]


@pytest.mark.slow
def test_background_guard_sends_braze_counted_before_the_boundary_leave_its_share_whole_after_it(
    limiter: RateLimiter,
) -> None:
    """A background job's last sliding-log sends before the first aligned window, once Braze
    has named the window that counted them, no longer take that job's share of the next."""
    boundary = next_boundary(limiter)
    start = round((boundary - 0.5) * 1_000_000)
    burst = {f"bg-burst-{n}": start + n for n in range(BACKGROUND)}
    limiter.redis.zadd(limiter.keys(GROUP).log, burst)
    limiter.redis.zadd(limiter.keys(GROUP).bg, burst)
    for n in range(BACKGROUND):
        permit = Permit(waited=0.0, at_us=start + n, background=True)
        limiter.observe(group=GROUP, permit=permit, reset=str(boundary))
    time.sleep(max(0.0, boundary + OPEN + 0.02 - redis_now(limiter)))
    assert try_acquire(limiter, group=GROUP, lane="background")[0]


@pytest.mark.slow
def test_people_s_guard_sends_settled_before_the_boundary_do_not_free_background_slots(
    limiter: RateLimiter,
) -> None:
    """Settling people's sends frees the total only: background work's own log keeps its
    guard sends in both windows until Braze names theirs."""
    boundary = next_boundary(limiter)
    start = round((boundary - 0.5) * 1_000_000)
    limiter.redis.zadd(
        limiter.keys(GROUP).bg, {f"bg-burst-{n}": start + n for n in range(BACKGROUND)}
    )
    limiter.redis.zadd(
        limiter.keys(GROUP).log, {f"bg-burst-{n}": start + n for n in range(BACKGROUND)}
    )
    limiter.redis.zadd(limiter.keys(GROUP).log, {"person": start + BACKGROUND})
    permit = Permit(waited=0.0, at_us=start + BACKGROUND)
    limiter.observe(group=GROUP, permit=permit, reset=str(boundary))
    time.sleep(max(0.0, boundary + OPEN + 0.02 - redis_now(limiter)))
    assert not try_acquire(limiter, group=GROUP, lane="background")[0]
    assert try_acquire(limiter, group=GROUP)[0]


def _scores(r: redis.Redis, key: str) -> list[float]:
    pairs = cast("list[tuple[bytes, float]]", r.zrange(key, 0, -1, withscores=True))
    return [score for _member, score in pairs]


def _group_state(limiter: RateLimiter) -> dict[str, object]:
    """What learn and observe leave in Redis for the group (sets' members are random ids:
    their scores), and what the process keeps."""
    keys = limiter.keys(GROUP)
    r = limiter.redis
    return {
        "learnt": r.get(keys.learnt),
        "others": r.hgetall(keys.others),
        "grid": r.get(keys.grid),
        "gridobs": r.hgetall(keys.gridobs),
        "earlier": _scores(r, keys.settled_earlier),
        "later": _scores(r, keys.settled_later),
        "limit": limiter.limit(GROUP),
        "phase": limiter.grid._phase.get(GROUP) if limiter.grid else None,
    }


def test_an_answer_learnt_and_observed_in_one_round_trip_leaves_what_two_calls_leave(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    apart = grid_limiter(f"{prefix}:apart")
    together = grid_limiter(f"{prefix}:together")
    trips: list[int] = []
    evalsha = together.redis.evalsha

    def counted(*args: Any) -> Any:
        trips.append(1)
        return evalsha(*args)

    monkeypatch.setattr(together.redis, "evalsha", counted)
    first = next_boundary(apart) - 6 * WINDOW
    # Answers of a fixed-window server: the grid is learnt on the way, guard sends are
    # settled, others' use and a raised limit are learnt.
    answers = []
    for k in range(6):
        reset = first + k * WINDOW
        for sent_at, remaining in ((reset - 3.9, 7), (reset - 2.5, 5), (reset - 0.5, 3)):
            answers.append((reset, sent_at, remaining))
    for reset, sent_at, remaining in answers:
        permit = Permit(waited=0.0, at_us=round(sent_at * 1_000_000), background=True)
        at = float(reset)
        apart.learn(group=GROUP, permit=permit, limit="8", remaining=f"{remaining}", reset_at=at)
        apart.observe(group=GROUP, permit=permit, reset=str(reset))
        before = len(trips)
        together.answered(
            group=GROUP,
            permit=permit,
            limit="8",
            remaining=f"{remaining}",
            reset_at=at,
            reset=str(reset),
        )
        assert len(trips) == before + 1, "one round trip per answer"
        assert _group_state(together) == _group_state(apart)
    assert together.aligned(group=GROUP)
    assert together.limit(GROUP) == 8
