"""The global Braze rate limiter: one Redis sliding-window log per workspace and limit group.

Every process that calls Braze (web, Celery workers, management commands) takes a slot here
before each request, so the limit holds across all of them; Celery's ``rate_limit`` is per
worker and cannot do this. The Lua scripts run atomically and read Redis ``TIME``, so the
hosts' clocks do not matter.

Why a sliding log: it guarantees at most L sends in any interval of one window, which is
also safe against a fixed-window or token-bucket server (performance-and-bulk.md §2). A
small margin is added to each window because requests that leave W apart can arrive less
than W apart.

Background work must also pass a smaller sub-log (``background_share`` of the limit) while
people are at work: any interactive request marks the group for one window, and while
that mark stands background work leaves the rest of the limit to them. With nobody
interactive, background work (a mirror sync, a bulk job) may use the whole limit, so the
reservation costs throughput only when someone actually needs the headroom.

When Braze says the quota is gone (a 429, or ``remaining`` reaching 0 while our own log
still had room, i.e. another integration shares the workspace) the whole group is blocked
until the announced reset, for every process.

Cold start. The log lives in Redis; after a Redis restart or flush (or on a fresh
deployment) it is empty while Braze's window may still hold the requests of the last
seconds, so a burst of a full window would run into a 429. Each group therefore has an
``alive`` marker (no TTL). While it is missing, the acquire script lets exactly one caller
through as a *probe* (a ``probe`` key with a short TTL, so a probe whose answer never comes
is retried) and makes every other caller, in both lanes, wait. The probe's answer tells
how much of Braze's window is used (``X-RateLimit-Limit`` minus ``-Remaining``); the
client seeds the log with that many entries (:meth:`RateLimiter.probe_settle`) and sets the
marker. Seeding once from a single answer, with nothing else in flight, avoids the race
that reconciling on every answer has (answers to concurrent requests count different sets
of sends).
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis
from django.conf import settings

from console.braze.errors import BrazeRateLimited, BrazeUnavailable

log = logging.getLogger(__name__)

type Lane = Literal["interactive", "background"]

GROUPS: tuple[str, ...] = (
    "catalogs_sync",
    "catalog_items_sync",
    "catalog_items_async",
    "preference_center_read",
    "preference_center_write",
    "scim",
    "default",
)


@dataclass(frozen=True)
class GroupLimit:
    limit: int
    window_seconds: float  # in Braze's (unscaled) time


@dataclass(frozen=True)
class BrazeLimits:
    groups: Mapping[str, GroupLimit]
    workspace: str
    background_share: float = 0.8
    # Benchmarks run the sandbox S times faster; the console must then use windows of W/S.
    clock_scale: float = 1.0
    margin_seconds: float = 0.5
    # Real seconds a cold-start probe may stay unanswered before another caller probes.
    probe_timeout_seconds: float = 5.0

    def window(self, group: str) -> float:
        """The real-time window the limiter enforces, margin included."""
        return self.server_window(group) + self.margin_seconds

    def server_window(self, group: str) -> float:
        """Braze's window in real seconds (scaled in benchmarks), without our margin."""
        return self.groups[group].window_seconds / self.clock_scale

    def limit(self, group: str) -> int:
        return self.groups[group].limit

    def background_limit(self, group: str) -> int:
        return max(1, math.floor(self.groups[group].limit * self.background_share))


def limits_from_settings() -> BrazeLimits:
    config: Mapping[str, Any] = settings.BRAZE_RATE_LIMITS
    groups = {
        name: GroupLimit(int(limit), float(window))
        for name, (limit, window) in config["groups"].items()
    }
    missing = set(GROUPS) - set(groups)
    if missing:
        raise ValueError(f"BRAZE_RATE_LIMITS lacks groups {sorted(missing)}")
    return BrazeLimits(
        groups=groups,
        workspace=str(config["workspace"]),
        background_share=float(config["background_share"]),
        clock_scale=float(config["clock_scale"]),
        margin_seconds=float(config["margin_seconds"]),
        probe_timeout_seconds=float(config.get("probe_timeout_seconds", 5.0)),
    )


def limits_in_effect() -> list[dict[str, Any]]:
    """Rows for pages: each group's configured limit (Braze time) and background share."""
    limits = limits_from_settings()
    return [
        {
            "group": name,
            "limit": group.limit,
            "window_seconds": group.window_seconds,
            "background_limit": limits.background_limit(name),
        }
        for name, group in limits.groups.items()
    ]


# KEYS: total log, background log, blocked-until, interactive-demand mark, alive marker,
# probe. ARGV: limit, background limit (0 for the interactive lane), window (µs), unique
# member suffix (also the probe's token), probe TTL (ms), poll interval while another
# caller probes (µs). Returns {allowed, wait_us, now_us, is_probe}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return {0, blocked - now, now, 0} end
local window = tonumber(ARGV[3])
local bg = tonumber(ARGV[2])
if bg == 0 then
  redis.call('SET', KEYS[4], '1', 'PX', math.ceil(window / 1000))
