"""Server-side access checks for views: every view declares what it needs."""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, cast

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

from console.http import AuthenticatedRequest, WorkspaceRequest
from console.roles import Capability, user_has_any

type View[**P] = Callable[Concatenate[HttpRequest, P], HttpResponseBase]
type AuthenticatedView[**P] = Callable[Concatenate[AuthenticatedRequest, P], HttpResponseBase]


def require_capability[**P](
    *capabilities: Capability,
) -> Callable[[AuthenticatedView[P]], View[P]]:
    """Signed-in users holding at least one of `capabilities`; others get 403.

    Anonymous users are sent to the login page (htmx requests get an HX-Redirect
    so the whole page, not a fragment, becomes the login form).
    """

    def decorator(view: AuthenticatedView[P]) -> View[P]:
        @wraps(view)
        def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            if not request.user.is_authenticated:
                response = redirect_to_login(request.get_full_path())
                if request.headers.get("HX-Request"):
                    response["HX-Redirect"] = response["Location"]
                return response
            # Roles in the workspace the URL names (console/workspace_urls.py).
            workspace = cast(WorkspaceRequest, request).workspace
            if capabilities and not user_has_any(request.user, capabilities, workspace.key):
                raise PermissionDenied
            return view(cast(AuthenticatedRequest, request), *args, **kwargs)

        wrapper.required_capabilities = capabilities  # type: ignore[attr-defined]
        return wrapper

    return decorator


# Any signed-in user (no particular capability), e.g. the home page.
require_login = require_capability
