"""What a scrape of /metrics reads: the recorded counters, and gauges computed now.

Gauges are read from their sources at scrape time (PostgreSQL for bulk jobs, catalog syncs
and the audit chain; Redis for the limiter and Celery's queues), never kept up to date by
the code that changes them, so they cannot drift. A source that fails is left out of that
scrape and reported by ``console_metrics_source_up{source}`` = 0; the rest still answer.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from urllib.parse import parse_qsl

import redis
from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from console import metrics as recorded
from console.audit.models import AuditCheckpoint, AuditEntry
from console.braze import get_limiter, limiter
from console.celery import app
from console.metrics.sources import metrics_sources_registered
from console.workspaces import workspaces_all

log = logging.getLogger(__name__)

type Families = Iterator[Metric]


def _recorded() -> Families:
    with redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
    ) as client:
        hashes = {metric: client.hgetall(recorded.key(metric)) for metric in recorded.RECORDED}
    for metric, raw in hashes.items():
        fields = {tuple(json.loads(k)): float(v) for k, v in raw.items()}
        n = len(metric.labels)
        if metric.kind == "counter":
            counter = CounterMetricFamily(
                metric.name.removesuffix("_total"), metric.help, labels=metric.labels
            )
            for parts, value in sorted(fields.items()):
                counter.add_metric(list(parts), value)
            yield counter
            continue
        histogram = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
        series: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for parts, value in fields.items():
            values, rest = parts[:n], parts[n:]
            series[values]["le:" + rest[1] if rest[0] == "le" else rest[0]] = value
        for values, parts_of in sorted(series.items()):
            buckets, cumulative = [], 0.0
            bounds = {float(b) for b in metric.buckets} | {
                float(k[3:]) for k in parts_of if k.startswith("le:") and k != "le:+Inf"
            }
            for bound in sorted(bounds):
                cumulative += parts_of.get("le:" + repr(bound), 0.0)
                buckets.append((_bound(bound), cumulative))
            buckets.append(("+Inf", parts_of.get("count", cumulative)))
            histogram.add_metric(list(values), buckets, sum_value=parts_of.get("sum", 0.0))
        yield histogram


def _bound(value: float) -> str:
    return str(int(value)) + ".0" if value.is_integer() else repr(value)


def _limiter() -> Families:
    # Each workspace has its own limits and its own limiter (console/braze/__init__.py).
    rows = [
        {**row, "workspace": workspace.key}
        for workspace in workspaces_all()
        for row in limiter.limiter_state(limiter=get_limiter(workspace=workspace))
    ]
    gauges = {
        "limit": (
            "console_braze_limit",
            "Requests a limit group may send per window: the limit in effect.",
        ),
        "configured": (
            "console_braze_limit_configured",
            "The limit the settings give (the figures of Braze's docs, or an override).",
        ),
        "learned": (
            "console_braze_limit_learned",
            "The limit Braze last announced in X-RateLimit-Limit (absent before any answer).",
        ),
        "others": (
            "console_braze_limiter_others",
            "Requests in Braze's window that were not the console's (another integration).",
        ),
        "background_limit": (
            "console_braze_limit_background",
            "Of those, what background work (syncs, bulk jobs, read-backs) may use: its share.",
        ),
        "window_seconds": (
            "console_braze_limit_window_seconds",
            "The window the limiter enforces (Braze's, scaled in benchmarks, plus the margin).",
        ),
        "used": (
            "console_braze_limiter_used",
            "Requests in the limiter's log for the current window, across every process.",
        ),
        "blocked_seconds": (
            "console_braze_limiter_blocked_seconds",
            "Seconds the group stays blocked for every process after Braze said it was full.",
        ),
        "aligned": (
            "console_braze_limiter_aligned",
            "1 when the limiter has learnt that Braze counts fixed windows and takes slots "
            "on that grid; 0 on the sliding log.",
        ),
        "requests_per_second": (
            "console_braze_limiter_requests_per_second",
            "What the group sustains with the limit and windows in effect.",
        ),
    }
    for column, (name, text) in gauges.items():
        family = GaugeMetricFamily(name, text, labels=["workspace", "group"])
        for row in rows:
            # A column the limiter does not know (yet) is left out, not shown as zero.
            if row.get(column) is not None:
                family.add_metric([row["workspace"], row["group"]], float(row[column]))
        yield family


def celery_queue_names() -> list[str]:
    names = {app.conf.task_default_queue or "celery"}
    for queue in app.conf.task_queues or ():
        names.add(getattr(queue, "name", str(queue)))
    routes = app.conf.task_routes or {}
    if isinstance(routes, dict):
        for route in routes.values():
            if isinstance(route, dict) and route.get("queue"):
                names.add(str(getattr(route["queue"], "name", route["queue"])))
    return sorted(names)


# Kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def broker_redis_url(url: str) -> str | None:
    """The broker as redis-py names it (kombu's ``redis+socket://`` is redis-py's
    ``unix://``); None for a broker that is not Redis."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return url
    for scheme in ("redis+socket://", "socket://"):
        if url.startswith(scheme):
            path, _, query = url.removeprefix(scheme).partition("?")
            params = dict(parse_qsl(query))
            db = params.get("virtual_host", params.get("db", "0")).strip("/") or "0"
            return f"unix://{path}?db={db}"
    return None


def _celery() -> Families:
    url = broker_redis_url(settings.CELERY_BROKER_URL)
    if url is None:
        raise ValueError("queue depths are read from a Redis broker only")
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        depth = GaugeMetricFamily(
            "console_celery_queue_length",
            "Messages waiting in each Celery queue of the broker (not yet taken by a worker).",
            labels=["queue"],
        )
        pipe = client.pipeline(transaction=False)
        names = celery_queue_names()
        for name in names:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        pipe.hlen("unacked")
        lengths = pipe.execute()
        for i, name in enumerate(names):
            step = len(_PRIORITY_SUFFIXES)
            depth.add_metric([name], float(sum(lengths[i * step : (i + 1) * step])))
        yield depth
        yield GaugeMetricFamily(
            "console_celery_unacked",
            "Messages workers have taken and not yet acknowledged (tasks running or reserved).",
            value=float(lengths[-1]),
        )
    finally:
        client.close()


def _age(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds())


def _audit() -> Families:
    head = AuditEntry.objects.aggregate(seq=Max("seq"))["seq"] or 0
    yield GaugeMetricFamily(
        "console_audit_head_seq", "Sequence number of the newest audit entry.", value=float(head)
    )
    checkpoint = AuditCheckpoint.objects.order_by("-id").only("created_at", "last_seq").first()
    if checkpoint is None:
        return
    yield GaugeMetricFamily(
        "console_audit_checkpoint_seq",
        "The audit entry the newest signed checkpoint covers up to.",
        value=float(checkpoint.last_seq),
    )
    yield GaugeMetricFamily(
        "console_audit_checkpoint_age_seconds",
        "Seconds since the newest signed checkpoint of the audit chain.",
        value=_age(timezone.now(), checkpoint.created_at),
    )


class ConsoleCollector(Collector):
    """Every family of /metrics, read at scrape time (see the module docstring)."""

    def sources(self) -> dict[str, Callable[[], Iterable[Metric]]]:
        # The apps' sources (bulk jobs, catalog syncs) are registered from their ready().
        return {
            "recorded": _recorded,
            "limiter": _limiter,
            "celery": _celery,
            **metrics_sources_registered(),
            "audit": _audit,
        }

    def collect(self) -> Families:
        up = GaugeMetricFamily(
            "console_metrics_source_up",
            "1 when this scrape could read the source (recorded counters, limiter, Celery "
            "broker, bulk jobs, catalogs, audit), 0 when it failed and its series are missing.",
            labels=["source"],
        )
        for name, source in self.sources().items():
            try:
                families = list(source())
            except Exception as exc:  # one broken source must not hide the others
                log.warning("metrics source %s failed: %s", name, type(exc).__name__)
                up.add_metric([name], 0.0)
                continue
            up.add_metric([name], 1.0)
            yield from families
        yield up


def registry() -> CollectorRegistry:
    """A registry of the console's own families only: the default one describes the one
    process that happens to answer the scrape, which says nothing about the others."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector())
    return registry
