import pytest
from django.contrib.auth.models import User

from console import demo_accounts
from console.demo_accounts import (
    DemoAccountExtra,
    demo_account_extra_register,
    demo_account_extras,
    demo_account_notes,
)
from console.roles import user_roles
from console.services import DEMO_USERS, demo_users_create
from mfa.selectors import demo_second_factor_note
from mfa.services import demo_second_factor_set


def _prepare(*, user: User) -> None:
    return None


def _badge(*, username: str) -> str | None:
    return f"badge: {username}" if username != "viewer" else None


def _silent(*, username: str) -> str | None:
    return None


def test_mfa_registers_its_demo_authenticator_from_ready() -> None:
    assert DemoAccountExtra(demo_second_factor_set, demo_second_factor_note) in (
        demo_account_extras()
    )


def test_each_extra_is_registered_once_and_only_its_notes_are_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demo_accounts, "_DEMO_ACCOUNT_EXTRAS", [])
    badge = DemoAccountExtra(prepare=_prepare, describe=_badge)
    demo_account_extra_register(badge)
    demo_account_extra_register(DemoAccountExtra(prepare=_prepare, describe=_badge))
    demo_account_extra_register(DemoAccountExtra(prepare=_prepare, describe=_silent))
    assert len(demo_account_extras()) == 2
    assert demo_account_notes(username="editor") == ["badge: editor"]
    assert demo_account_notes(username="viewer") == []


@pytest.mark.django_db
def test_every_demo_account_is_prepared_once_it_has_its_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roles_when_prepared: dict[str, set[str]] = {}

    def remember(*, user: User) -> None:
        roles_when_prepared[user.username] = {role.value for role in user_roles(user)}

    monkeypatch.setattr(
        demo_accounts, "_DEMO_ACCOUNT_EXTRAS", [DemoAccountExtra(remember, _silent)]
    )
    demo_users_create()
    assert roles_when_prepared == {username: {role.value} for username, role, _ in DEMO_USERS}
