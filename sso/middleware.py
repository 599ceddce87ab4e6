"""Sessions bound to how they were signed in, and SSO sessions re-validated with the provider.

After console.sessions.SessionLimitsMiddleware (idle and absolute limits, role changes), a
session ends on its next request when:

* its sign-in method is no longer allowed to its user: an SSO session once SSO is turned
  off, a password session once local passwords are turned off (break-glass Admins excepted);
* it was signed in through the provider more than SSO_SESSION_MAX_AGE seconds ago;
* the provider no longer accepts its account: every OIDC_REVALIDATE_SECONDS the refresh token
  is exchanged (or, without one, the access token shown to the userinfo endpoint), and a
  refusal means the account was disabled or its sessions revoked at the IdP. A provider that
  cannot be reached is asked again at the next request rather than signing everyone out.
"""

import logging
import time
from collections.abc import Callable

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from console.audit.services import audit_append
from console.sessions import SIGNED_IN_AT
from sso.backends import REFRESH_TOKEN, password_allowed_for
from sso.config import PASSWORD, SSO, sso_enabled
from sso.provider import ProviderUnavailable, provider_metadata
from sso.selectors import session_sign_in_method
from sso.signals import VALIDATED_AT

logger = logging.getLogger(__name__)

MESSAGES = {
    "method_off": "This way of signing in is no longer allowed. Sign in again.",
    "sso_expired": "Your single sign-on session has ended. Sign in again to continue.",
    "idp_revoked": (
        "The identity provider no longer accepts your account, so you were signed out."
    ),
}

ACCEPTED, REFUSED, UNREACHABLE = "accepted", "refused", "unreachable"


def _revalidate(request: HttpRequest) -> str:
    """Ask the provider whether this session's account is still good."""
    try:
        meta = provider_metadata()
        refresh = request.session.get(REFRESH_TOKEN)
        if isinstance(refresh, str) and refresh:
            response = requests.post(
                meta.token_endpoint,
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh,
                    "client_id": settings.OIDC_RP_CLIENT_ID,
                    "client_secret": settings.OIDC_RP_CLIENT_SECRET,
                },
                timeout=settings.OIDC_TIMEOUT,
            )
        else:
            response = requests.get(
                meta.userinfo_endpoint,
                headers={"Authorization": f"Bearer {request.session.get('oidc_access_token')}"},
                timeout=settings.OIDC_TIMEOUT,
            )
    except (requests.RequestException, ProviderUnavailable) as exc:
        logger.warning("could not re-validate an SSO session: %s", type(exc).__name__)
        return UNREACHABLE
    if response.status_code >= 500:
        return UNREACHABLE
    if response.status_code != 200:
        return REFUSED
    if isinstance(refresh, str) and refresh:
        tokens = response.json()
        # Providers that rotate refresh tokens spend the old one with this exchange.
        request.session[REFRESH_TOKEN] = tokens.get("refresh_token") or refresh
        if isinstance(tokens.get("access_token"), str):
            request.session["oidc_access_token"] = tokens["access_token"]
    return ACCEPTED


def _why_ended(request: HttpRequest, user: AbstractBaseUser, now: float) -> str | None:
    method = session_sign_in_method(request)
    if method == SSO and not sso_enabled():
        return "method_off"
    if method == PASSWORD and not password_allowed_for(user):
        return "method_off"
    if method != SSO:
        return None
    signed_in_at = request.session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int | float) or now - signed_in_at > (
        settings.SSO_SESSION_MAX_AGE
    ):
        return "sso_expired"
    validated_at = request.session.get(VALIDATED_AT)
    if isinstance(validated_at, int | float) and now - validated_at < (
        settings.OIDC_REVALIDATE_SECONDS
    ):
        return None
    # One request per session asks the provider; the others go on meanwhile (a rotated
    # refresh token may be spent only once).
    if not cache.add(f"sso:revalidating:{request.session.session_key}", 1, timeout=60):
        return None
    outcome = _revalidate(request)
    if outcome == REFUSED:
        return "idp_revoked"
    if outcome == ACCEPTED:
        request.session[VALIDATED_AT] = now
    cache.delete(f"sso:revalidating:{request.session.session_key}")
    return None


class SsoSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if isinstance(user, AbstractBaseUser) and user.is_authenticated:
            reason = _why_ended(request, user, time.time())
            if reason is not None:
                self._end(request, user, reason)
        return self.get_response(request)

    @staticmethod
    def _end(request: HttpRequest, user: AbstractBaseUser, reason: str) -> None:
        audit_append(
            actor=user,
            action="auth.session_ended",
            resource_type="user",
            resource_id=str(user.pk),
            data={"reason": reason},
        )
        request.session.flush()
        request.user = AnonymousUser()
        messages.info(request, MESSAGES[reason])
