"""The Braze client: ``get_client()`` gives this process's client (see client.py).

One ``httpx.Client`` (and one Redis connection pool for the limiter) per process and
workspace, made on first use and forgotten in a forked child: Celery's prefork children and
gunicorn workers must not share their parent's sockets.

``get_client(workspace=…)`` talks to that workspace with its own key, and its own limiter
keyed by the workspace's name (Braze's limits, and the limits it announces, are per
workspace). Without one, the default workspace, read from the single-workspace settings
(``BRAZE_REST_ENDPOINT``, ``BRAZE_API_KEY``, …, which settings derive from it).
"""

from __future__ import annotations

import os
import threading
import urllib.request

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
from console.workspaces import Workspace, workspace_active, workspace_default, workspace_get

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
# Per workspace key: the client and the configuration it was built from.
_clients: dict[str, tuple[tuple[object, ...], BrazeClient]] = {}


def build_http_client(
    *, base_url: str, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The HTTP client for Braze; ``transport``: the one it sends through (default: a
    pool as build_http_transport makes)."""
    timeout = httpx.Timeout(
        connect=settings.BRAZE_CONNECT_TIMEOUT,
        read=settings.BRAZE_READ_TIMEOUT,
        write=settings.BRAZE_READ_TIMEOUT,
        pool=settings.BRAZE_CONNECT_TIMEOUT,
    )
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        transport=transport or build_http_transport(),
        headers={"Accept": "application/json", "User-Agent": "braze-content-console"},
        follow_redirects=False,
    )


def build_http_transport() -> httpx.HTTPTransport:
    # Keep-alive longer than the slowest group's spacing (12 s) so pacing does not cost a new
    # TLS handshake per request.
    return httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=60)
    )


def get_limiter(*, workspace: Workspace | str | None = None) -> RateLimiter:
    return get_client(workspace=workspace).limiter


def _connection(workspace: Workspace | str | None) -> tuple[str, tuple[object, ...]]:
    """The workspace's key and what its client is built from (endpoint, secrets, limits)."""
    default = workspace_default()
    if workspace is None:
        chosen = workspace_active()
    elif isinstance(workspace, str):
        chosen = workspace_get(workspace)
    else:
        chosen = workspace
    limits = repr(settings.BRAZE_RATE_LIMITS)
    if chosen.key == default.key:
        # Settings can change under tests (override_settings): rebuild when they do.
        return chosen.key, (
            settings.BRAZE_REST_ENDPOINT,
            settings.BRAZE_API_KEY,
            settings.BRAZE_SCIM_TOKEN,
            settings.BRAZE_SCIM_ORIGIN,
            settings.REDIS_URL,
            limits,
            settings.BRAZE_RATE_LIMITS["workspace"],
        )
    return chosen.key, (
        chosen.rest_endpoint,
        chosen.api_key,
        chosen.scim_token,
        chosen.scim_origin,
        settings.REDIS_URL,
        limits,
        chosen.key,
    )


def get_client(
    *,
    lane: Lane = "interactive",
    max_wait: float | None = None,
    workspace: Workspace | str | None = None,
) -> BrazeClient:
    """This process's Braze client for ``workspace`` (default: the workspace being worked in,
    ``workspace_active``: a request's, or the one a worker applies a change in).

    Background work passes ``lane="background"``. An unknown workspace name is a
    ``LookupError``.
    """
    key, config = _connection(workspace)
    with _lock:
        known = _clients.get(key)
        if known is None or known[0] != config:
            endpoint, api_key, scim_token, scim_origin, redis_url, _, limiter_key = config
            limiter = RateLimiter(
                redis_client=redis.Redis.from_url(
                    str(redis_url), socket_timeout=2, socket_connect_timeout=2
                ),
                limits=limits_from_settings(workspace=str(limiter_key)),
            )
            transport = build_http_transport()
            base_url = resolve_rest_endpoint(value=str(endpoint))
            client = BrazeClient(
                http=build_http_client(base_url=base_url, transport=transport),
                # Behind a proxy (the environment's, which httpx.Client follows) every
                # request goes through the client.
                transport=None if urllib.request.getproxies() else transport,
                limiter=limiter,
                api_key=str(api_key),
                scim_token=str(scim_token),
                scim_origin=str(scim_origin),
                max_wait=settings.BRAZE_MAX_WAIT["interactive"],
                retry=RetryPolicy(**settings.BRAZE_RETRY),
            )
            known = (config, client)
            _clients[key] = known
        base = known[1]
    if lane == "interactive" and max_wait is None:
        return base
    wait = max_wait if max_wait is not None else settings.BRAZE_MAX_WAIT[lane]
    return base.with_options(lane=lane, max_wait=wait)


def close_client() -> None:
    """Close every workspace's client (the next ``get_client`` builds afresh)."""
    with _lock:
        for _, client in _clients.values():
            client._http.close()
        _clients.clear()


def _forget_after_fork() -> None:
    # Drop, never close: closing would shut sockets the parent is still using.
    global _lock
    _clients.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
