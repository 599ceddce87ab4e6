"""Sign-in throttling before authentication, and a bounded audit of failed sign-ins.

Failed and refused sign-ins are counted in Redis per source address (`console.net.client_ip`)
in fixed windows of SIGNIN_WINDOW_SECONDS:

* A source with SIGNIN_IP_FAILURE_LIMIT failures in the window is refused before its
  credentials are looked at (password spraying: many usernames from one address). Axes
  still locks a username *for one address* after AXES_FAILURE_LIMIT failures, so guessing
  one account's password is slow while nobody elsewhere can lock its owner out.
* Once SIGNIN_GLOBAL_FAILURE_LIMIT failures arrived from all sources together, any source
  that has failed in this window is refused too (a distributed attack gets one guess per
  address and window), while a source with a clean record still signs in.

The audit trail gets the first failure of a source in a window as its own entry (for up to
SIGNIN_AUDIT_SOURCES sources per window), and once the window is over one entry per source
with the number of attempts not yet recorded (`signin_failures_record`, every minute). So a
flood adds a bounded number of chained entries, and approvals never queue behind it for
the chain lock. Once a source is refused, a process refuses it without asking Redis until
the window ends and adds those refusals to the count at most once a second (and at exit),
so a flood costs neither the database nor a Redis round trip per request. If Redis cannot
be reached, nothing is throttled here and every failure is recorded on its own, as signing
in must not depend on the counter.
"""

import atexit
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from console.audit import events
from console.audit.context import Origin, audit_origin
from console.audit.services import ANONYMOUS, Outcome, audit_append

logger = logging.getLogger(__name__)

_PREFIX = "console:signin"
_WINDOWS = f"{_PREFIX}:windows"
_RECORD_LOCK = f"{_PREFIX}:record-lock"
UNKNOWN_SOURCE = "unknown"

# KEYS: attempts per source (hash), attempts in all (counter), sources recorded on their own
# (set), windows holding counts (set). ARGV: source, key TTL (s), window number, mode, per-
# source limit, global limit, sources recorded on their own per window, attempts to add.
# Modes: "check" refuses (and counts) an attempt if the source is over a limit; "fail"
# counts a failed attempt; "add" adds refusals counted in a process.
# Returns {refused (0/1), record this failure on its own (0/1)}.
_COUNT = """
local source = ARGV[1]
local ttl = tonumber(ARGV[2])
local mode = ARGV[4]
local n = 1
if mode == 'check' then
  local mine = tonumber(redis.call('HGET', KEYS[1], source) or '0')
  local all = tonumber(redis.call('GET', KEYS[2]) or '0')
  if not (mine >= tonumber(ARGV[5]) or (mine > 0 and all >= tonumber(ARGV[6]))) then
    return {0, 0}
  end
elseif mode == 'add' then
  n = tonumber(ARGV[8])
end
local mine = redis.call('HINCRBY', KEYS[1], source, n)
redis.call('INCRBY', KEYS[2], n)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('SADD', KEYS[4], ARGV[3])
if mode ~= 'fail' then
  return {1, 0}
end
if mine == 1 and redis.call('SCARD', KEYS[3]) < tonumber(ARGV[7]) then
  redis.call('SADD', KEYS[3], source)
  redis.call('EXPIRE', KEYS[3], ttl)
  return {0, 1}
end
return {0, 0}
"""

_clients: dict[str, tuple[redis.Redis, Any]] = {}


def _redis_and_script() -> tuple[redis.Redis, Any]:
    url = settings.REDIS_URL
    found = _clients.get(url)
    if found is None:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        found = _clients[url] = (client, client.register_script(_COUNT))
    return found


def _redis() -> redis.Redis:
    return _redis_and_script()[0]


def _keys(window: int) -> list[str]:
    base = f"{_PREFIX}:{window}"
    return [f"{base}:sources", f"{base}:total", f"{base}:recorded", _WINDOWS]


