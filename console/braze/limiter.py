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
``alive`` marker (no TTL). While it is missing:

1. For a short *gathering* time (``gather_seconds``) every caller waits, and each process
   puts back the sends it made itself in the last window (each keeps them in memory, with
   their Redis times), so the log is whole again except for processes that died. The first
   caller that remembers sends starts it; with none (a fresh deployment) nobody waits.
2. Then the acquire script lets exactly one caller through as a *probe* (a ``probe`` key
   with a short TTL, so a probe whose answer never comes is retried), once the restored
   log has room, and every other caller, in both lanes, waits for its answer.
3. The probe's answer tells how much of Braze's window is used (``X-RateLimit-Limit``
   minus ``-Remaining``). The client passes it to :meth:`RateLimiter.probe_settle`, which
   adds what the log still lacks (sends of dead processes, other integrations) and sets
   the marker.

Settling once from a single answer, with nothing else in flight, avoids the race that
reconciling on every answer has (answers to concurrent requests count different sets of
sends). When Braze's window was already full and no process remembered it, the probe is
refused (a 429, which Braze does not count) and the group is blocked until the reset.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections import deque
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
    # Real seconds callers wait after a cold start while processes put back their sends.
    gather_seconds: float = 0.5

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
        gather_seconds=float(config.get("gather_seconds", 0.5)),
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
# probe, gathering start. ARGV: limit, background limit (0 for the interactive lane), window
# (µs), unique member (also the probe's token), probe TTL (ms), poll interval while
# another caller probes (µs), gathering time (µs), gathering key TTL (ms), whether the
# caller remembers sends of its own (1: it starts the gathering; a process that has sent
# nothing, e.g. a fresh deployment's first, has nothing to wait for).
# Returns {allowed, wait_us, now_us, is_probe, cold (0: no, 1: yes, 2: gathering), episode}:
# the episode names this cold start (its gathering, else its probe) for putting back once.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return {0, blocked - now, now, 0, 0, ''} end
local window = tonumber(ARGV[3])
local bg = tonumber(ARGV[2])
if bg == 0 then
  redis.call('SET', KEYS[4], '1', 'PX', math.ceil(window / 1000))
end
local probing = 0
local cold = 0
local episode = ''
if redis.call('EXISTS', KEYS[5]) == 0 then
  cold = 1
  local raw = redis.call('GET', KEYS[7])
  if not raw and ARGV[9] == '1' then
    redis.call('SET', KEYS[7], now, 'PX', tonumber(ARGV[8]))
    raw = redis.call('GET', KEYS[7])
  end
  if raw then
    episode = raw
    local gathered = tonumber(raw) + tonumber(ARGV[7])
    if now < gathered then return {0, gathered - now, now, 0, 2, episode} end
  end
  local probe_ttl = redis.call('PTTL', KEYS[6])
  if probe_ttl > 0 then
    episode = redis.call('GET', KEYS[6])
    return {0, math.min(probe_ttl * 1000, tonumber(ARGV[6])), now, 0, 1, episode}
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
if wait > 0 then return {0, math.ceil(wait), now, 0, cold, episode} end
local member = ARGV[4]
local ttl = math.ceil(window / 1000) + 1000
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], ttl)
if bg > 0 then
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if probing == 1 then
  redis.call('SET', KEYS[6], ARGV[4], 'PX', tonumber(ARGV[5]))
  if episode == '' then episode = ARGV[4] end
