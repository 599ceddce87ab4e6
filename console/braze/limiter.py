"""The global Braze rate limiter: one Redis sliding-window log per workspace and limit group.

Every process that calls Braze (web, Celery workers, management commands) takes a slot here
before each request, so the limit holds across all of them; Celery's ``rate_limit`` is per
worker and cannot do this. The Lua scripts run atomically and read Redis ``TIME``, so the
hosts' clocks do not matter.

Why a sliding log: it guarantees at most L sends in any interval of one window, which is
also safe against a fixed-window or token-bucket server (performance-and-bulk.md §2). A
small margin is added to each window because requests that leave W apart can arrive less
than W apart.

Learned limits. Braze's limits are per workspace and raised on request, so the configured
figures (Braze's documented defaults) are only a starting point: every answer's
``X-RateLimit-Limit`` is kept in Redis per workspace and group (:meth:`RateLimiter.learn`)
and the acquire script uses it in place of the configured figure, unless the group is in
``overrides`` (set by hand). The cold-start probe's answer is learnt before anyone else
sends, so a workspace whose limit is lower than the default is never overrun by a burst.

Being a good neighbour. The limit is shared with every other integration of the workspace
(the company's feeds, other tools), and many of them never retry a 429. Background work (a
mirror sync, a bulk job, a read-back) therefore always passes a sub-log of its own capped at
``background_share`` of the limit, whether or not anyone is at the console; people (the
interactive lane) may use the whole limit. And when Braze's answers show requests that are
not ours, background work also leaves their observed count plus ``yield_margin`` of the
limit free. Each answer says how much of Braze's window is used (limit minus remaining);
what our log holds for that window is ours, the rest is someone else's
(:meth:`RateLimiter.learn`). Which window: from the announced reset minus one window when
the resets move on by whole windows (a fixed-window server, Braze's apparent behaviour),
else the last window before the request (a sliding log or token bucket, whose "reset" is
something else). In a fixed window the count so far is scaled to the whole window once over
half of it has passed; the previous window's figure holds until the current one's is as well
informed, and lapses a window after the others stop. Background sends are spread over the
window while others are seen, so that answers from late in each window keep the count up to
date; each slot is the last one plus the pace (a sender late by less than a pace keeps its
schedule, a longer pause starts a new one), so a sequential sender's own work between
requests does not cost it time on every send. An approver may let one bulk job use the
whole limit (``share=1``): it still leaves the others' observed count and the margin free.

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

Fixed windows. A sliding log can never use a fixed-window server fully: each send waits
for the one L sends earlier plus the margin, and every late wake-up is carried into all
later windows, so a long job settles near L per ``W + margin + lateness`` (about 0.94 of
the ceiling at the benchmark's clock). Braze's ``X-RateLimit-Reset`` suggests fixed
windows but does not say so, so the limiter learns it from the answers
(:meth:`RateLimiter.observe`): when the announced reset stays the same for every answer in
a window (one of them to a request sent over a second into it) and then moves on by
exactly one window, ``steps_to_align`` times in a row, the server counts fixed windows on
that grid. From then on callers take slots per grid window: at most L in each. A send
within ``1 s + 2 margins`` before a boundary or ``margin`` after it (the header has whole
seconds; the margin covers clock offset and transit) may be counted in either window, so
it counts in both until Braze answers: the answer's reset names the window that counted
it, and from then on it counts only there (so the sliding log's last sends before the grid
is learnt do not fill the first aligned window twice). Background work leaves those sends
to people and waits for the boundary. It is also paced evenly over most of a window
instead of sent in one burst, which leaves the CPU to the people at work. Lateness then
ends at each boundary. Every later answer is checked against the grid, and one that
disagrees, or any 429, drops back to the sliding log (after a 429, for
``cooldown_windows``); the log keeps being written either way, so falling back is safe.

A flush of our Redis does not change Braze's windows: processes put back the grid they
last saw along with their sends, and the probe is taken on that grid, in the current
window when the sends put back leave room there. Its answer adds what dead processes
sent; a 429 on it keeps the grid, since it says only that our log lacked sends.
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
from console.metrics import record_limiter_refusal

log = logging.getLogger(__name__)

type Lane = Literal["interactive", "background"]

GROUPS: tuple[str, ...] = (
    "catalogs_sync",
    "catalog_items_sync",
    "catalog_items_async",
    "catalog_fields_selections",
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
    background_share: float = 0.7
    # Share of the limit kept free beyond the requests of other clients Braze's answers show.
    yield_margin: float = 0.05
    # Groups whose configured limit was set by hand: used even when Braze announces another.
    overrides: frozenset[str] = frozenset()
    # Benchmarks run the sandbox S times faster; the console must then use windows of W/S.
    clock_scale: float = 1.0
    margin_seconds: float = 0.5
    # Real seconds a cold-start probe may stay unanswered before another caller probes.
    probe_timeout_seconds: float = 5.0
    # Real seconds callers wait after a cold start while processes put back their sends.
    gather_seconds: float = 0.5
    # Learn Braze's fixed windows from its reset headers and align to them (docstring).
    align_fixed_windows: bool = True
    steps_to_align: int = 3
    cooldown_windows: int = 20
    # A learnt grid is Braze's, not ours: kept a day of windows, refreshed by every answer.
    grid_ttl_windows: int = 1440
    # Background sends are paced over this share of a grid window's open span.
    pace_share: float = 0.7

    def window(self, group: str) -> float:
        """The real-time window the limiter enforces, margin included."""
        return self.server_window(group) + self.margin_seconds

    def server_window(self, group: str) -> float:
        """Braze's window in real seconds (scaled in benchmarks), without our margin."""
        return self.groups[group].window_seconds / self.clock_scale

    def limit(self, group: str) -> int:
        return self.groups[group].limit

    def grid_guards(self, group: str) -> tuple[float, float] | None:
        """Seconds kept free after and before each fixed-window boundary, when aligning.

        None when alignment is off or cannot pay: the reset header has whole seconds, so the
        window must be a whole number of seconds, and the span left open at least half of it.
        """
        window = self.server_window(group)
        opening, closing = self.margin_seconds, 1.0 + 2 * self.margin_seconds
        if not self.align_fixed_windows or abs(window - round(window)) > 1e-9:
            return None
        if window - opening - closing < window / 2:
            return None
        return opening, closing

    def background_limit(self, group: str, limit: int | None = None) -> int:
        """Background work's cap in ``group``: its share of ``limit`` (default: configured)."""
        return background_cap(self.limit(group) if limit is None else limit, self.background_share)


