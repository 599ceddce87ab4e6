"""Sign-in through the identity provider, its refusals, and sign-out (RP-initiated logout
where the provider offers it)."""

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
    OIDCLogoutView,
)

from console.net import client_ip
from console.signin import signin_attempt_admit
from sso.backends import REFUSAL, oidc_setting
from sso.config import SSO, sso_enabled
from sso.provider import ProviderUnavailable, provider_metadata
from sso.selectors import session_sign_in_method

logger = logging.getLogger(__name__)

# What the refusal page tells the person; never the token or the provider's own words.
REFUSALS = {
    "no_role": (
        "Your account at the identity provider is in no group that grants a role in this "
        "console. Ask your administrator to add you to one, then sign in again."
    ),
    "inactive": "Your console account is deactivated. Ask an Admin of the console.",
    "token": (
        "The identity provider's answer could not be verified, so you were not signed in. "
        "Try again; if it keeps happening, tell your administrator."
    ),
    "state": (
        "This sign-in link was already used or has expired. Start again from the sign-in page."
    ),
    "provider": "The identity provider could not be reached. Try again in a few minutes.",
    "denied": "The identity provider did not sign you in.",
    "failed": "You could not be signed in through the identity provider.",
}
NOT_CONFIGURED = "Single sign-on is not configured on this console."


def _refused(request: HttpRequest, reason: str, *, status: int = 403) -> HttpResponse:
    logger.info("single sign-on refused: %s", reason)
    return render(
        request,
        "sso/refused.html",
        {"message": REFUSALS.get(reason, REFUSALS["failed"])},
        status=status,
    )


class _StartView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)


class _CallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    def login_failure(self) -> HttpResponse:
        if self.request.GET.get("error"):
            return _refused(self.request, "denied")
        if "code" in self.request.GET and "oidc_states" not in self.request.session:
            return _refused(self.request, "state")
        return _refused(self.request, self.request.session.pop(REFUSAL, "failed"))


@never_cache
@require_GET
def sso_start(request: HttpRequest) -> HttpResponseBase:
    """Send the browser to the provider (state, nonce and PKCE challenge kept in the session)."""
    if not sso_enabled():
        messages.info(request, NOT_CONFIGURED)
        return redirect("login")
    if request.user.is_authenticated:
        return redirect("home")
    try:
        provider_metadata()
    except ProviderUnavailable as exc:
        logger.warning("identity provider not reachable: %s", exc)
        return _refused(request, "provider", status=503)
    return _StartView.as_view()(request)


@never_cache
@require_GET
def sso_callback(request: HttpRequest) -> HttpResponseBase:
    """The provider sends the browser back here with the code (or an error)."""
    if not sso_enabled():
        messages.info(request, NOT_CONFIGURED)
        return redirect("login")
    if not signin_attempt_admit(source=client_ip(request)):
        return render(request, "registration/locked_out.html", status=429)
    try:
        return _CallbackView.as_view()(request)
    except SuspiciousOperation:
        # A state this session never issued, or one already spent (a replayed callback).
        return _refused(request, "state")
    except ProviderUnavailable:
        return _refused(request, "provider", status=503)


def provider_logout_url(request: HttpRequest) -> str:
    """Where sign-out sends the browser: the provider's end-session endpoint for a session
    signed in through it (OpenID Connect RP-Initiated Logout 1.0), else the login page."""
    login = reverse("login")
    if session_sign_in_method(request) != SSO or not sso_enabled():
        return login
    try:
        endpoint = provider_metadata().end_session_endpoint
    except ProviderUnavailable:
        return login
    if not endpoint:
        return login
    params = {
        "client_id": oidc_setting("OIDC_RP_CLIENT_ID"),
        "post_logout_redirect_uri": request.build_absolute_uri(login),
    }
    id_token = request.session.get("oidc_id_token")
    if isinstance(id_token, str):
        params["id_token_hint"] = id_token
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


class SignOutView(OIDCLogoutView):
    """POST only (CSRF-checked): ends the console session, then the provider's."""

    get_settings = staticmethod(oidc_setting)

    @property
    def redirect_url(self) -> str:
        return reverse("login")
