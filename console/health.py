"""Reachability checks behind /healthz and the home page. Each returns (ok, detail)."""

import threading
import time

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from console.braze import get_client
from console.braze.endpoints import describe_endpoint, resolve_rest_endpoint, rest_endpoint_ping
from console.braze.permissions import cached_permission_report
from console.celery import app as celery_app

type Check = tuple[bool, str]


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any failure means "down"; the class name is enough detail
        return False, type(exc).__name__


def check_redis() -> Check:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        client.ping()
        return True, "ok"
    except Exception as exc:
        return False, type(exc).__name__


def check_celery() -> Check:
    try:
        replies = celery_app.control.ping(timeout=1.0)
    except Exception as exc:
        return False, type(exc).__name__
    if not replies:
        return False, "no worker answered"
    return True, f"{len(replies)} worker(s)"


def check_braze() -> Check:
    """Is the Braze REST endpoint reachable at all? Any HTTP answer counts.

    The reachability request sends no API key: health probes run often and must not
    spend the workspace's rate-limited quota. Which permissions the key has comes from a
    probe that does spend a little, so its result is cached (console/braze/permissions.py).
    """
    try:
        base_url = resolve_rest_endpoint(value=settings.BRAZE_REST_ENDPOINT)
    except ImproperlyConfigured:
        return False, "BRAZE_REST_ENDPOINT is not valid"
    unreachable = rest_endpoint_ping(base_url=base_url)
    if unreachable:
        return False, unreachable
    label = describe_endpoint(base_url=base_url)
    if not settings.BRAZE_API_KEY:
        return True, f"reachable ({label}); no API key configured"
    # The permission probe does spend quota, so it is cached (10 minutes by default).
    try:
        report = cached_permission_report(client=get_client())
    except Exception as exc:  # the probe is informative; reachability is the health signal
        return True, f"reachable ({label}); permissions unknown ({type(exc).__name__})"
    return True, f"reachable ({label}); {report.summary()}"


def health_report() -> dict[str, dict[str, object]]:
    checks = {
        "database": check_database(),
        "redis": check_redis(),
        "celery": check_celery(),
        "braze": check_braze(),
    }
    return {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}


_cache_lock = threading.Lock()
_cached: tuple[float, dict[str, dict[str, object]]] | None = None


def health_report_cached() -> dict[str, dict[str, object]]:
    """`health_report`, run at most once per HEALTHZ_CACHE_SECONDS in this process.

    Kept in the process, not in Redis: the report says whether Redis is up. Callers that
    arrive while it runs wait for that run instead of starting their own.
    """
    global _cached
    with _cache_lock:
        if _cached is None or time.monotonic() - _cached[0] >= settings.HEALTHZ_CACHE_SECONDS:
            _cached = (time.monotonic(), health_report())
        return _cached[1]


def health_report_forget() -> None:
    global _cached
    with _cache_lock:
        _cached = None