def background_cap(limit: int, share: float) -> int:
    # The same rounding as the acquire script: a share meant as 70% of 100 gives 70, not 69.
    return max(1, math.floor(limit * share + 1e-9))


def margin_count(limit: int, margin: float) -> int:
    # Requests are whole: rounding up keeps at least the configured share free (3 of 50 at 5%).
    return math.ceil(limit * margin - 1e-9)


def background_room(limit: int, *, share: float, others: int, margin: float) -> int:
    """Requests per window background work may take: its share, and, while others are seen,
    no more than what their count plus the margin leaves (the acquire script's rule)."""
    room = limit if others <= 0 else max(1, limit - others - margin_count(limit, margin))
    return min(background_cap(limit, share), room)


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
        yield_margin=float(config.get("yield_margin", 0.05)),
        overrides=frozenset(config.get("overrides", ())),
        clock_scale=float(config["clock_scale"]),
        margin_seconds=float(config["margin_seconds"]),
        probe_timeout_seconds=float(config.get("probe_timeout_seconds", 5.0)),
        gather_seconds=float(config.get("gather_seconds", 0.5)),
        align_fixed_windows=bool(config.get("align_fixed_windows", True)),
    )


def limits_in_effect(limiter: RateLimiter | None = None) -> list[dict[str, Any]]:
    """Rows for pages: each group's configured and learned limit (Braze time) and its use.

    ``learned`` is what Braze last announced (None before any answer, or without Redis);
    ``limit`` is the one in effect: the learned one unless the group is overridden.
    """
    limits = limiter.limits if limiter is not None else limits_from_settings()
    rows = []
    for name, group in limits.groups.items():
        usage = None
        if limiter is not None:
            try:
                usage = limiter.usage(group=name)
            except redis.RedisError:
                usage = None
        limit = usage.limit if usage else group.limit
        rows.append(
            {
                "group": name,
                "configured": group.limit,
                "override": name in limits.overrides,
                "learned": usage.learned if usage else None,
                "limit": limit,
                "window_seconds": group.window_seconds,
                "background_limit": usage.background_limit
                if usage
                else limits.background_limit(name, limit),
                "others": usage.others if usage else 0,
            }
        )
    return rows


