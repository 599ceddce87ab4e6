import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from console import signin_steps
from console.signin_steps import signin_next_step, signin_step_register
from mfa.flow import signin_second_step


def _nothing(request: HttpRequest, /, *, user: AbstractBaseUser, next_url: str) -> None:
    return None


def _ask(request: HttpRequest, /, *, user: AbstractBaseUser, next_url: str) -> HttpResponse:
    return HttpResponse(f"asked before {next_url}")


def _never(request: HttpRequest, /, *, user: AbstractBaseUser, next_url: str) -> HttpResponse:
    raise AssertionError("a step after one that asked must not run")


def test_mfa_registers_its_second_factor_from_ready() -> None:
    registered = signin_steps._STEPS
    assert registered == [signin_second_step]


def test_the_first_step_that_asks_answers_and_later_steps_do_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signin_steps, "_STEPS", [])
    for step in (_nothing, _ask, _ask, _never):
        signin_step_register(step)
    registered = signin_steps._STEPS
    assert registered == [_nothing, _ask, _never]
    request = RequestFactory().post("/accounts/login/")
    response = signin_next_step(request, user=User(username="ada"), next_url="/home")
    assert response is not None
    assert response.content == b"asked before /home"


def test_with_no_step_that_asks_the_password_signs_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin_steps, "_STEPS", [_nothing])
    request = RequestFactory().post("/accounts/login/")
    assert signin_next_step(request, user=User(username="ada"), next_url="/") is None
