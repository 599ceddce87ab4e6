"""Braze REST endpoint resolution: an instance name (``US-03``) or a full URL."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from django.core.exceptions import ImproperlyConfigured

# Braze's documented instance list ("API and SDK endpoints" page of the Braze docs).
INSTANCES: dict[str, str] = {
    "US-01": "https://rest.iad-01.braze.com",
    "US-02": "https://rest.iad-02.braze.com",
    "US-03": "https://rest.iad-03.braze.com",
    "US-04": "https://rest.iad-04.braze.com",
    "US-05": "https://rest.iad-05.braze.com",
    "US-06": "https://rest.iad-06.braze.com",
    "US-07": "https://rest.iad-07.braze.com",
    "US-08": "https://rest.iad-08.braze.com",
    "US-10": "https://rest.us-10.braze.com",
    "EU-01": "https://rest.fra-01.braze.eu",
    "EU-02": "https://rest.fra-02.braze.eu",
    "AU-01": "https://rest.au-01.braze.com",
    "ID-01": "https://rest.id-01.braze.com",
}


def resolve_rest_endpoint(*, value: str) -> str:
    """The base URL (no trailing slash) for an instance name or a full http(s) URL."""
    text = value.strip()
    if not text:
        raise ImproperlyConfigured("BRAZE_REST_ENDPOINT is empty.")
    instance = INSTANCES.get(text.upper())
    if instance is not None:
        return instance
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        known = ", ".join(INSTANCES)
        raise ImproperlyConfigured(
            f"BRAZE_REST_ENDPOINT must be a Braze instance name ({known}) or a full URL; "
            f"got {text!r}."
        )
    return text.rstrip("/")


def describe_endpoint(*, base_url: str) -> str:
    """Human label for pages: 'Braze US-03' for a known instance, else the host."""
    for name, url in INSTANCES.items():
        if url == base_url:
            return f"Braze {name}"
    # No host name: this label appears on the unauthenticated /healthz.
    return "sandbox or proxy (not a Braze instance URL)"


def rest_endpoint_ping(*, base_url: str, timeout: float = 2.0) -> str | None:
    """None when the endpoint gave any HTTP answer, else why it could not be reached.

    Sends no API key: health probes run often and must not spend rate-limited quota.
    """
    try:
        httpx.get(base_url, timeout=timeout)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None