end
return {1, 0, now, probing, cold, episode}
"""

# KEYS: total log. ARGV: window (µs), then pairs of (Redis time in µs, member) of sends
# this process made. Puts them back after a flush; returns how many were missing.
_RESTORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local added = 0
for i = 2, #ARGV, 2 do
  local score = tonumber(ARGV[i])
  if score > now - window then
    added = added + redis.call('ZADD', KEYS[1], 'NX', score, ARGV[i + 1])
  end
end
if added > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000) end
return added
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

# KEYS: total log, alive marker, probe, gathering start. ARGV: probe token, requests Braze
# counts in its window (-1: unknown), when Braze releases the oldest of them (epoch µs; -1:
# unknown), window with margin (µs), Braze's window without margin (µs), member suffix.
# Returns {entries added, now_us}.
#
# Which of Braze's requests the log already holds: the entries sent since the oldest one
# Braze still counts (its reset minus a window; without a reset, only the probe's own).
# The rest were sent by processes that died or by other integrations, at unknown times:
# they are added as sent now, so they stay a full window. Only if the log holds nothing
# from that far back is the oldest of them known: it leaves at the reset. With a
# fixed-window server they all leave at the reset, with a sliding log only the oldest
# does, and a token bucket is full again at its reset: never fewer than the server counts,
# whatever its algorithm (one window of over-counting at worst).
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local used = tonumber(ARGV[2])
local added = 0
if used > 0 then
  local window = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local reset = tonumber(ARGV[3])
  local known = 1
  local first = now
  if reset >= 0 then
    local oldest = reset - tonumber(ARGV[5])
    known = redis.call('ZCOUNT', KEYS[1], oldest, '+inf')
    local margin = window - tonumber(ARGV[5])
    if redis.call('ZCOUNT', KEYS[1], '-inf', oldest + margin) == 0 then
      first = math.min(oldest, now)
    end
  end
  for i = 1, used - known do
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
redis.call('DEL', KEYS[4])
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
        self._restore = redis_client.register_script(_RESTORE)
        # This process's own sends of the last window per group, as (Redis µs, member):
        # what it puts back into the log after a Redis restart or flush.
        self._sent: dict[str, deque[tuple[int, str]]] = {}
        self._restored_in: dict[str, bytes] = {}
        self._memory_lock = threading.Lock()

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
            self._key(group, "gather"),
        ]

    def _window_us(self, group: str) -> int:
        return math.ceil(self.limits.window(group) * 1_000_000)

    def _take(self, group: str, lane: Lane) -> tuple[bool, float, float, str | None, bool]:
        background = self.limits.background_limit(group) if lane == "background" else 0
        token = uuid.uuid4().hex
        gather_us = math.ceil(self.limits.gather_seconds * 1_000_000)
        remembers = int(self._remembers(group))
        try:
            allowed, wait_us, now_us, probing, cold, episode = self._acquire(
                keys=self._keys(group),
                args=[self.limits.limit(group), background, self._window_us(group), token,
                      math.ceil(self.limits.probe_timeout_seconds * 1000),
                      math.ceil(_PROBE_POLL_SECONDS * 1_000_000), gather_us,
                      math.ceil(self.limits.probe_timeout_seconds * 1000) * 4 + gather_us // 1000,
                      remembers],
            )  # fmt: skip
        except redis.RedisError as exc:
            # Sending without the shared limiter could spend other processes' quota: refuse.
            raise BrazeUnavailable(
                f"The Braze rate limiter (Redis) is unavailable: {type(exc).__name__}"
            ) from None
        if cold and episode:
            self._put_back(group, episode)
        if allowed:
            self._remember(group, int(now_us), token)
        probe = token if allowed and probing else None
        gathering = cold == 2
        return bool(allowed), int(wait_us) / 1_000_000, int(now_us) / 1_000_000, probe, gathering

    def _remembers(self, group: str) -> bool:
        """Whether this process sent on the group within the last window."""
        # Redis time and ours differ little next to a window.
        oldest = time.time() * 1_000_000 - self._window_us(group)
        with self._memory_lock:
            sent = self._sent.get(group)
            return bool(sent) and sent is not None and sent[-1][0] > oldest

    def _remember(self, group: str, now_us: int, token: str) -> None:
        oldest = now_us - self._window_us(group)
        with self._memory_lock:
            sent = self._sent.setdefault(group, deque(maxlen=self.limits.limit(group)))
            sent.append((now_us, token))  # the log's own member: putting it back is idempotent
            while sent and sent[0][0] <= oldest:
                sent.popleft()

    def _put_back(self, group: str, episode: bytes) -> None:
        """After a flush, put this process's own recent sends back into the log (once)."""
        with self._memory_lock:
            if self._restored_in.get(group) == episode:
                return
            self._restored_in[group] = episode
            entries = list(self._sent.get(group, ()))
        for start in range(0, len(entries), 500):
            args: list[Any] = [self._window_us(group)]
            for score, member in entries[start : start + 500]:
                args += [score, member]
            try:
                self._restore(keys=[self._key(group, "log")], args=args)
            except redis.RedisError:
                log.warning("could not put back this process's sends for group %s", group)
                return

    def try_acquire(self, *, group: str, lane: Lane = "interactive") -> tuple[bool, float, float]:
        """Take a slot if one is free now. Returns (allowed, wait seconds, Redis time)."""
        allowed, wait, now, _probe, _gathering = self._take(group, lane)
        return allowed, wait, now

    def acquire(self, *, group: str, lane: Lane = "interactive", max_wait: float) -> Permit:
        """Wait (up to ``max_wait`` seconds) for a slot.

        Raises BrazeRateLimited, with the time a slot frees up, when that is too far off.
        A permit with ``probe`` set is the group's cold-start probe: its caller must pass
        Braze's answer to :meth:`probe_settle`, or call :meth:`probe_release` without one.
        """
        started = time.monotonic()
        while True:
            allowed, wait, now, probe, gathering = self._take(group, lane)
            waited = time.monotonic() - started
            if allowed:
                return Permit(waited=waited, probe=probe)
            if gathering:
                # Once per Redis flush and only ``gather_seconds`` long: every caller waits
                # it out, whatever its budget, or the first one would probe blind.
                self._sleep(wait)
                continue
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
                      self._key(group, "probe"), self._key(group, "gather")],
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
