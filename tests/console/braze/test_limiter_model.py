"""The Lua scripts against the pure-Python model (limiter_model.py) on random interleavings
of sends in both lanes, answers (with others' use and learnt limits), 429s, "remaining 0"
answers, Redis flushes and the cold-start probe's answer, on a clock the test drives.

Plain seeded ``random`` rather than a property-testing library: each seed is one sequence,
a failure names its seed and step, and the suite needs no new dependency.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
import redis

from console.braze.limiter import Permit, RateLimiter
from console.braze.limiter.limits import BURST_FLOOR
from tests.console.braze.helpers import make_limits, redis_url, reset
from tests.console.braze.limiter_model import Config, Model

GROUP = "catalog_items_sync"
LIMIT = 6
WINDOW_S = 60.0  # Braze's window at clock scale 60: one real second ...
SCALE = 60.0
MARGIN_S = 0.05  # ... plus our margin
START_US = 1_800_000_000_000_000
STEPS = 300


@dataclass
class Clock:
    now: int = START_US

    def __call__(self) -> int:
        return self.now


def new_limiter(clock: Clock, prefix: str, burst_share: float) -> RateLimiter:
    limits = make_limits(
        burst_share=burst_share,
        groups={GROUP: (LIMIT, WINDOW_S)},
        clock_scale=SCALE,
        margin_seconds=MARGIN_S,
        align_fixed_windows=False,  # the grid is not modelled
        # Real seconds: a probe's key must outlive a whole sequence (its TTL is Redis's own).
        probe_timeout_seconds=60.0,
    )
    return RateLimiter(
        redis_client=redis.Redis.from_url(redis_url()), limits=limits, prefix=prefix, clock=clock
    )


def model_for(limiter: RateLimiter) -> Model:
    limits = limiter.limits
    span = max(1, round(limits.server_window(GROUP) * 1_000_000))
    return Model(
        Config(
            limit=LIMIT,
            window_us=math.ceil(limits.window(GROUP) * 1_000_000),
            span_us=span,
            share=limits.background_share,
            yield_margin=limits.yield_margin,
            pace_us=math.ceil(limits.window(GROUP) * 1_000_000),
            probe_poll_us=20_000,
            burst_share=limits.burst_share,
            burst_floor=BURST_FLOOR,
        )
    )


def run_sequence(seed: int, prefix: str, burst_share: float = 1.0) -> None:
    rng = random.Random(seed)
    clock = Clock()
    limiter = new_limiter(clock, prefix, burst_share)
    model = model_for(limiter)
    window = model.config.window_us
    permits: list[Permit] = []
    probe: str | None = None
    for step in range(STEPS):
        where = f"seed {seed}, step {step}"
        clock.now += rng.choice([0, rng.randrange(1, window // 20), rng.randrange(1, window)])
        event = rng.choices(
            ["send", "answer", "429", "remaining 0", "flush", "probe answer", "probe lost"],
            weights=[50, 25, 3, 4, 2, 6, 2],
        )[0]
        if event == "send":
            lane = rng.choice(["interactive", "background"])
            take = limiter.take(GROUP, lane)  # type: ignore[arg-type]
            allowed, wait, is_probe, _cold = model.acquire(
                now=clock.now, background=lane == "background", member=f"send-{step}"
            )
            got = (take.allowed, round(take.wait * 1_000_000), take.probe is not None)
            assert got == (allowed, wait, is_probe), where
            if take.allowed:
                permits.append(
                    Permit(waited=0, probe=take.probe, at_us=take.now_us, background=False)
                )
                if take.probe:
                    probe = take.probe
                    model.probe = take.probe
        elif event == "answer" and permits:
            permit = rng.choice(permits[-10:])
            announced = rng.choice([LIMIT, LIMIT, LIMIT + 2, -1])
            remaining = rng.randrange(0, LIMIT + 1)
            got_others = limiter.learn(
                group=GROUP,
                permit=permit,
                limit=str(announced) if announced > 0 else None,
                remaining=str(remaining),
                reset_at=None,
            )
            want = model.learn(limit=announced, remaining=remaining, at=permit.at_us)
            assert got_others == want, where
        elif event in ("429", "remaining 0"):
            seconds = rng.randrange(1, window) / 1_000_000
            until = limiter.block(group=GROUP, seconds=seconds, only_if_room=event != "429")
            want_until = model.block(
                now=clock.now,
                duration=math.ceil(seconds * 1_000_000),
                only_if_room=event != "429",
            )
            assert (None if until is None else round(until * 1_000_000)) == (want_until or None), (
                where
            )
        elif event == "flush":
            reset(limiter, group=GROUP)
            limiter = new_limiter(
                clock, prefix, burst_share
            )  # a new process: it remembers no sends
            model.flush()
            permits, probe = [], None
        elif event == "probe answer" and probe is not None:
            used = rng.randrange(0, LIMIT + 2)
            added = limiter.probe_settle(group=GROUP, token=probe, used=used, reset_at=None)
            assert added == model.settle(now=clock.now, token=probe, used=used), where
            probe = None
        elif event == "probe lost" and probe is not None:
            limiter.probe_release(group=GROUP, token=probe)
            model.release(token=probe)
            probe = None
        usage = limiter.usage(group=GROUP)
        used, blocked, learnt, others = model.usage(now=clock.now)
        assert (usage.used, usage.learned or 0, usage.others) == (used, learnt, others), where
        assert round(usage.blocked_for * 1_000_000) == max(0, blocked - clock.now), where


@pytest.mark.parametrize("seed", range(12))
def test_the_scripts_answer_as_the_model_does(seed: int, prefix: str) -> None:
    run_sequence(seed, prefix)


@pytest.mark.parametrize("seed", range(6))
def test_with_the_even_schedule_the_scripts_answer_as_the_model_does(
    seed: int, prefix: str
) -> None:
    # LIMIT is 6: a stream goes 5 at once (BURST_FLOOR), then one per window / 6.
    run_sequence(100 + seed, prefix, burst_share=0.05)