end
local probing = 0
if redis.call('EXISTS', KEYS[5]) == 0 then
  local probe_ttl = redis.call('PTTL', KEYS[6])
  if probe_ttl > 0 then
    return {0, math.min(probe_ttl * 1000, tonumber(ARGV[6])), now, 0}
  end
  probing = 1
end
local function wait_for(key, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n < limit then return 0 end
  local entry = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return tonumber(entry[2]) + window - now
end
local wait = wait_for(KEYS[1], tonumber(ARGV[1]))
if bg > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  wait = math.max(wait, wait_for(KEYS[2], bg))
end
if wait > 0 then return {0, math.ceil(wait), now, 0} end
local member = now .. ':' .. ARGV[4]
local ttl = math.ceil(window / 1000) + 1000
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], ttl)
if bg > 0 then
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if probing == 1 then
  redis.call('SET', KEYS[6], ARGV[4], 'PX', tonumber(ARGV[5]))
end
return {1, 0, now, probing}
"""

# KEYS: blocked-until, total log. ARGV: duration (µs), only-if-our-log-has-room (0/1),
# limit, window (µs). Returns {blocked_until_us, now_us} (0 when nothing was blocked).
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[2] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {0, now} end
end
local duration = tonumber(ARGV[1])
local untilv = now + duration
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilv > current then
  redis.call('SET', KEYS[1], untilv, 'PX', math.ceil(duration / 1000) + 1000)
  return {untilv, now}
end
return {current, now}
"""

# KEYS: total log, alive marker, probe. ARGV: probe token, requests Braze counts in its
# window (-1: unknown), when Braze releases the oldest of them (epoch µs; -1: unknown),
# window with margin (µs), Braze's window without margin (µs), member suffix.
# Returns {entries added, now_us}.
#
# The probe's own log entry stands for one of Braze's requests; the others are added. When
# they were sent is unknown: only the reset is announced. With a fixed-window server all of
# them leave at the reset, with a sliding log only the oldest does and the rest may be as
# recent as now, and a token bucket is full again at its reset. The oldest is therefore
# timed to leave at the reset and the rest a full window from now: never fewer than the
# server still counts, whatever its algorithm (one window of over-counting at worst).
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local used = tonumber(ARGV[2])
local added = 0
if used > 1 then
  local window = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local first = now
  local reset = tonumber(ARGV[3])
  if reset >= 0 then first = math.min(reset - tonumber(ARGV[5]), now) end
  for i = 1, used - 1 do
    local score = now
    if i == 1 then score = first end
    if score > now - window then
      redis.call('ZADD', KEYS[1], score, now .. ':braze:' .. i .. ':' .. ARGV[6])
      added = added + 1
    end
  end
  if added > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000) end
end
redis.call('SET', KEYS[2], '1')
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return {added, now}
"""

# KEYS: probe. ARGV: probe token. A probe that learnt nothing gives its turn to the next.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: total log, blocked-until. ARGV: window (µs). Returns {used, blocked_until_us, now}.
_USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0'), now}
"""


@dataclass(frozen=True)
class Permit:
    """A slot taken: how long the caller waited, and whether it is the cold-start probe."""

    waited: float
    # The probe's token: its caller must settle (or release) the probe with the answer.
    probe: str | None = None


# How often callers look again while another caller's cold-start probe is out.
_PROBE_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class GroupUsage:
    group: str
    limit: int
    background_limit: int
    window_seconds: float  # real seconds, margin included
    used: int
    blocked_for: float


