"""The second step of a password sign-in, kept in the session until it is passed.

After a correct password, a person who has a second factor, or whose roles need one, is not
signed in: the session holds only who they are (`PENDING`) for MFA_PENDING_SECONDS and
MFA_PENDING_MAX_FAILURES wrong answers. Django's `login` runs once the second factor passes,
so every session of such a person carries the device that passed (django-otp's session key)
and `SECOND_FACTOR` (which kind, and when); console/sessions.py's limits start from then.
"""

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.models import AbstractBaseUser, User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_otp import login as otp_login
from django_otp.models import Device

from mfa.selectors import factor_count, second_factor_required

PENDING = "mfa_pending"
SECOND_FACTOR = "console_second_factor"
CHALLENGE = "mfa_passkey_challenge"
CHALLENGE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Pending:
    user: User
    backend: str
    next_url: str
    enrolled: bool  # whether they have a factor to answer with (else: enrol one first)


def signin_second_step(
    request: HttpRequest, *, user: AbstractBaseUser, next_url: str
) -> HttpResponse | None:
    """Called with the password's user: None if signing in needs nothing more, else the
    redirect to the second step (or to enrolment, for roles that need a factor and have none)."""
    enrolled = factor_count(user=user) > 0
    if not enrolled and not second_factor_required(user=user):
        return None
    backend = getattr(user, "backend", None)
    if not isinstance(backend, str):
        raise ValueError("signin_second_step takes the user authenticate() returned")
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": user.pk,
        "backend": backend,
        "next": next_url,
        "at": time.time(),
        "failures": 0,
    }
    return redirect("mfa:verify" if enrolled else "mfa:enrol")


def pending_get(request: HttpRequest) -> Pending | None:
    state: Any = request.session.get(PENDING)
    if not isinstance(state, dict) or time.time() - state["at"] > settings.MFA_PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None
    user = User.objects.filter(pk=state["user"], is_active=True).first()
    if user is None:
        request.session.pop(PENDING, None)
        return None
    return Pending(
        user=user,
        backend=state["backend"],
        next_url=state["next"],
        enrolled=factor_count(user=user) > 0,
    )


def pending_failed(request: HttpRequest) -> bool:
    """Count a wrong answer; True when that was the last one allowed (the password is asked
    again)."""
    state = request.session[PENDING]
    state["failures"] += 1
    if state["failures"] >= settings.MFA_PENDING_MAX_FAILURES:
        del request.session[PENDING]
        return True
    request.session[PENDING] = state
    return False


def signin_complete(request: HttpRequest, *, pending: Pending, device: Device, kind: str) -> None:
    request.session.pop(PENDING, None)
    request.session.pop(CHALLENGE, None)
    login(request, pending.user, backend=pending.backend)
    otp_login(request, device)
    request.session[SECOND_FACTOR] = {"kind": kind, "at": time.time()}


def challenge_keep(request: HttpRequest, *, purpose: str, challenge: str) -> None:
    request.session[CHALLENGE] = {"purpose": purpose, "challenge": challenge, "at": time.time()}


def challenge_take(request: HttpRequest, *, purpose: str) -> str | None:
    """The challenge issued for `purpose`, at most once."""
    state: Any = request.session.pop(CHALLENGE, None)
    if (
        not isinstance(state, dict)
        or state.get("purpose") != purpose
        or time.time() - state.get("at", 0) > CHALLENGE_SECONDS
    ):
        return None
    return str(state["challenge"])