def _window(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // settings.SIGNIN_WINDOW_SECONDS)


@dataclass(frozen=True, slots=True)
class Attempt:
    refused: bool = False
    # Whether this failure gets an audit entry of its own (the others are summed up later).
    record: bool = True


def _count(*, source: str, window: int, mode: str, n: int = 1) -> Attempt:
    try:
        _, script = _redis_and_script()
        refused, record = script(
            keys=_keys(window),
            args=[
                source,
                settings.SIGNIN_WINDOW_SECONDS * 2 + 3600,
                window,
                mode,
                settings.SIGNIN_IP_FAILURE_LIMIT,
                settings.SIGNIN_GLOBAL_FAILURE_LIMIT,
                settings.SIGNIN_AUDIT_SOURCES,
                n,
            ],
        )
    except redis.RedisError as exc:
        logger.warning("sign-in counter unavailable (%s): not throttling", type(exc).__name__)
        return Attempt(refused=False, record=mode == "fail")
    return Attempt(refused=bool(refused), record=bool(record))


@dataclass(slots=True)
class _Refusing:
    """A source this process has seen refused: it stays refused until its window ends (its
    count only grows), so later attempts are refused here without asking Redis, and counted
    there in one go at most every REFUSALS_FLUSH_SECONDS."""

    window: int
    unflushed: int = 0
    flushed_at: float = field(default_factory=time.monotonic)


REFUSALS_FLUSH_SECONDS = 1.0
_REFUSING_MAX = 10_000
_refusing: dict[str, _Refusing] = {}
_refusing_lock = threading.Lock()


def signin_attempt_admit(*, source: str | None) -> bool:
    """Before authenticating: False (and the refusal counted) if `source` is throttled."""
    key, window = source or UNKNOWN_SOURCE, _window()
    flush: tuple[int, int] | None = None
    with _refusing_lock:
        known = _refusing.get(key)
        if known is not None and known.window != window:
            del _refusing[key]
            flush = (known.window, known.unflushed) if known.unflushed else None
            known = None
        elif known is not None:
            known.unflushed += 1
            if time.monotonic() - known.flushed_at >= REFUSALS_FLUSH_SECONDS:
                flush = (window, known.unflushed)
                known.unflushed, known.flushed_at = 0, time.monotonic()
    if flush is not None:
        _count(source=key, window=flush[0], mode="add", n=flush[1])
    if known is not None:
        return False
    if not _count(source=key, window=window, mode="check").refused:
        return True
    with _refusing_lock:
        if len(_refusing) < _REFUSING_MAX:
            _refusing[key] = _Refusing(window)
    return False


def signin_refusals_flush() -> None:
    """Add the refusals this process has counted but not yet sent (also run at exit)."""
    with _refusing_lock:
        pending = [(key, r.window, r.unflushed) for key, r in _refusing.items() if r.unflushed]
        for known in _refusing.values():
            known.unflushed, known.flushed_at = 0, time.monotonic()
    for key, window, n in pending:
        _count(source=key, window=window, mode="add", n=n)


atexit.register(signin_refusals_flush)


def signin_failure_count(*, source: str | None) -> Attempt:
    """Count a failed sign-in; the answer says whether it gets an audit entry of its own."""
    return _count(source=source or UNKNOWN_SOURCE, window=_window(), mode="fail")


def signin_failure_audit(*, source: str | None, username: str) -> None:
    """The user_login_failed hook: count the failure, and record it if it is a source's first."""
    if not signin_failure_count(source=source).record:
        return
    # The attempted username may be someone's email address: keep it erasable.
    audit_append(
        actor=ANONYMOUS,
        action=events.AUTH_SIGN_IN_FAILED,
        outcome=Outcome.FAILURE,
        personal={"username": username[:150]},
    )


def _iso(window: int, offset: int = 0) -> str:
    seconds = (window + offset) * settings.SIGNIN_WINDOW_SECONDS
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _record_window(client: redis.Redis, window: int) -> int:
    sources_key, total_key, recorded_key, _ = _keys(window)
    raw_counts: dict[bytes, bytes] = client.hgetall(sources_key)  # type: ignore[assignment]
    recorded: set[bytes] = client.smembers(recorded_key)  # type: ignore[assignment]
    pending = {
        source.decode(): int(count) - (1 if source in recorded else 0)
        for source, count in raw_counts.items()
    }
    ranked = sorted(
        ((source, count) for source, count in pending.items() if count > 0),
        key=lambda item: (-item[1], item[0]),
    )
    cap = settings.SIGNIN_AUDIT_SOURCES
    window_data: dict[str, Any] = {"window_start": _iso(window), "window_end": _iso(window, 1)}
    written = 0
    with transaction.atomic():
        for source, count in ranked[:cap]:
            ip = None if source == UNKNOWN_SOURCE else source
            with audit_origin(Origin(via="web", ip=ip)):
                audit_append(
                    actor=ANONYMOUS,
                    action=events.AUTH_SIGN_IN_FAILURES,
                    outcome=Outcome.FAILURE,
                    data={"attempts": count, **window_data},
                )
            written += 1
        rest = ranked[cap:]
        if rest:
            with audit_origin(Origin(via="web")):
                audit_append(
                    actor=ANONYMOUS,
                    action=events.AUTH_SIGN_IN_FAILURES,
                    outcome=Outcome.FAILURE,
                    data={
                        "attempts": sum(count for _, count in rest),
                        "sources": len(rest),
                        **window_data,
                    },
                )
            written += 1
    client.delete(sources_key, total_key, recorded_key)
    client.srem(_WINDOWS, window)
    return written


def signin_failures_record(*, now: float | None = None) -> int:
    """Write the summaries of the windows that are over; returns how many entries it wrote.

    One run at a time (a Redis lock), and counts are deleted only once their entries are
    committed, so a crash can at worst record a window twice, never lose it silently.
    """
    client = _redis()
    current = _window(now)
    token = str(time.time_ns())
    if not client.set(_RECORD_LOCK, token, nx=True, ex=300):
        return 0
    try:
        windows = sorted(int(w) for w in client.smembers(_WINDOWS))
        return sum(_record_window(client, window) for window in windows if window < current)
    finally:
        if client.get(_RECORD_LOCK) == token.encode():
            client.delete(_RECORD_LOCK)


def signin_counters_clear() -> None:
    """Forget every count, and this process's refusing sources (tests)."""
    with _refusing_lock:
        _refusing.clear()
    client = _redis()
    keys = list(client.scan_iter(match=f"{_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)
