"""Where an audited action comes from (IP, user agent, web or worker).

The request middleware and Celery tasks set this; `audit_append` reads it, so services
keep a plain `actor=` argument and still record the origin of every entry.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from console.net import client_ip


@dataclass(frozen=True, slots=True)
class Origin:
    via: str
    ip: str | None = None
    user_agent: str = ""
    # The workspace the request was in (console/workspace_urls.py); "" outside one.
    workspace: str = ""


_origin: ContextVar[Origin | None] = ContextVar("audit_origin", default=None)


def current_origin() -> Origin:
    return _origin.get() or Origin(via="internal")


@contextmanager
def audit_origin(origin: Origin) -> Iterator[None]:
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def origin_from_request(request: HttpRequest) -> Origin:
    # The same address sign-in throttling uses: X-Forwarded-For only as far as it was
    # written by a trusted proxy (TRUSTED_PROXY_COUNT).
    # Requests built without the middleware stack (RequestFactory) are in no workspace.
    workspace = getattr(request, "workspace", None)
    return Origin(
        via="web",
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
        workspace=workspace.key if workspace is not None else "",
    )


class AuditRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit_origin(origin_from_request(request)):
            return self.get_response(request)