# KEYS: total log, background log, blocked-until, learnt limit, alive marker, probe, gathering
# start, learnt fixed-window grid, guard sends Braze counted in the earlier and in the later of
# their two windows (see _OBSERVE), others' use (see _LEARN), the last paced background slot off
# the grid. ARGV: configured limit, lane (1: background), window (µs), unique member (also the
# probe's token), probe TTL (ms), poll interval while another caller probes (µs), gathering time
# (µs), gathering key TTL (ms), whether the caller remembers sends of its own (1: it starts the
# gathering; a process that has sent nothing, e.g. a fresh deployment's first, has nothing to wait
# for), Braze's window (µs; 0: never align), guards after and before a boundary (µs), the span
# background sends are paced over (µs; 0: none), whether a learnt limit replaces the configured
# one (1), background share, yield margin (share of the limit), Braze's window (µs, always), the
# span background sends are paced over off the grid when others use the group (µs; 0: none).
# Returns {allowed, wait_us, now_us, is_probe, cold (0: no, 1: yes, 2: gathering), episode, limit
# in effect, requests per window this lane may take}: the episode names this cold start (its
# gathering, else its probe) for putting back once.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
if ARGV[14] == '1' then
  local learnt = tonumber(redis.call('GET', KEYS[4]) or '0')
  if learnt and learnt > 0 then limit = learnt end
end
local bg = ARGV[2] == '1'
-- Background work: at most its share (cap, its own log), and all of ours within what
-- others leave (room): their count in Braze's window plus a margin stays free.
local cap, room, others = limit, limit, 0
if bg then
  cap = math.max(1, math.floor(limit * tonumber(ARGV[15]) + 1e-9))
  local o = redis.call('HMGET', KEYS[11], 'others', 'until')
  if o[1] and now < tonumber(o[2]) then others = tonumber(o[1]) end
  if others > 0 then
    room = math.max(1, limit - others - math.ceil(limit * tonumber(ARGV[16]) - 1e-9))
  end
end
local budget = math.min(cap, room)
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return {0, blocked - now, now, 0, 0, '', limit, budget} end
local window = tonumber(ARGV[3])
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
    if now < gathered then return {0, gathered - now, now, 0, 2, episode, limit, budget} end
  end
  local probe_ttl = redis.call('PTTL', KEYS[6])
  if probe_ttl > 0 then
    episode = redis.call('GET', KEYS[6])
    return {0, math.min(probe_ttl * 1000, tonumber(ARGV[6])), now, 0, 1, episode, limit, budget}
  end
  probing = 1
end
local function wait_for(key, n_max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n < n_max then return 0 end
  local entry = redis.call('ZRANGE', key, n - n_max, n - n_max, 'WITHSCORES')
  return tonumber(entry[2]) + window - now
end
local wait = 0
local pace, last_slot = 0, nil
-- On a grid the previous window may still count sends back to its own opening guard.
local keep = math.max(window, 2 * tonumber(ARGV[10]) + tonumber(ARGV[11]) + tonumber(ARGV[12]))
local grid = false
-- A grid put back after a flush holds for the probe too: it is taken in the current window
-- when the sends put back leave room there, and its answer adds what dead processes sent.
if tonumber(ARGV[10]) > 0 then grid = redis.call('GET', KEYS[8]) end
if grid then
  -- Braze counts fixed windows on a learnt grid. A send may count in window b when it
  -- leaves between its opening guard before b and its closing guard after b + span (clock
  -- offset, transit, the header's whole seconds): near a boundary it must fit both.
  local span = tonumber(ARGV[10])
  local opening, closing = tonumber(ARGV[11]), tonumber(ARGV[12])
  local start = now - ((now - tonumber(grid)) % span)
  -- Guard sends Braze has answered for are counted only in the window it named; the log
  -- always holds the last window (plus margin), so only settlements that recent apply.
  local floor = now - window + 1
  -- Settled background sends carry a 'b:' member: only they leave background work's log.
  local function settled(key, lo, hi, bg_only)
    if not bg_only then return redis.call('ZCOUNT', key, lo, hi) end
    local n = 0
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, lo, hi)) do
      if string.sub(m, 1, 2) == 'b:' then n = n + 1 end
    end
    return n
  end
  local function used(key, b)
    -- Numbers, not strings: Lua's tostring keeps 14 digits, Redis reads numbers in full.
    local n = redis.call('ZCOUNT', key, b - closing, b + span + opening - 1)
    local bg_only = key == KEYS[2]
    n = n - settled(KEYS[9], math.max(b - closing, floor), b + opening - 1, bg_only)
    n = n - settled(KEYS[10], math.max(b + span - closing, floor), b + span + opening - 1,
                    bg_only)
    return n
  end
  local windows = {start}
  if now < start + opening then windows = {start - span, start} end
  if now >= start + span - closing then windows = {start, start + span} end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)
  if bg then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep) end
  for _, b in ipairs(windows) do
    if used(KEYS[1], b) >= room or (bg and used(KEYS[2], b) >= cap) then
      wait = math.max(wait, b + span + opening - now)
    end
  end
  if wait == 0 and bg then
    if now >= start + span - closing then
      -- Counted in both windows, a send here would cost the next one a slot it may never
      -- have used: background work has time to wait for the boundary, people do not.
      wait = start + span + opening - now
    else
      local pace = math.floor(tonumber(ARGV[13]) / budget)
      wait = math.max(0, start + opening + used(KEYS[1], start) * pace - now)
    end
  end
