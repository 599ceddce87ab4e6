"""How long a session lasts and what ends it (console/sessions.py), and the password policy."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.celery import app as celery_app
from console.changes.services import change_request_approve
from console.roles import Role
from tests.factories import TEST_PASSWORD, totp_code, totp_device_create, user_with_role
from users_admin.services import user_set_roles, user_workspace_roles_propose


@pytest.fixture
def run_on_commit_eagerly() -> Iterator[None]:
    """The apply task, queued when the approval commits, runs at once."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


pytestmark = pytest.mark.django_db


def _signed_in(client: Client) -> bool:
    response = client.get(reverse("home"))
    assert response.status_code in {200, 302}
    return response.status_code == 200


def test_an_idle_session_is_signed_out_while_activity_keeps_it(settings: Settings) -> None:
    settings.SESSION_IDLE_TIMEOUT = 2
    user = user_with_role(Role.VIEWER)
    client = Client()
    client.force_login(user)
    for _ in range(5):  # 2.5 s in all, longer than the idle limit, but never idle that long
        time.sleep(0.5)
        assert _signed_in(client), AuditEntry.objects.filter(action="auth.session_ended").first()
    time.sleep(2.2)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in client.session
    ended = AuditEntry.objects.get(action="auth.session_ended")
    assert (ended.actor_id, ended.data) == (user.pk, {"reason": "idle"})
    # The login page says why.
    assert b"without activity" in client.get(response["Location"]).content


def test_a_session_ends_at_its_absolute_age_even_when_active(settings: Settings) -> None:
    settings.SESSION_COOKIE_AGE = 1
    client = Client()
    client.force_login(user_with_role(Role.VIEWER))
    time.sleep(0.6)
    assert _signed_in(client)
    time.sleep(0.6)
    assert not _signed_in(client)


def test_a_role_change_ends_every_session_of_the_changed_user() -> None:
    user = user_with_role(Role.REVIEWER)
    app = totp_device_create(user)
    laptop, phone = Client(), Client()
    laptop.post(reverse("login"), {"username": user.username, "password": TEST_PASSWORD})
    laptop.post(reverse("mfa:verify"), {"code": totp_code(app)})
    phone.force_login(user)
    admin = user_with_role(Role.ADMIN)
    admin_client = Client()
    admin_client.force_login(admin)
    assert _signed_in(laptop)
    assert _signed_in(phone)

    user_set_roles(actor=admin, user=user, roles={Role.EDITOR})

    assert not _signed_in(laptop)
    assert not _signed_in(phone)
    ended = AuditEntry.objects.filter(action="auth.session_ended", actor_id=user.pk)
    assert [e.data for e in ended] == [{"reason": "roles_changed"}] * 2
    # The Admin who made the change keeps their session; the user signs in again with a
    # new session that carries the new role.
    assert _signed_in(admin_client)
    old_key = laptop.cookies["sessionid"].value
    laptop.post(reverse("login"), {"username": user.username, "password": TEST_PASSWORD})
    laptop.post(reverse("mfa:verify"), {"code": totp_code(app, steps_ahead=1)})
    assert laptop.cookies["sessionid"].value != old_key
    assert _signed_in(laptop)


def test_a_session_is_not_ended_while_its_roles_stay_the_same() -> None:
    user = user_with_role(Role.EDITOR)
    client = Client()
    client.force_login(user)
    admin = user_with_role(Role.ADMIN)
    user_set_roles(actor=admin, user=user, roles={Role.EDITOR})
    assert _signed_in(client)


def test_a_change_of_roles_in_one_workspace_ends_the_sessions_too(
    run_on_commit_eagerly: None, django_capture_on_commit_callbacks: Any
) -> None:
    user = user_with_role(Role.EDITOR)
    client = Client()
    client.force_login(user)
    ada, bob = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    cr = user_workspace_roles_propose(
        actor=ada, user=user, workspace="default", roles={Role.VIEWER}
    )
    assert cr is not None
    assert _signed_in(client)
    with django_capture_on_commit_callbacks(execute=True):
        change_request_approve(actor=bob, change_request=cr)

    assert not _signed_in(client)
    ended = AuditEntry.objects.get(action="auth.session_ended", actor_id=user.pk)
    assert ended.data == {"reason": "roles_changed"}


def test_passwords_need_fifteen_characters() -> None:
    user = user_with_role(Role.VIEWER)
    with pytest.raises(ValidationError, match="at least 15 characters"):
        validate_password("x7#Lq9!vR2@mZ4", user)  # 14
    validate_password("x7#Lq9!vR2@mZ4$", user)  # 15


def test_the_password_change_form_asks_for_fifteen_characters() -> None:
    user = user_with_role(Role.VIEWER)
    client = Client()
    client.force_login(user)
    short = "Tr0ub4dor&3-xy"  # 14 characters: Django's default 8 would take it
    response = client.post(
        reverse("password_change"),
        {"old_password": TEST_PASSWORD, "new_password1": short, "new_password2": short},
    )
    assert response.status_code == 200
    assert b"at least 15 characters" in response.content
    user.refresh_from_db()
    assert user.check_password(TEST_PASSWORD)
