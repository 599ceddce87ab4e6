from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpRequest

from sso.config import PASSWORD, SSO

OIDC_BACKEND = "sso.backends.OidcBackend"


def session_sign_in_method(request: HttpRequest) -> str:
    """How this session was signed in: Django keeps the backend that authenticated it."""
    return SSO if request.session.get(BACKEND_SESSION_KEY) == OIDC_BACKEND else PASSWORD