else
  wait = wait_for(KEYS[1], room)
  if bg then
    wait = math.max(wait, wait_for(KEYS[2], cap))
    -- With others seen, background sends are spread over the window rather than sent in
    -- one burst: answers from late in Braze's windows are what show the others' full use.
    -- On a schedule (the last slot plus the pace), so that a sequential sender whose own
    -- work made it late by less than a pace does not lose that time on every send.
    pace = math.floor(tonumber(ARGV[18]) / budget)
    local slot = redis.call('GET', KEYS[12])
    if not slot then
      slot = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
    end
    if slot then last_slot = tonumber(slot) end
    if others > 0 and pace > 0 and last_slot then
      wait = math.max(wait, last_slot + pace - now)
    end
  end
end
if wait > 0 then return {0, math.ceil(wait), now, 0, cold, episode, limit, budget} end
local member = ARGV[4]
local ttl = math.ceil(keep / 1000) + 1000
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], ttl)
if bg then
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('PEXPIRE', KEYS[2], ttl)
  if not grid then
    -- This send's slot: the one due, unless it came a whole pace or more after it (a
    -- pause, or unpaced): then a new schedule starts now, without a catch-up burst.
    local slot = now
    if others > 0 and pace > 0 and last_slot and now - (last_slot + pace) < pace then
      slot = last_slot + pace
    end
    redis.call('SET', KEYS[12], slot, 'PX', ttl)
  end
end
if probing == 1 then
  redis.call('SET', KEYS[6], ARGV[4], 'PX', tonumber(ARGV[5]))
  if episode == '' then episode = ARGV[4] end
end
return {1, 0, now, probing, cold, episode, limit, budget}
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

# KEYS: blocked-until, total log, grid, grid observations, grid cooldown. ARGV: duration
# (µs), only-if-our-log-has-room (0/1), limit, window (µs), cooldown (ms), keep the grid
# (0/1). Returns {blocked_until_us, now_us} (0 when nothing was blocked). A 429 (not
# only-if-room) also drops a learnt grid and keeps it from being learnt again for the
# cooldown, unless the 429 is explained otherwise (keep the grid).
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[2] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {0, now} end
elseif ARGV[6] ~= '1' then
  redis.call('DEL', KEYS[3], KEYS[4])
  redis.call('SET', KEYS[5], '1', 'PX', tonumber(ARGV[5]))
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

# KEYS: grid, grid observations, grid cooldown, guard sends settled in the earlier and in the
# later of their two windows. ARGV: announced reset (epoch s), Braze's window (s), when the
# request took its slot (Redis µs), guards after and before a boundary (µs), steps needed,
# grid and observations TTL (ms), how late in its window a request must have left to
# witness a fixed window (µs), a unique member, whether the request was background work's
# (1: it is settled in background work's log too).
# Returns {1, grid phase µs} while aligned, {0, 0} while learning, {-1, 0} when an answer
# contradicted the grid.
#
# A step counts when the reset moves on by exactly one window after a window with two or
# more answers, one of them to a request sent over a second (the header's resolution) after
# the window began. A sliding log's reset is its oldest request plus W: it too moves on by
# exactly W when requests come in short bursts, but then the whole burst left within a
# second of the reset it announces; a fixed window's reset does not depend on when we send.
#
# The answer also names the window Braze counted the request in (the one ending at the
# reset). The grid counts a send within a guard of a boundary in both windows around it;
# once answered it is settled to the one Braze named. This is kept while learning too, so
# the burst of sliding-log sends just before the first aligned window does not count twice.
_OBSERVE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {0, 0} end
local reset = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local ttl = tonumber(ARGV[7])
local sent = tonumber(ARGV[3])
local opening, closing = tonumber(ARGV[4]), tonumber(ARGV[5])
local ends = reset * 1000000
local begins = ends - span * 1000000
local settled = nil
if sent >= ends - closing and sent < ends + opening then settled = KEYS[4]
elseif sent >= begins - closing and sent < begins + opening then settled = KEYS[5] end
if settled then
  local keep = 2 * span * 1000000 + opening + closing
  redis.call('ZREMRANGEBYSCORE', settled, '-inf', sent - keep)
  local lane = 'i:'
  if ARGV[10] == '1' then lane = 'b:' end
  redis.call('ZADD', settled, sent, lane .. ARGV[9])
  redis.call('PEXPIRE', settled, math.ceil(keep / 1000) + 1000)
