"""What may come between a correct password and a signed-in session (mfa's second factor),
registered from the app's ``AppConfig.ready()``, so the core's sign-in view imports no app."""

from typing import Protocol

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse


class SigninStep(Protocol):
    """None if this step has nothing to ask of `user`, else where to send the browser (the
    step signs the person in itself once it is satisfied)."""

    def __call__(
        self, request: HttpRequest, /, *, user: AbstractBaseUser, next_url: str
    ) -> HttpResponse | None: ...


_STEPS: list[SigninStep] = []


def signin_step_register(step: SigninStep) -> None:
    if step not in _STEPS:
        _STEPS.append(step)


def signin_next_step(
    request: HttpRequest, *, user: AbstractBaseUser, next_url: str
) -> HttpResponse | None:
    """The first registered step that asks something, in the order the apps registered."""
    for step in _STEPS:
        response = step(request, user=user, next_url=next_url)
        if response is not None:
            return response
    return None
