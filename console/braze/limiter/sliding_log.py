"""The limiter: a sliding log per workspace and group in Redis, which every process calls
before each request (README: "The sliding log", "Learned limits", "Being a good neighbour").

The cold start (``cold_start.py``) and the learnt fixed-window grid (``grid.py``) are parts
of it; callers use :meth:`RateLimiter.slot`, which runs the whole protocol (``slot.py``).
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from console.braze.errors import BrazeRateLimited, BrazeUnavailable
from console.braze.limiter import grid as grid_module
from console.braze.limiter.cold_start import ColdStart
from console.braze.limiter.grid import FixedWindowGrid
from console.braze.limiter.keys import GroupKeys
from console.braze.limiter.limits import BURST_FLOOR, BrazeLimits, Lane, background_room
from console.braze.limiter.permit import Permit
from console.braze.limiter.scripts import Clock, Script
from console.braze.limiter.slot import Slot
from console.metrics import record_limiter_refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupUsage:
    group: str
    limit: int  # in effect: the learnt one unless overridden
    background_limit: int
    window_seconds: float  # real seconds, margin included
    used: int
    blocked_for: float
    configured: int = 0
    learned: int | None = None  # what Braze last announced (X-RateLimit-Limit)
    others: int = 0  # requests of other clients seen in Braze's window


@dataclass(frozen=True)
class Take:
    """One acquire script's answer."""

    allowed: bool
    wait: float  # seconds
    now_us: int  # Redis time
    probe: str | None  # the probe's token when this slot is the cold-start probe
    gathering: bool  # a cold start's gathering: everybody waits it out