end
local grid = redis.call('GET', KEYS[1])
if grid then
  -- A request that left well inside a grid window must be counted in that window.
  local at = tonumber(ARGV[3])
  local start = at - ((at - tonumber(grid)) % (span * 1000000))
  if at >= start + tonumber(ARGV[4]) and at < start + span * 1000000 - tonumber(ARGV[5]) then
    if reset * 1000000 ~= start + span * 1000000 then
      redis.call('DEL', KEYS[1], KEYS[2])
      return {-1, 0}
    end
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return {1, grid}
end
local seen = redis.call('HMGET', KEYS[2], 'reset', 'answers', 'steps', 'late')
local current = tonumber(seen[1] or '0')
local answers = tonumber(seen[2] or '0')
local steps = tonumber(seen[3] or '0')
local late = tonumber(seen[4] or '0')
local witness = 0
if tonumber(ARGV[3]) >= (reset - span) * 1000000 + tonumber(ARGV[8]) then witness = 1 end
if reset == current then
  answers, late = answers + 1, math.max(late, witness)
elseif reset < current then
  return {0, 0}  -- a late answer from an earlier window
elseif reset == current + span and answers >= 2 and late == 1 then
  steps, current, answers, late = steps + 1, reset, 1, witness
else
  steps, current, answers, late = 0, reset, 1, witness
end
if steps >= tonumber(ARGV[6]) then
  local phase = (reset % span) * 1000000
  redis.call('SET', KEYS[1], phase, 'PX', ttl)
  redis.call('DEL', KEYS[2])
  return {1, phase}
end
redis.call('HSET', KEYS[2], 'reset', current, 'answers', answers, 'steps', steps, 'late', late)
redis.call('PEXPIRE', KEYS[2], ttl)
return {0, 0}
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

# KEYS: total log, blocked-until, learnt limit, others' use. ARGV: window (µs).
# Returns {used, blocked_until_us, now, learnt limit (0: none), others' count}.
_USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
local o = redis.call('HMGET', KEYS[4], 'others', 'until')
local others = 0
if o[1] and now < tonumber(o[2]) then others = tonumber(o[1]) end
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0'), now,
        tonumber(redis.call('GET', KEYS[3]) or '0'), others}
"""

# KEYS: learnt limit, total log, others' use, learnt grid. ARGV: X-RateLimit-Limit,
# -Remaining (-1: absent), the announced reset (epoch µs; -1: absent), when the request took
# its slot (Redis µs; 0: unknown), Braze's window (µs), TTL of the others' record (ms).
# Returns {others' requests per window by this answer (-1: unknown), 1 if read as fixed}.
#
# Braze counts limit - remaining requests in its window; those our log holds for that window
# are ours, the rest someone else's. A fixed-window server's reset moves on by whole windows
# and its window began one window before the reset: the others' count so far, once over half
# the window has passed, is scaled to the whole window. A sliding log's "reset" is when its
# oldest request leaves, a token bucket's when it is full again: there the last window
# before the request is the one to compare, and the count is already a whole window's.
# Until the resets have moved on once, the latter. In-flight requests of ours make single
# answers a request or two off either way.
# Per window (its end, e) the best-informed answer counts (the latest in a fixed window). The
# figure kept ('others', good 'until' the end of the next window) is the previous window's
# until this one's is as well informed, so it holds through a fixed window's boundary.
_LEARN = """
local limit = tonumber(ARGV[1])
if limit > 0 and redis.call('GET', KEYS[1]) ~= ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end
local remaining, reset, at = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if limit <= 0 or remaining < 0 or at <= 0 then return {-1, 0} end
local span = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[3], 'reset', 'fixed', 'e', 'cur', 'w', 'prev', 'pw')
local fixed = state[2] == '1'
local last = tonumber(state[1] or '-1')
if reset >= 0 and reset > last then
  if last >= 0 then
    local k = math.floor((reset - last) / span + 0.5)
    fixed = k >= 1 and math.abs(reset - last - k * span) < 1000000
  end
  redis.call('HSET', KEYS[3], 'reset', reset, 'fixed', fixed and '1' or '0')
