import re

import pytest
from django.test import Client
from django.urls import reverse

from console.roles import Role
from tests.factories import TEST_PASSWORD, user_with_role

pytestmark = pytest.mark.django_db


def _sign_in(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_it_signs_in_with_the_right_password_and_lands_on_home() -> None:
    user = user_with_role(Role.VIEWER)
    response = _sign_in(Client(), user.username, TEST_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_it_refuses_a_wrong_password_with_a_message() -> None:
    user = user_with_role(Role.VIEWER)
    response = _sign_in(Client(), user.username, "wrong")
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_it_locks_out_after_five_failed_sign_ins_even_with_the_right_password() -> None:
    user = user_with_role(Role.EDITOR)
    client = Client()
    for _ in range(5):
        _sign_in(client, user.username, "wrong")
    response = _sign_in(client, user.username, TEST_PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_it_signs_out_only_by_post() -> None:
    client = Client()
    client.force_login(user_with_role(Role.VIEWER))
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_it_refuses_a_post_without_a_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_with_role(Role.VIEWER))
    response = client.post(reverse("logout"))
    assert response.status_code == 403


def test_it_accepts_an_htmx_post_carrying_the_token_in_the_header() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_with_role(Role.VIEWER))
    page = client.get(reverse("home"))
    match = re.search(r'"X-CSRFToken": "([^"]+)"', page.content.decode())
    assert match, "the base template must hand htmx the CSRF token"
    token = match.group(1)
    response = client.post(reverse("logout"), headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 302


def test_it_changes_the_password_after_checking_the_old_one() -> None:
    user = user_with_role(Role.VIEWER)
    client = Client()
    client.force_login(user)
    new = "a-much-better-password-2026"
    bad = client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": new, "new_password2": new},
    )
    assert bad.status_code == 200
    assert b"Your old password was entered incorrectly" in bad.content
    good = client.post(
        reverse("password_change"),
        {"old_password": TEST_PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert good.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)


def test_an_inactive_user_has_no_capabilities() -> None:
    user = user_with_role(Role.ADMIN, is_active=False)
    client = Client()
    client.force_login(user)
    # force_login bypasses the backend; the session is rejected for inactive users.
    response = client.get(reverse("users_admin:index"))
    assert response.status_code == 302
