"""Counters and histograms every process records, kept in Redis so one scrape sees them all.

The web processes, each Celery worker process and management commands all call Braze and
serve or run work; a scrape reaches only one web process. prometheus-client's own
multiprocess mode shares files in one directory, so it cannot add up workers on other hosts
and needs that directory wiped on every deploy. Here each observation is one pipelined round
trip of ``HINCRBY``s to the limiter's Redis (atomic, so concurrent processes never lose a
count), and the scrape reads the hashes back (``console/metrics/collect.py``). Everything that
is a state rather than an event (queue depths, jobs, sync lag, the audit chain) is read at
scrape time instead, so nothing here can drift from the truth.

Recording never fails the caller: Redis errors are swallowed, and after one the process stops
trying for ``_PAUSE_SECONDS`` so a dead Redis does not slow every request. Label values are
bounded by construction (view names, limit groups, status codes, task names), never a path
or an id.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

log = logging.getLogger(__name__)

_PAUSE_SECONDS = 10.0


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    labels: tuple[str, ...]
    # Upper bounds of a histogram's buckets (seconds); empty for a counter.
    buckets: tuple[float, ...] = ()

    @property
    def kind(self) -> str:
        return "histogram" if self.buckets else "counter"


HTTP_REQUESTS = Metric(
    "console_http_request_duration_seconds",
    "Requests served, by view name, method and status class, and how long they took.",
    ("view", "method", "status"),
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BRAZE_REQUESTS = Metric(
    "console_braze_request_duration_seconds",
    "Requests sent to Braze, by limit group and HTTP status (no_answer: none came), "
    "and how long each took.",
    ("group", "status"),
    (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LIMITER_WAITS = Metric(
    "console_braze_limiter_wait_seconds",
    "How long each Braze request waited for a rate-limit slot, by limit group and lane.",
    ("group", "lane"),
    (0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
LIMITER_REFUSALS = Metric(
    "console_braze_limiter_refusals_total",
    "Calls the limiter refused because no slot would free within their wait budget.",
    ("group", "lane"),
)
CELERY_TASKS = Metric(
    "console_celery_tasks_total",
    "Celery tasks that ended, by task name and outcome (success, failure, retry, revoked).",
    ("task", "outcome"),
)
RECORDED: tuple[Metric, ...] = (
    HTTP_REQUESTS,
    BRAZE_REQUESTS,
    LIMITER_WAITS,
    LIMITER_REFUSALS,
    CELERY_TASKS,
)

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_url = ""
_paused_until = 0.0


def _redis() -> redis.Redis | None:
    global _client, _client_url
    if not settings.METRICS_RECORD or time.monotonic() < _paused_until:
        return None
    url = settings.REDIS_URL
    with _lock:
        if _client is None or _client_url != url:
            _client_url = url
            _client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
        return _client


def key(metric: Metric) -> str:
    return f"{settings.METRICS_KEY_PREFIX}:{metric.name}"


def field(values: Sequence[str], *suffix: str) -> str:
    """A hash field: the label values (and a histogram part), in a form that cannot collide."""
    return json.dumps([*values, *suffix], separators=(",", ":"))


def _label_values(metric: Metric, labels: dict[str, str]) -> list[str]:
    return [str(labels[name]) for name in metric.labels]


def _bucket(metric: Metric, value: float) -> str:
    for bound in metric.buckets:
        if value <= bound:
            return repr(float(bound))
    return "+Inf"


type _Writes = list[tuple[Metric, list[tuple[str, int]], list[tuple[str, float]]]]


def _write(metric: Metric, counts: list[tuple[str, int]], sums: list[tuple[str, float]]) -> None:
    _write_many([(metric, counts, sums)])


class _Held(threading.local):
    # Counts and sums by (hash key, field) while a thread holds its writes (held()).
    counts: dict[tuple[str, str], int] | None = None
    sums: dict[tuple[str, str], float] | None = None


_held = _Held()


def _write_many(writes: _Writes) -> None:
    """Several metrics' counts and sums in one round trip to Redis (or, while the thread
    holds its writes, added to what it holds)."""
    counts: dict[tuple[str, str], int] = {} if _held.counts is None else _held.counts
    sums: dict[tuple[str, str], float] = {} if _held.sums is None else _held.sums
    for metric, metric_counts, metric_sums in writes:
        hash_key = key(metric)
        for name, count in metric_counts:
            counts[hash_key, name] = counts.get((hash_key, name), 0) + count
        for name, amount in metric_sums:
            sums[hash_key, name] = sums.get((hash_key, name), 0.0) + amount
    if _held.counts is None:
        _send(counts, sums)


def _send(counts: dict[tuple[str, str], int], sums: dict[tuple[str, str], float]) -> None:
    global _paused_until
    if not counts and not sums:
        return
    client = _redis()
    if client is None:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for (hash_key, name), count in counts.items():
            pipe.hincrby(hash_key, name, count)
        for (hash_key, name), amount in sums.items():
            pipe.hincrbyfloat(hash_key, name, amount)
        pipe.execute()
    except redis.RedisError as exc:
        _paused_until = time.monotonic() + _PAUSE_SECONDS
        log.warning("metrics not recorded for %ss: %s", _PAUSE_SECONDS, type(exc).__name__)


@contextmanager
def held() -> Iterator[None]:
    """Hold this thread's writes until the block ends (or ``held_flush``), then send them in
    one round trip, the same series added up: a bulk sender's round of requests pays one
    round trip instead of one per request. Nested blocks belong to the outermost."""
    if _held.counts is not None:
        yield
        return
    _held.counts, _held.sums = {}, {}
    try:
        yield
    finally:
        held_flush()
        _held.counts = _held.sums = None


def held_flush() -> None:
    """Send what this thread holds now (a scrape then counts it), and go on holding."""
    if _held.counts is None or _held.sums is None:
        return
    counts, sums = _held.counts, _held.sums
    _held.counts, _held.sums = {}, {}
    _send(counts, sums)


def inc(metric: Metric, amount: int = 1, **labels: str) -> None:
    _write(metric, [(field(_label_values(metric, labels)), amount)], [])


def _observation(metric: Metric, value: float, labels: dict[str, str]) -> _Writes:
    if not math.isfinite(value):
        return []
    values = _label_values(metric, labels)
    return [
        (
            metric,
            [(field(values, "le", _bucket(metric, value)), 1), (field(values, "count"), 1)],
            [(field(values, "sum"), value)],
        )
    ]


def observe(metric: Metric, value: float, **labels: str) -> None:
    writes = _observation(metric, value, labels)
    if writes:
        _write_many(writes)


# --- what the project records ------------------------------------------------------------------


def record_request(*, view: str, method: str, status: int, seconds: float) -> None:
    observe(HTTP_REQUESTS, seconds, view=view, method=method, status=f"{status // 100}xx")


def record_braze_call(
    *, group: str, lane: str, status: int | None, seconds: float, waited: float
) -> None:
    """One request that left for Braze (the client's ``_send``), and its wait for a slot:
    one round trip, as bulk senders record one for every request they send."""
    writes = _observation(
        BRAZE_REQUESTS, seconds, {"group": group, "status": str(status or "no_answer")}
    )
    writes += _observation(LIMITER_WAITS, waited, {"group": group, "lane": lane})
    if writes:
        _write_many(writes)


def record_limiter_refusal(*, group: str, lane: str) -> None:
    inc(LIMITER_REFUSALS, group=group, lane=lane)


def record_task(*, task: str, outcome: str) -> None:
    inc(CELERY_TASKS, task=task, outcome=outcome)


def _task_name(sender: Any) -> str:
    return str(getattr(sender, "name", None) or "unknown")


def _on_success(sender: Any = None, **_: Any) -> None:
    record_task(task=_task_name(sender), outcome="success")


def _on_failure(sender: Any = None, **_: Any) -> None:
    record_task(task=_task_name(sender), outcome="failure")


def _on_retry(sender: Any = None, **_: Any) -> None:
    record_task(task=_task_name(sender), outcome="retry")


def _on_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    name = _task_name(sender) if sender else str(getattr(request, "task", None) or "unknown")
    record_task(task=name, outcome="revoked")


def connect_celery_signals() -> None:
    """Count task outcomes in whatever process runs tasks (a worker; eagerly, the caller)."""
    from celery import signals

    for signal, handler in (
        (signals.task_success, _on_success),
        (signals.task_failure, _on_failure),
        (signals.task_retry, _on_retry),
        (signals.task_revoked, _on_revoked),
    ):
        signal.connect(handler, weak=False, dispatch_uid=f"metrics.{handler.__name__}")


def _forget_after_fork() -> None:
    # A forked child (Celery prefork, gunicorn) must not share its parent's Redis socket.
    global _client, _client_url, _lock
    _client, _client_url = None, ""
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
