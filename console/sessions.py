"""How long a signed-in session lasts, and what ends it early.

A session ends, on its next request, when any of these holds:

* SESSION_COOKIE_AGE seconds have passed since the sign-in (absolute; Django's own expiry
  slides forward whenever the session is saved, so it is checked here from the sign-in time);
* SESSION_IDLE_TIMEOUT seconds have passed without a request (idle);
* the user's roles (console-wide, or in any workspace) are no longer those the session was
  signed in with.

The last one is how a privilege change rotates sessions: roles are a fingerprint taken at
sign-in (Django already gives a new session key then), so when an Admin changes someone's
roles, or their own, every session that person has, on any device, is ended and they sign
in again, getting a new session key that carries the new roles. Nothing needs to find or
delete session rows: the change itself is what the sessions are checked against.
"""

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse

from console.audit import events
from console.audit.services import audit_append
from console.roles import user_roles_fingerprint

SIGNED_IN_AT = "console_signed_in_at"
SEEN_AT = "console_seen_at"
ROLES = "console_roles"

MESSAGES = {
    "idle": "You were signed out after a while without activity. Sign in again to continue.",
    "expired": "Your session has ended. Sign in again to continue.",
    "roles_changed": "Your roles have changed. Sign in again to continue with the new ones.",
}


def _roles_fingerprint(user: AbstractBaseUser) -> str:
    # Roles in each workspace too: being given Admin in production only is a privilege change.
    return user_roles_fingerprint(user)


def on_user_logged_in(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    if request is None or not hasattr(request, "session"):
        return
    now = time.time()
    request.session[SIGNED_IN_AT] = now
    request.session[SEEN_AT] = now
    request.session[ROLES] = _roles_fingerprint(user)


def _why_ended(request: HttpRequest, now: float) -> str | None:
    session = request.session
    signed_in_at, seen_at = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    if not isinstance(signed_in_at, int | float) or not isinstance(seen_at, int | float):
        return "expired"  # a session from before these limits: its age is unknown
    if now - signed_in_at > settings.SESSION_COOKIE_AGE:
        return "expired"
    if now - seen_at > settings.SESSION_IDLE_TIMEOUT:
        return "idle"
    if session.get(ROLES) != _roles_fingerprint(request.user):  # type: ignore[arg-type]
        return "roles_changed"
    return None


class SessionLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            reason = _why_ended(request, now)
            if reason is not None:
                self._end(request, reason)
            # Saving the session costs a write: note activity at most every minute (or a
            # tenth of the idle limit, if that is shorter).
            elif now - request.session[SEEN_AT] >= min(60.0, settings.SESSION_IDLE_TIMEOUT / 10):
                request.session[SEEN_AT] = now
        return self.get_response(request)

    @staticmethod
    def _end(request: HttpRequest, reason: str) -> None:
        user = request.user
        audit_append(
            actor=user,  # type: ignore[arg-type]
            action=events.AUTH_SESSION_ENDED,
            resource_type="user",
            resource_id=str(user.pk),
            data={"reason": reason},
        )
        request.session.flush()
        request.user = AnonymousUser()
        messages.info(request, MESSAGES[reason])