class RateLimiter:
    def __init__(
        self,
        *,
        redis_client: redis.Redis,
        limits: BrazeLimits,
        sleep: Callable[[float], None] = time.sleep,
        prefix: str = "braze:rl",
        clock: Clock | None = None,
    ) -> None:
        self.redis = redis_client
        self.limits = limits
        self._sleep = sleep
        self._prefix = prefix
        self._keys: dict[str, GroupKeys] = {}  # named once per group (every call needs them)
        self.grid = (
            FixedWindowGrid(redis_client=redis_client, limits=limits, keys=self.keys, clock=clock)
            if limits.align_fixed_windows
            else None
        )
        self.cold_start = ColdStart(
            redis_client=redis_client, limits=limits, keys=self.keys, grid=self.grid, clock=clock
        )
        grid_source = grid_module.ACQUIRE_SOURCE if self.grid is not None else None
        self._acquire = Script(
            redis_client, *filter(None, [grid_source]), "acquire.lua", clock=clock
        )
        self._block = Script(redis_client, "block.lua", clock=clock)
        self._usage = Script(redis_client, "usage.lua", clock=clock)
        self._learn = Script(redis_client, "learn.lua", clock=clock)
        # An answer's learn and grid observation in one round trip (answered).
        self._learn_observe = (
            Script(redis_client, "learn.lua", "observe.lua", clock=clock, together=True)
            if self.grid is not None
            else None
        )
        # The limit in effect per group as Redis last said (learnt from Braze, or configured).
        self._in_effect: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"RateLimiter(workspace={self.limits.workspace!r})"

    def keys(self, group: str) -> GroupKeys:
        keys = self._keys.get(group)
        if keys is None:
            keys = GroupKeys.of(prefix=self._prefix, workspace=self.limits.workspace, group=group)
            self._keys[group] = keys
        return keys

    def limit(self, group: str) -> int:
        """The limit in effect: the one Braze announced (as last seen here), unless overridden."""
        if group in self.limits.overrides:
            return self.limits.limit(group)
        return self._in_effect.get(group, self.limits.limit(group))

    def _window_us(self, group: str) -> int:
        return math.ceil(self.limits.window(group) * 1_000_000)

    def _server_window_us(self, group: str) -> int:
        return max(1, round(self.limits.server_window(group) * 1_000_000))

    def _ttl_ms(self, group: str, windows: int) -> int:
        return max(1, math.ceil(self.limits.server_window(group) * windows * 1000))

    def take(self, group: str, lane: Lane, share: float | None = None) -> Take:
        """One attempt at a slot, without waiting."""
        token = uuid.uuid4().hex
        window_us = self._window_us(group)
        grid_args: dict[str, int] = (
            self.grid.acquire_args(group, lane)
            if self.grid is not None
            else {"grid_span_us": 0, "grid_opening_us": 0, "grid_closing_us": 0}
        )
        span, opening, closing = (
            grid_args["grid_span_us"],
            grid_args["grid_opening_us"],
            grid_args["grid_closing_us"],
        )
        args: dict[str, Any] = {
            "limit": self.limits.limit(group),
            "use_learnt": group not in self.limits.overrides,
            "background": lane == "background",
            "share": self.limits.background_share if share is None else share,
            "yield_margin": self.limits.yield_margin,
            "window_us": window_us,
            # On a grid the previous window may still count sends back to its opening guard.
            "keep_us": max(window_us, 2 * span + opening + closing),
            # While others are seen, background sends off the grid are paced over the whole
            # window (margin included): a shorter span sends the window's share early and then
            # waits for the log, which leaves Braze's windows short by turns.
            "pace_us": window_us if self.limits.pace_share > 0 else 0,
            # A stream of sends is spread evenly over the window, after a small burst: a
            # window's burst would be copied by the log into every later window, one clump
            # a window + margin + lateness apart, which Braze's windows cut by turns.
            "burst_share": self.limits.burst_share,
            "burst_floor": BURST_FLOOR,
            "member": token,
            **self.cold_start.acquire_args(group),
            **grid_args,
        }
        try:
            allowed, wait_us, now_us, probing, cold, episode, limit, _budget = self._acquire(
                keys=self.keys(group).pick(*_ACQUIRE_KEYS), args=args
            )
        except redis.RedisError as exc:
            # Sending without the shared limiter could spend other processes' quota: refuse.
            raise BrazeUnavailable(
                f"The Braze rate limiter (Redis) is unavailable: {type(exc).__name__}"
            ) from None
        self._in_effect[group] = int(limit)
        if cold and episode:
            self.cold_start.put_back(group, episode)
        if allowed:
            self.cold_start.remember(group, int(now_us), token)
        return Take(
            allowed=bool(allowed),
            wait=int(wait_us) / 1_000_000,
            now_us=int(now_us),
            probe=token if allowed and probing else None,
            gathering=cold == 2,
        )

    def acquire(
        self,
        *,
        group: str,
        lane: Lane = "interactive",
        max_wait: float,
        share: float | None = None,
    ) -> Permit:
        """Wait (up to ``max_wait`` seconds) for a slot.

        Raises BrazeRateLimited, with the time a slot frees up, when that is too far off.
        A permit with ``probe`` set is the group's cold-start probe: its caller must pass
        Braze's answer to :meth:`probe_settle`, or call :meth:`probe_release` without one
        (:meth:`slot` does both). ``share`` replaces ``background_share`` for this
        background call (an approver may let a bulk job use the whole limit: 1.0).
        """
        started = time.monotonic()
        while True:
            take = self.take(group, lane, share)
            waited = time.monotonic() - started
            if take.allowed:
                return Permit(
                    waited=waited,
                    probe=take.probe,
                    at_us=take.now_us,
                    background=lane == "background",
                )
            if take.gathering:
                # Once per Redis flush and only ``gather_seconds`` long: every caller waits
                # it out, whatever its budget, or the first one would probe blind.
                self._sleep(take.wait)
                continue
            if waited + take.wait > max_wait:
                record_limiter_refusal(group=group, lane=lane)
                raise BrazeRateLimited(
                    f"Braze limit group {group!r} is full for another {take.wait:.2f}s",
                    group=group,
                    retry_at=take.now_us / 1_000_000 + take.wait,
                    from_braze=False,
                )
            # A little jitter so processes woken for the same slot do not all collide.
            self._sleep(take.wait + random.uniform(0, min(0.005, take.wait / 20)))

    def slot(
        self,
        group: str,
        lane: Lane = "interactive",
        *,
        max_wait: float,
        share: float | None = None,
    ) -> Slot:
        """A slot for one request, as a context manager that owns the protocol (slot.py)."""
        return Slot(self, group=group, lane=lane, max_wait=max_wait, share=share)

    def block(
        self, *, group: str, seconds: float, only_if_room: bool = False, keep_grid: bool = False
    ) -> float | None:
        """Block ``group`` for every process for ``seconds``; returns the epoch it ends.

        With ``only_if_room`` (Braze reported ``remaining: 0``) the block is set only when our
        own log still has room: otherwise the log already holds callers back until a slot
        frees, and blocking would waste the next window. A 429 drops a learnt grid unless
        ``keep_grid``: a cold-start probe's 429 is explained by sends nobody could put back.
        """
        if not only_if_room and not keep_grid and self.grid is not None:
            self.grid.forget(group)
        args = {
            "duration_us": math.ceil(max(seconds, 0.0) * 1_000_000),
            "only_if_room": only_if_room,
            "limit": self.limit(group),
            "window_us": self._window_us(group),
            "cooldown_ms": self._ttl_ms(group, self.limits.cooldown_windows),
            "keep_grid": keep_grid,
        }
        try:
            until_us, _now = self._block(
                keys=self.keys(group).pick("blocked", "log", "grid", "gridobs", "gridoff"),
                args=args,
            )
        except redis.RedisError:
            log.warning("could not record a Braze block for group %s", group)
            return None
        if not until_us:
            return None
        log.info("Braze group %s blocked for %.2fs for every process", group, seconds)
        return int(until_us) / 1_000_000

    def probe_settle(
        self, *, group: str, token: str, used: int | None = None, reset_at: float | None = None
    ) -> int:
        """End the cold start with the probe's answer (cold_start.py)."""
        return self.cold_start.settle(
            group=group, token=token, limit=self.limit(group), used=used, reset_at=reset_at
        )

    def probe_release(self, *, group: str, token: str) -> None:
        """Give up a probe that got no answer, so the next caller probes at once."""
        self.cold_start.release(group=group, token=token)

    def observe(self, *, group: str, permit: Permit, reset: str | None) -> None:
        """Learn from an answer's ``X-RateLimit-Reset`` whether Braze counts fixed windows."""
        if self.grid is not None:
            self.grid.observe(group=group, permit=permit, reset=reset)

    def aligned(self, *, group: str) -> bool:
        """Whether the group takes slots on Braze's learnt fixed-window grid."""
        return self.grid is not None and self.grid.aligned(group=group)

    def requests_per_second(
        self, *, group: str, lane: Lane = "interactive", share: float | None = None
    ) -> float:
        """What the group sustains in ``lane``: the requests per window it may take (the limit
        in effect; for background work its share, less what others are seen to use), per
        Braze window once aligned, else per window + margin."""
        try:
            aligned = self.aligned(group=group)
            usage: GroupUsage | None = self.usage(group=group)
        except redis.RedisError:
            aligned, usage = False, None
        limit = usage.limit if usage else self.limit(group)
        per_window = limit
        if lane == "background":
            share = self.limits.background_share if share is None else share
            others = usage.others if usage else 0
            per_window = background_room(
                limit, share=share, others=others, margin=self.limits.yield_margin
            )
        window = self.limits.server_window(group) if aligned else self.limits.window(group)
        return per_window / window

    def learn(
        self,
        *,
        group: str,
        permit: Permit | None,
        limit: str | None,
        remaining: str | None,
        reset_at: float | None,
    ) -> int | None:
        """Keep what an answer's ``X-RateLimit-*`` headers say: the limit in effect for the
        workspace and group, and how many requests in Braze's window are not ours.

        Returns that count (None when the answer did not say). Never raises: a header we
        cannot read leaves the configured limit and the last count in place.
        """
        args = self._learn_args(
            group=group, permit=permit, limit=limit, remaining=remaining, reset_at=reset_at
        )
        if args is None:
            return None
        try:
            others, _fixed = self._learn(keys=self._learn_keys(group), args=args)
        except redis.RedisError:
            log.warning("could not record Braze's rate-limit headers for group %s", group)
            return None
        return self._learnt(group, args, others)

    def answered(
        self,
        *,
        group: str,
        permit: Permit,
        limit: str | None,
        remaining: str | None,
        reset_at: float | None,
        reset: str | None,
    ) -> None:
        """``learn`` then ``observe`` for one answer, in one round trip to Redis when both
        have something to do (every answer of a steady stream of requests)."""
        args = self._learn_args(
            group=group, permit=permit, limit=limit, remaining=remaining, reset_at=reset_at
        )
        grid, together = self.grid, self._learn_observe
        call = None
        if grid is not None and args is not None:
            call = grid.observe_call(group=group, permit=permit, reset=reset)
        if (
            grid is None
            or together is None
            or args is None
            or call is None
            or call[1]["ttl_ms"] != args["ttl_ms"]
        ):
            self.learn(
                group=group, permit=permit, limit=limit, remaining=remaining, reset_at=reset_at
            )
            self.observe(group=group, permit=permit, reset=reset)
            return
        observe_keys, observe_args = call
        try:
            (others, _fixed), (outcome, phase) = together(
                keys={**self._learn_keys(group), **observe_keys}, args={**args, **observe_args}
            )
        except redis.RedisError:
            log.warning("could not record Braze's rate-limit headers for group %s", group)
            return
        self._learnt(group, args, others)
        grid.observed(group=group, outcome=int(outcome), phase=int(phase))

    def _learn_keys(self, group: str) -> dict[str, str]:
        return self.keys(group).pick("learnt", "log", "others", "grid")

    def _learn_args(
        self,
        *,
        group: str,
        permit: Permit | None,
        limit: str | None,
        remaining: str | None,
        reset_at: float | None,
    ) -> dict[str, Any] | None:
        """learn.lua's arguments; None when a header cannot be read."""
        try:
            announced = int(limit) if limit is not None else -1
            left = int(remaining) if remaining is not None else -1
        except ValueError:
            return None
        if announced <= 0:
            announced = -1
        return {
            "limit": announced,
            "remaining": left,
            "reset_us": -1 if reset_at is None else math.ceil(reset_at * 1_000_000),
            "at_us": permit.at_us if permit is not None else 0,
            "span_us": self._server_window_us(group),
            "ttl_ms": self._ttl_ms(group, self.limits.grid_ttl_windows),
        }

    def _learnt(self, group: str, args: dict[str, Any], others: Any) -> int | None:
        """What learn.lua answered: the limit in effect, and others' count (None: unknown)."""
        announced = int(args["limit"])
        if announced > 0 and group not in self.limits.overrides:
            self._in_effect[group] = announced
        return None if int(others) < 0 else int(others)

    def usage(self, *, group: str) -> GroupUsage:
        used, blocked_us, now_us, learned, others = self._usage(
            keys=self.keys(group).pick("log", "blocked", "learnt", "others"),
            args={"window_us": self._window_us(group)},
        )
        configured = self.limits.limit(group)
        learned = int(learned) or None
        limit = configured if group in self.limits.overrides or learned is None else learned
        return GroupUsage(
            group=group,
            limit=limit,
            background_limit=self.limits.background_limit(group, limit),
            window_seconds=self.limits.window(group),
            used=int(used),
            blocked_for=max(0.0, (int(blocked_us) - int(now_us)) / 1_000_000),
            configured=configured,
            learned=learned,
            others=int(others),
        )


_ACQUIRE_KEYS = (
    "log",
    "bg",
    "blocked",
    "learnt",
    "alive",
    "probe",
    "gather",
    "others",
    "slot",
    "steady",
    "grid",
    "settled_earlier",
    "settled_later",
)
