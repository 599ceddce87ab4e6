"""The Prometheus endpoint and the middleware that times every request."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from console.metrics import record_request
from console.metrics.collect import registry


def _token_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken says nothing about how much of the token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for a scraper holding ``METRICS_TOKEN`` (never a session:
    the numbers describe every user's work). Without a token configured there is nothing
    here at all."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    if not _token_matches(request, token):
        response = HttpResponse(
            "A bearer token is required.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


class RequestMetricsMiddleware:
    """Counts and times each request under its view name (the URL pattern's name, never the
    path, which holds ids), method and status class. Outermost, so refusals by other
    middleware are counted too (as ``<unresolved>``: no view was chosen)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "<unnamed>") if match is not None else "<unresolved>"
        method = request.method if request.method in _METHODS else "other"
        record_request(
            view=view,
            method=method or "other",
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
