"""What apps add to the development-only demo accounts (`console.services.demo_users_create`),
registered from their ``AppConfig.ready()``, so the core names no app."""

from dataclasses import dataclass
from typing import Protocol

from django.contrib.auth.models import User


class DemoAccountPrepare(Protocol):
    def __call__(self, *, user: User) -> None: ...


class DemoAccountDescribe(Protocol):
    def __call__(self, *, username: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DemoAccountExtra:
    """mfa's, for one: the demo authenticator of an account whose roles need one."""

    prepare: DemoAccountPrepare  # once the account has its roles
    describe: DemoAccountDescribe  # printed beside the account's password, if anything


_DEMO_ACCOUNT_EXTRAS: list[DemoAccountExtra] = []


def demo_account_extra_register(extra: DemoAccountExtra) -> None:
    if extra not in _DEMO_ACCOUNT_EXTRAS:
        _DEMO_ACCOUNT_EXTRAS.append(extra)


def demo_account_extras() -> list[DemoAccountExtra]:
    return list(_DEMO_ACCOUNT_EXTRAS)


def demo_account_notes(*, username: str) -> list[str]:
    """What the apps print beside a demo account's password (`manage.py seed_demo_users`)."""
    notes = (extra.describe(username=username) for extra in _DEMO_ACCOUNT_EXTRAS)
    return [note for note in notes if note]