end
if redis.call('EXISTS', KEYS[4]) == 1 then fixed = true end
local est, weight, epoch
if fixed and reset >= 0 then
  local start = math.min(reset - span, at)
  local raw = math.max(0, limit - remaining - redis.call('ZCOUNT', KEYS[2], start, at))
  weight = (at - start) / span
  est = raw
  if weight >= 0.5 then est = math.max(raw, math.floor(raw / weight + 0.5)) end
  epoch = reset
else
  est = math.max(0, limit - remaining - redis.call('ZCOUNT', KEYS[2], at - span, at))
  weight = 1
  epoch = (math.floor(at / span) + 1) * span
end
local e, cur = tonumber(state[3] or '-1'), tonumber(state[4] or '0')
local w, prev = tonumber(state[5] or '0'), tonumber(state[6] or '0')
local pw = tonumber(state[7] or '0')
if epoch == e then
  if weight >= w then cur, w = est, weight end
elseif epoch > e then
  if epoch - e < 2 * span then prev, pw = cur, w else prev, pw = 0, 0 end
  e, cur, w = epoch, est, weight
end
-- This window's figure once it is as well informed as the last one's was; until then the
-- larger of the two (a surge shows at once).
local others = math.max(cur, prev)
if w >= pw then others = cur end
redis.call('HSET', KEYS[3], 'e', e, 'cur', cur, 'w', w, 'prev', prev, 'pw', pw,
           'others', others, 'until', e + span)
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]))
return {est, fixed and 1 or 0}
"""


@dataclass(frozen=True)
class Permit:
    """A slot taken: how long the caller waited, and whether it is the cold-start probe."""

    waited: float
    # The probe's token: its caller must settle (or release) the probe with the answer.
    probe: str | None = None
    # Redis time of the slot (µs), for checking the answer against a learnt grid.
    at_us: int = 0
    # Taken in the background lane: its answer settles background work's log too.
    background: bool = False


# How often callers look again while another caller's cold-start probe is out.
_PROBE_POLL_SECONDS = 0.02


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
        self._observe = redis_client.register_script(_OBSERVE)
        self._learn = redis_client.register_script(_LEARN)
        # This process's own sends of the last window per group, as (Redis µs, member):
        # what it puts back into the log after a Redis restart or flush.
        self._sent: dict[str, deque[tuple[int, str]]] = {}
        self._restored_in: dict[str, bytes] = {}
        # The grid each group was last seen aligned to (µs phase), put back after a flush.
        self._grid_phase: dict[str, int] = {}
        # The limit in effect per group as Redis last said (learnt from Braze, or configured).
        self._in_effect: dict[str, int] = {}
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
            self._key(group, "learned"),
            self._key(group, "alive"),
            self._key(group, "probe"),
            self._key(group, "gather"),
            self._key(group, "grid"),
            *self._settled_keys(group),
            self._key(group, "others"),
            self._key(group, "slot"),
        ]

    def _settled_keys(self, group: str) -> list[str]:
        return [self._key(group, "settled:earlier"), self._key(group, "settled:later")]

    def _grid_keys(self, group: str) -> list[str]:
        return [self._key(group, "grid"), self._key(group, "gridobs"), self._key(group, "gridoff")]

    def _grid_args(self, group: str, lane: Lane) -> list[int]:
        """Braze's window, the two guards and the span background sends are paced over, in µs
        (zeros: never align). The script divides that span by the requests it may take."""
        guards = self.limits.grid_guards(group)
        if guards is None:
            return [0, 0, 0, 0]
        window = self.limits.server_window(group)
        opening, closing = guards
        pace = 0.0
        if lane == "background":
            pace = (window - opening - closing) * self.limits.pace_share
        return [round(window * 1_000_000), math.ceil(opening * 1_000_000),
                math.ceil(closing * 1_000_000), math.floor(pace * 1_000_000)]  # fmt: skip

    def _server_window_us(self, group: str) -> int:
        return max(1, round(self.limits.server_window(group) * 1_000_000))

    def limit(self, group: str) -> int:
        """The limit in effect: the one Braze announced (as last seen here), unless overridden."""
        if group in self.limits.overrides:
            return self.limits.limit(group)
        return self._in_effect.get(group, self.limits.limit(group))

    def _window_us(self, group: str) -> int:
        return math.ceil(self.limits.window(group) * 1_000_000)

    def _take(
        self, group: str, lane: Lane, share: float | None = None
    ) -> tuple[bool, float, int, str | None, bool]:
        token = uuid.uuid4().hex
        gather_us = math.ceil(self.limits.gather_seconds * 1_000_000)
        remembers = int(self._remembers(group))
        share = self.limits.background_share if share is None else share
        try:
            allowed, wait_us, now_us, probing, cold, episode, limit, _budget = self._acquire(
                keys=self._keys(group),
                args=[self.limits.limit(group), int(lane == "background"), self._window_us(group),
                      token, math.ceil(self.limits.probe_timeout_seconds * 1000),
                      math.ceil(_PROBE_POLL_SECONDS * 1_000_000), gather_us,
                      math.ceil(self.limits.probe_timeout_seconds * 1000) * 4 + gather_us // 1000,
                      remembers, *self._grid_args(group, lane),
                      int(group not in self.limits.overrides), repr(float(share)),
                      repr(float(self.limits.yield_margin)), self._server_window_us(group),
                      math.floor(self._server_window_us(group) * self.limits.pace_share)],
            )  # fmt: skip
        except redis.RedisError as exc:
            # Sending without the shared limiter could spend other processes' quota: refuse.
            raise BrazeUnavailable(
                f"The Braze rate limiter (Redis) is unavailable: {type(exc).__name__}"
            ) from None
        self._in_effect[group] = int(limit)
        if cold and episode:
            self._put_back(group, episode)
        if allowed:
            self._remember(group, int(now_us), token)
        probe = token if allowed and probing else None
        gathering = cold == 2
        return bool(allowed), int(wait_us) / 1_000_000, int(now_us), probe, gathering

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
            sent = self._sent.setdefault(group, deque())
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
        phase = self._grid_phase.get(group)
        if phase is not None:
            # A flush of our Redis does not change Braze's windows; every answer still checks.
            ttl = self._grid_ttl_ms(group, self.limits.grid_ttl_windows)
            try:
                self.redis.set(self._key(group, "grid"), phase, px=ttl, nx=True)
            except redis.RedisError:
                return

    def try_acquire(
        self, *, group: str, lane: Lane = "interactive", share: float | None = None
    ) -> tuple[bool, float, float]:
        """Take a slot if one is free now. Returns (allowed, wait seconds, Redis time)."""
        allowed, wait, now_us, _probe, _gathering = self._take(group, lane, share)
        return allowed, wait, now_us / 1_000_000

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
        Braze's answer to :meth:`probe_settle`, or call :meth:`probe_release` without one.
        ``share`` replaces ``background_share`` for this background call (an approver may let
        a bulk job use the whole limit: 1.0).
        """
        started = time.monotonic()
        while True:
            allowed, wait, now_us, probe, gathering = self._take(group, lane, share)
            waited = time.monotonic() - started
            if allowed:
                return Permit(
                    waited=waited, probe=probe, at_us=now_us, background=lane == "background"
                )
            if gathering:
                # Once per Redis flush and only ``gather_seconds`` long: every caller waits
                # it out, whatever its budget, or the first one would probe blind.
                self._sleep(wait)
                continue
            if waited + wait > max_wait:
                record_limiter_refusal(group=group, lane=lane)
                raise BrazeRateLimited(
                    f"Braze limit group {group!r} is full for another {wait:.2f}s",
                    group=group,
                    retry_at=now_us / 1_000_000 + wait,
                    from_braze=False,
                )
            # A little jitter so processes woken for the same slot do not all collide.
            self._sleep(wait + random.uniform(0, min(0.005, wait / 20)))

    def block(
        self, *, group: str, seconds: float, only_if_room: bool = False, keep_grid: bool = False
    ) -> float | None:
        """Block ``group`` for every process for ``seconds``; returns the epoch it ends.

        With ``only_if_room`` (Braze reported ``remaining: 0``) the block is set only when our
        own log still has room: otherwise the log already holds callers back until a slot
        frees, and blocking would waste the next window. A 429 drops a learnt grid unless
        ``keep_grid``: a cold-start probe's 429 is explained by sends nobody could put back.
        """
        if not only_if_room and not keep_grid:
            self._grid_phase.pop(group, None)  # a 429 drops the grid (the script, in Redis)
        try:
            until_us, _now = self._block(
                keys=[self._key(group, "blocked"), self._key(group, "log"),
                      *self._grid_keys(group)],
                args=[math.ceil(max(seconds, 0.0) * 1_000_000), int(only_if_room),
                      self.limit(group), self._window_us(group),
                      self._grid_ttl_ms(group, self.limits.cooldown_windows), int(keep_grid)],
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
        count = -1 if used is None else min(max(used, 0), self.limit(group))
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

    def _grid_ttl_ms(self, group: str, windows: int) -> int:
        return max(1, math.ceil(self.limits.server_window(group) * windows * 1000))

    def observe(self, *, group: str, permit: Permit, reset: str | None) -> None:
        """Learn from an answer's ``X-RateLimit-Reset`` whether Braze counts fixed windows.

        See "Fixed windows" above. Only whole epoch seconds are read: a reset in any other
        form tells nothing about a grid. Never raises: aligning is an optimisation.
        """
        guards = self.limits.grid_guards(group)
        if guards is None or not permit.at_us or not reset or not reset.isdigit():
            return
        announced = int(reset)
        if not 1e9 <= announced < 1e11:
            return
        window = round(self.limits.server_window(group))
        opening, closing = guards
        try:
            outcome, phase = self._observe(
                keys=[*self._grid_keys(group), *self._settled_keys(group)],
                args=[announced, window, permit.at_us, math.ceil(opening * 1_000_000),
                      math.ceil(closing * 1_000_000), self.limits.steps_to_align,
                      self._grid_ttl_ms(group, self.limits.grid_ttl_windows),
                      math.ceil((1.0 + opening) * 1_000_000), uuid.uuid4().hex,
                      int(permit.background)],
            )  # fmt: skip
        except redis.RedisError:
            return
        if outcome == 1:
            self._grid_phase[group] = int(phase)
        elif outcome == -1:
            self._grid_phase.pop(group, None)
        if outcome == -1:
            log.warning("Braze group %s: an answer did not fit its fixed windows; "
                        "back to the sliding log", group)  # fmt: skip

    def aligned(self, *, group: str) -> bool:
        """Whether the group takes slots on Braze's learnt fixed-window grid."""
        return bool(self.redis.exists(self._key(group, "grid")))

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
        try:
            announced = int(limit) if limit is not None else -1
            left = int(remaining) if remaining is not None else -1
        except ValueError:
            return None
        if announced <= 0:
            announced = -1
        reset_us = -1 if reset_at is None else math.ceil(reset_at * 1_000_000)
        at_us = permit.at_us if permit is not None else 0
        ttl = self._grid_ttl_ms(group, self.limits.grid_ttl_windows)
        try:
            others, _fixed = self._learn(
                keys=[
                    self._key(group, "learned"),
                    self._key(group, "log"),
                    self._key(group, "others"),
                    self._key(group, "grid"),
                ],
                args=[announced, left, reset_us, at_us, self._server_window_us(group), ttl],
            )
        except redis.RedisError:
            log.warning("could not record Braze's rate-limit headers for group %s", group)
            return None
        if announced > 0 and group not in self.limits.overrides:
            self._in_effect[group] = announced
        return None if int(others) < 0 else int(others)

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
        used, blocked_us, now_us, learned, others = self._usage(
            keys=[
                self._key(group, "log"),
                self._key(group, "blocked"),
                self._key(group, "learned"),
                self._key(group, "others"),
            ],
            args=[self._window_us(group)],
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

    def reset(self, *, group: str) -> None:
        """Forget everything about a group, as a Redis flush would (tests and benchmarks)."""
        self.redis.delete(*self._keys(group), *self._grid_keys(group))


def limiter_state(*, limiter: RateLimiter) -> list[dict[str, Any]]:
    """Rows for /metrics: per group, the limit in effect (and the configured one, and what
    Braze last announced: None before any answer) and its window, the sends in the current
    window, other clients' requests seen in Braze's window, how long Braze blocked it for,
    and whether its fixed windows are learnt."""
    rows = []
    for group in limiter.limits.groups:
        usage = limiter.usage(group=group)
        rows.append(
            {
                "group": group,
                "limit": usage.limit,
                "configured": usage.configured or limiter.limits.limit(group),
                "learned": usage.learned,
                "others": usage.others,
                "background_limit": usage.background_limit,
                "window_seconds": usage.window_seconds,
                "used": usage.used,
                "blocked_seconds": usage.blocked_for,
                "aligned": limiter.aligned(group=group),
                "requests_per_second": limiter.requests_per_second(group=group),
            }
        )
    return rows
