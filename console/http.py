"""The request types views are written against.

Django's `HttpRequest.user` may be anonymous and its `htmx` attribute is added by
django-htmx's middleware, so neither is visible to mypy on `HttpRequest` itself.
Views behind `console.access.require_capability` take an `AuthenticatedRequest`;
the decorator has already refused anonymous users. The workspace middleware gives every
request the workspace it is in.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from console.workspaces import Workspace


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails


class WorkspaceRequest(HttpRequest):
    """Every request has the workspace it is in (console/workspace_urls.py)."""

    workspace: Workspace


class AuthenticatedRequest(HtmxRequest, WorkspaceRequest):
    user: User


def htmx_targets(request: HttpRequest, target: str) -> bool:
    """Whether this is an htmx request that will swap only the element `target`."""
    return bool(getattr(request, "htmx", False)) and request.headers.get("HX-Target") == target
