"""The identity provider's discovery document: read once per process (at start, or at first
use if the provider could not be reached then) and kept, per configured issuer."""

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from sso.config import sso_enabled

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    # RP-initiated logout, where the provider offers it.
    end_session_endpoint: str | None


class ProviderUnavailable(Exception):
    """The discovery document could not be read (the provider is down or misconfigured)."""


_cache: dict[str, ProviderMetadata] = {}
_lock = threading.Lock()


def _fetch(issuer: str) -> ProviderMetadata:
    url = issuer.rstrip("/") + DISCOVERY_PATH
    try:
        response = httpx.get(url, timeout=settings.OIDC_TIMEOUT, follow_redirects=False)
        response.raise_for_status()
        doc: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"{url}: {type(exc).__name__}") from exc
    # OpenID Connect Discovery 1.0, section 4.3: the document's issuer is the one configured,
    # and every token's `iss` must equal it.
    if doc.get("issuer") not in {issuer, issuer.rstrip("/")}:
        raise ProviderUnavailable(
            f"OIDC_ISSUER is {issuer!r} but the provider calls itself {doc.get('issuer')!r}"
        )
    try:
        return ProviderMetadata(
            issuer=str(doc["issuer"]),
            authorization_endpoint=str(doc["authorization_endpoint"]),
            token_endpoint=str(doc["token_endpoint"]),
            userinfo_endpoint=str(doc["userinfo_endpoint"]),
            jwks_uri=str(doc["jwks_uri"]),
            end_session_endpoint=doc.get("end_session_endpoint") or None,
        )
    except KeyError as exc:
        raise ProviderUnavailable(f"{url}: no {exc.args[0]}") from exc


def provider_metadata() -> ProviderMetadata:
    """The configured provider's endpoints (raises ProviderUnavailable if not readable)."""
    issuer = settings.OIDC_ISSUER
    found = _cache.get(issuer)
    if found is None:
        with _lock:
            found = _cache.get(issuer) or _fetch(issuer)
            _cache[issuer] = found
    return found


def provider_metadata_warm() -> None:
    """At start: read the discovery document now, so the first sign-in does not wait."""
    # Only the web signs people in (workers and commands would read it for nothing).
    if not sso_enabled() or settings.TESTING or os.environ.get("CONSOLE_PROCESS") != "web":
        return
    try:
        provider_metadata()
    except ProviderUnavailable as exc:
        logger.warning("identity provider not reachable at start (%s): will retry", exc)
