"""Which workspace a request is in, and URLs that carry it (README "Workspaces", "URLs").

With several workspaces configured, every workspace-scoped URL starts with ``/w/<key>/``.
``WorkspaceMiddleware`` takes that prefix off ``request.path_info`` and adds it to the script
prefix for the rest of the request, so the URL confs stay as they are and every ``reverse()``
and ``{% url %}`` made while answering builds URLs in the same workspace. Unprefixed URLs of
scoped pages redirect (GET, HEAD) to the person's last workspace, else the default; other
methods are refused, as they would act on a workspace nobody named. Static files, health,
metrics and ``/accounts/`` (sign-in, single sign-on callback, password, second factor) belong to
no workspace and are never prefixed.

A single-workspace set-up keeps its URLs unprefixed (``/w/<key>/`` is accepted too), so
bookmarks and links made before workspaces keep working.

Links made outside a request (e-mails, notifications, Celery tasks) name their workspace:
``workspace_reverse(…, workspace=…)``.
"""

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponseBadRequest,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.urls import get_script_prefix, reverse, set_script_prefix

from console.http import WorkspaceRequest
from console.workspaces import (
    Workspace,
    workspace_default,
    workspace_get,
    workspace_override,
    workspaces_all,
)

PREFIX = "w"
# Unprefixed whatever the workspace: they serve no workspace's data.
UNSCOPED_PATHS = ("/static/", "/healthz", "/metrics", "/accounts/", "/favicon.ico")
SESSION_KEY = "workspace"
# Set on a link of the workspace switcher: a page missing there falls back to its list.
SWITCHED_PARAM = "switched"
# The script prefix without any workspace, while a workspace request has added one.
_base_prefix: ContextVar[str | None] = ContextVar("workspace_base_prefix", default=None)


def workspaces_in_urls() -> bool:
    """Whether URLs carry the workspace: only once there is more than one to tell apart."""
    return len(workspaces_all()) > 1


def workspace_prefix(workspace: Workspace | str) -> str:
    """The path every URL of ``workspace`` (or its key) starts with ("/w/staging/", or "/"
    when it is the only one)."""
    key = workspace if isinstance(workspace, str) else workspace.key
    return f"/{PREFIX}/{key}/" if workspaces_in_urls() else "/"


def workspace_reverse(
    viewname: str,
    *,
    workspace: Workspace | str,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> str:
    """``reverse()`` in ``workspace``, whatever request (if any) is being answered. A key
    no longer configured still makes its link (which then answers 404) rather than failing
    the e-mail or notification being sent."""
    base = _base_prefix.get() or settings.FORCE_SCRIPT_NAME or get_script_prefix()
    previous = get_script_prefix()
    set_script_prefix(base.rstrip("/") + workspace_prefix(workspace))
    try:
        return reverse(viewname, args=args, kwargs=kwargs)
    finally:
        set_script_prefix(previous)


def is_unscoped(path: str) -> bool:
    return path.startswith(UNSCOPED_PATHS)


def _split(path_info: str) -> tuple[str | None, str]:
    """(workspace key, the rest of the path) for "/w/<key>/rest"; (None, path) otherwise."""
    parts = path_info.split("/", 3)
    if len(parts) >= 3 and parts[0] == "" and parts[1] == PREFIX and parts[2]:
        return parts[2], "/" + (parts[3] if len(parts) > 3 else "")
    return None, path_info


def _last_used(request: HttpRequest) -> Workspace:
    session = getattr(request, "session", None)
    key = session.get(SESSION_KEY) if session is not None else None
    if isinstance(key, str):
        try:
            return workspace_get(key)
        except LookupError:
            pass
    return workspace_default()


class WorkspaceMiddleware:
    """Sets ``request.workspace`` and the script prefix from the ``/w/<key>/`` prefix.

    Placed before CommonMiddleware (which resolves the stripped path) and after the session
    middleware (the last workspace used is kept in the session).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        key, rest = _split(request.path_info)
        if key is None:
            workspace = _last_used(request)
            if workspaces_in_urls() and not is_unscoped(request.path_info):
                if request.method not in {"GET", "HEAD"}:
                    return HttpResponseBadRequest(
                        "This address names no workspace.", content_type="text/plain"
                    )
                target = workspace_prefix(workspace) + request.path_info.lstrip("/")
                query = request.META.get("QUERY_STRING", "")
                return HttpResponseRedirect(f"{target}?{query}" if query else target)
            cast(WorkspaceRequest, request).workspace = workspace
            with workspace_override(workspace):
                return self.get_response(request)
        try:
            workspace = workspace_get(key)
        except LookupError:
            raise Http404("No such workspace.") from None
        cast(WorkspaceRequest, request).workspace = workspace
        request.path_info = rest
        # The script prefix is per thread: set for this request, put back however it ends.
        previous = get_script_prefix()
        token = _base_prefix.set(previous)
        set_script_prefix(previous.rstrip("/") + f"/{PREFIX}/{key}/")
        try:
            with workspace_override(workspace):
                response = self.get_response(request)
        finally:
            set_script_prefix(previous)
            _base_prefix.reset(token)
        # Remembered for people only: an anonymous visit must not start a session.
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if (
            session is not None
            and user is not None
            and user.is_authenticated
            and session.get(SESSION_KEY) != key
        ):
            session[SESSION_KEY] = key
        return response


class WorkspaceSwitchFallbackMiddleware:
    """A page the switcher opened in another workspace that has no such object there gives
    way to its section's list (after MessageMiddleware: the notice must reach the session)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code != 404
            or request.method != "GET"
            or SWITCHED_PARAM not in request.GET
        ):
            return response
        # Lazy: navigation reads the change-request selectors, which import the models.
        from django.contrib import messages

        from console.navigation import section_list_url

        fallback = section_list_url(request.path_info)
        workspace = cast(WorkspaceRequest, request).workspace
        messages.info(request, f"That page does not exist in {workspace.label}: here is its list.")
        return HttpResponseRedirect(fallback)


def workspace_switch_links(request: HttpRequest) -> list[dict[str, object]]:
    """For the switcher: every workspace, with this page's address in it."""
    current: Workspace = getattr(request, "workspace", None) or workspace_default()
    path = request.path_info if not is_unscoped(request.path_info) else "/"
    links = []
    for workspace in workspaces_all():
        url = workspace_prefix(workspace) + path.lstrip("/")
        if workspace.key != current.key and path != "/":
            url += "?" + urlencode({SWITCHED_PARAM: current.key})
        links.append({"workspace": workspace, "url": url, "current": workspace.key == current.key})
    return links