class RateLimiter:
    def __init__(
        self,
        *,
        redis_client: redis.Redis,
        limits: BrazeLimits,
        sleep: Callable[[float], None] = time.sleep,
        prefix: str = "braze:rl",
    ) -> None:
        self.redis = redis_client
        self.limits = limits
        self._sleep = sleep
        self._prefix = prefix
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._block = redis_client.register_script(_BLOCK)
        self._usage = redis_client.register_script(_USAGE)
        self._settle = redis_client.register_script(_SETTLE)
        self._release = redis_client.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"RateLimiter(workspace={self.limits.workspace!r})"

    def _key(self, group: str, part: str) -> str:
        return f"{self._prefix}:{self.limits.workspace}:{group}:{part}"

    def _keys(self, group: str) -> list[str]:
        return [
            self._key(group, "log"),
            self._key(group, "bg"),
            self._key(group, "blocked"),
            self._key(group, "interactive"),
            self._key(group, "alive"),
            self._key(group, "probe"),
        ]

    def _window_us(self, group: str) -> int:
        return math.ceil(self.limits.window(group) * 1_000_000)

    def _take(self, group: str, lane: Lane) -> tuple[bool, float, float, str | None]:
        background = self.limits.background_limit(group) if lane == "background" else 0
        token = uuid.uuid4().hex
        try:
            allowed, wait_us, now_us, probing = self._acquire(
                keys=self._keys(group),
                args=[self.limits.limit(group), background, self._window_us(group), token,
                      math.ceil(self.limits.probe_timeout_seconds * 1000),
                      math.ceil(_PROBE_POLL_SECONDS * 1_000_000)],
            )  # fmt: skip
        except redis.RedisError as exc:
            # Sending without the shared limiter could spend other processes' quota: refuse.
            raise BrazeUnavailable(
                f"The Braze rate limiter (Redis) is unavailable: {type(exc).__name__}"
            ) from None
        probe = token if allowed and probing else None
        return bool(allowed), int(wait_us) / 1_000_000, int(now_us) / 1_000_000, probe

    def try_acquire(self, *, group: str, lane: Lane = "interactive") -> tuple[bool, float, float]:
        """Take a slot if one is free now. Returns (allowed, wait seconds, Redis time)."""
        allowed, wait, now, _probe = self._take(group, lane)
        return allowed, wait, now

    def acquire(self, *, group: str, lane: Lane = "interactive", max_wait: float) -> Permit:
        """Wait (up to ``max_wait`` seconds) for a slot.

        Raises BrazeRateLimited, with the time a slot frees up, when that is too far off.
        A permit with ``probe`` set is the group's cold-start probe: its caller must pass
        Braze's answer to :meth:`probe_settle`, or call :meth:`probe_release` without one.
        """
        started = time.monotonic()
        while True:
            allowed, wait, now, probe = self._take(group, lane)
            waited = time.monotonic() - started
            if allowed:
                return Permit(waited=waited, probe=probe)
            if waited + wait > max_wait:
                raise BrazeRateLimited(
                    f"Braze limit group {group!r} is full for another {wait:.2f}s",
                    group=group,
                    retry_at=now + wait,
                    from_braze=False,
                )
            # A little jitter so processes woken for the same slot do not all collide.
            self._sleep(wait + random.uniform(0, min(0.005, wait / 20)))

    def block(self, *, group: str, seconds: float, only_if_room: bool = False) -> float | None:
        """Block ``group`` for every process for ``seconds``; returns the epoch it ends.

        With ``only_if_room`` (Braze reported ``remaining: 0``) the block is set only when our
        own log still has room: otherwise the log already holds callers back until a slot
        frees, and blocking would waste the next window.
        """
        try:
            until_us, _now = self._block(
                keys=[self._key(group, "blocked"), self._key(group, "log")],
                args=[math.ceil(max(seconds, 0.0) * 1_000_000), int(only_if_room),
                      self.limits.limit(group), self._window_us(group)],
            )  # fmt: skip
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
        """End the cold start with the probe's answer; returns the log entries added.

        ``used`` is what Braze counts in its window (limit minus remaining, the probe
        included) and ``reset_at`` the epoch second it announced; None when the answer did
        not say (then the group is simply marked alive). The marker is set either way.
        """
        count = -1 if used is None else min(max(used, 0), self.limits.limit(group))
        reset_us = -1 if reset_at is None else math.ceil(reset_at * 1_000_000)
        try:
            added, _now = self._settle(
                keys=[self._key(group, "log"), self._key(group, "alive"),
                      self._key(group, "probe")],
                args=[token, count, reset_us, self._window_us(group),
                      math.ceil(self.limits.server_window(group) * 1_000_000), uuid.uuid4().hex],
            )  # fmt: skip
        except redis.RedisError:
            # The probe key expires by itself, so another caller will probe again.
            log.warning("could not settle the cold-start probe of group %s", group)
            return 0
        if added:
            log.info("Braze group %s: seeded %d requests Braze still counts", group, added)
        return int(added)

    def probe_release(self, *, group: str, token: str) -> None:
        """Give up a probe that got no answer, so the next caller probes at once."""
        try:
            self._release(keys=[self._key(group, "probe")], args=[token])
        except redis.RedisError:
            log.warning("could not release the cold-start probe of group %s", group)

    def mark_alive(self, *, group: str) -> None:
        """Skip the cold-start probe (tests and benchmarks that start from a known state)."""
        self.redis.set(self._key(group, "alive"), "1")

    def usage(self, *, group: str) -> GroupUsage:
        used, blocked_us, now_us = self._usage(
            keys=[self._key(group, "log"), self._key(group, "blocked")],
            args=[self._window_us(group)],
        )
        return GroupUsage(
            group=group,
            limit=self.limits.limit(group),
            background_limit=self.limits.background_limit(group),
            window_seconds=self.limits.window(group),
            used=int(used),
            blocked_for=max(0.0, (int(blocked_us) - int(now_us)) / 1_000_000),
        )

    def reset(self, *, group: str) -> None:
        """Forget everything about a group, as a Redis flush would (tests and benchmarks)."""
        self.redis.delete(*self._keys(group))
