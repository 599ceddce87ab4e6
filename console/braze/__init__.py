"""The Braze client: ``get_client()`` gives this process's client (see client.py).

One ``httpx.Client`` (and one Redis connection pool for the limiter) per process, made on
first use and forgotten in a forked child: Celery's prefork children and gunicorn workers
must not share their parent's sockets.
"""

from __future__ import annotations

import os
import threading

import httpx
import redis
from django.conf import settings

from console.braze.client import BrazeClient, RetryPolicy
from console.braze.endpoints import resolve_rest_endpoint
from console.braze.errors import (
    BrazeBadResponse,
    BrazeConfigurationError,
    BrazeError,
    BrazeForbidden,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeServerError,
    BrazeTimeout,
    BrazeUnauthorized,
    BrazeUnavailable,
    BrazeValidationError,
    describe_error,
)
from console.braze.limiter import Lane, RateLimiter, limits_from_settings

__all__ = [
    "BrazeBadResponse",
    "BrazeClient",
    "BrazeConfigurationError",
    "BrazeError",
    "BrazeForbidden",
    "BrazeNotFound",
    "BrazeRateLimited",
    "BrazeServerError",
    "BrazeTimeout",
    "BrazeUnauthorized",
    "BrazeUnavailable",
    "BrazeValidationError",
    "build_http_client",
    "close_client",
    "describe_error",
    "get_client",
    "get_limiter",
]

_lock = threading.Lock()
_base: BrazeClient | None = None
_base_config: tuple[object, ...] = ()


def build_http_client(*, base_url: str) -> httpx.Client:
    timeout = httpx.Timeout(
        connect=settings.BRAZE_CONNECT_TIMEOUT,
        read=settings.BRAZE_READ_TIMEOUT,
        write=settings.BRAZE_READ_TIMEOUT,
        pool=settings.BRAZE_CONNECT_TIMEOUT,
    )
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        # Keep-alive longer than the slowest group's spacing (12 s) so pacing does not cost
        # a new TLS handshake per request.
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=60),
        headers={"Accept": "application/json", "User-Agent": "braze-content-console"},
        follow_redirects=False,
    )


def get_limiter() -> RateLimiter:
    return get_client().limiter


def get_client(*, lane: Lane = "interactive", max_wait: float | None = None) -> BrazeClient:
    """This process's Braze client. Background work passes ``lane="background"``."""
    global _base, _base_config
    # Settings can change under tests (override_settings): rebuild when they do.
    config = (
        settings.BRAZE_REST_ENDPOINT,
        settings.BRAZE_API_KEY,
        settings.BRAZE_SCIM_TOKEN,
        settings.BRAZE_SCIM_ORIGIN,
        settings.REDIS_URL,
        repr(settings.BRAZE_RATE_LIMITS),
    )
    with _lock:
        if _base is None or config != _base_config:
            _base_config = config
            limiter = RateLimiter(
                redis_client=redis.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
                ),
                limits=limits_from_settings(),
            )
            _base = BrazeClient(
                http=build_http_client(
                    base_url=resolve_rest_endpoint(value=settings.BRAZE_REST_ENDPOINT)
                ),
                limiter=limiter,
                api_key=settings.BRAZE_API_KEY,
                scim_token=settings.BRAZE_SCIM_TOKEN,
                scim_origin=settings.BRAZE_SCIM_ORIGIN,
                max_wait=settings.BRAZE_MAX_WAIT["interactive"],
                retry=RetryPolicy(**settings.BRAZE_RETRY),
            )
        base = _base
    if lane == "interactive" and max_wait is None:
        return base
    wait = max_wait if max_wait is not None else settings.BRAZE_MAX_WAIT[lane]
    return base.with_options(lane=lane, max_wait=wait)


def close_client() -> None:
    global _base, _base_config
    with _lock:
        if _base is not None:
            _base._http.close()
        _base, _base_config = None, ()


def _forget_after_fork() -> None:
    # Drop, never close: closing would shut sockets the parent is still using.
    global _base, _base_config, _lock
    _base, _base_config = None, ()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
