"""Reachability checks behind /healthz and the home page. Each returns (ok, detail)."""

import httpx
import redis
from django.conf import settings
from django.db import connection

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

    This deliberately sends no API key: health probes run often and must not spend
    the workspace's rate-limited quota.
    """
    try:
        httpx.get(settings.BRAZE_REST_ENDPOINT, timeout=2.0)
        return True, "reachable"
    except httpx.HTTPError as exc:
        return False, type(exc).__name__


def health_report() -> dict[str, dict[str, object]]:
    checks = {
        "database": check_database(),
        "redis": check_redis(),
        "celery": check_celery(),
        "braze": check_braze(),
    }
    return {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}
