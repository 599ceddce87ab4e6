"""With single sign-on on, local passwords can be turned off, except for break-glass Admin
accounts, each of whose sign-ins is an audit entry and an email to the other Admins."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.roles import Role
from tests.factories import totp_code_unused, totp_device_create, user_with_role
from tests.fixtures.oidc import Provider

PASSWORD = "a-long-enough-test-password"


def _with_password(role: Role, username: str, email: str = "") -> User:
    """An account with a password (and, being an Admin, the second factor it needs)."""
    user = user_with_role(role)
    user.username, user.email = username, email
    user.set_password(PASSWORD)
    user.save()
    if role == Role.ADMIN:
        totp_device_create(user)
    return user


def _password_sign_in(username: str) -> Client:
    """The password, then the code of the account's app where the console asks for one."""
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    if response.status_code == 302 and response["Location"] == reverse("mfa:verify"):
        device = TOTPDevice.objects.get(user__username=username)
        client.post(reverse("mfa:verify"), {"code": totp_code_unused(device)})
    return client


@pytest.fixture
def passwords_off(sso: Provider, settings: Settings) -> None:
    settings.SSO_LOCAL_PASSWORDS = False
    settings.SSO_BREAK_GLASS_USERNAMES = ["glass"]


def test_the_login_page_offers_single_sign_on(sso: Provider, settings: Settings) -> None:
    settings.OIDC_PROVIDER_NAME = "Example SSO"
    page = Client().get(reverse("login") + "?next=/changes/").content.decode()
    assert "Sign in with Example SSO" in page
    assert f'href="{reverse("sso:start")}?next=/changes/"' in page


def test_without_single_sign_on_the_login_page_offers_only_passwords(db: None) -> None:
    assert "Sign in with" not in Client().get(reverse("login")).content.decode()


def test_with_local_passwords_off_a_password_gets_nobody_in_but_break_glass_admins(
    passwords_off: None,
) -> None:
    _with_password(Role.ADMIN, "other-admin")
    _with_password(Role.EDITOR, "editor")
    _with_password(Role.ADMIN, "glass")

    for username in ("other-admin", "editor"):
        assert SESSION_KEY not in _password_sign_in(username).session, username
    assert SESSION_KEY in _password_sign_in("glass").session


def test_a_break_glass_account_that_is_not_an_admin_gets_no_password_sign_in(
    passwords_off: None,
) -> None:
    _with_password(Role.EDITOR, "glass")
    assert SESSION_KEY not in _password_sign_in("glass").session


def test_every_break_glass_sign_in_is_audited_and_emailed_to_the_other_admins(
    passwords_off: None, django_capture_on_commit_callbacks
) -> None:
    _with_password(Role.ADMIN, "glass", "glass@example.com")
    _with_password(Role.ADMIN, "admin-1", "one@example.com")
    _with_password(Role.ADMIN, "admin-2", "two@example.com")
    _with_password(Role.EDITOR, "editor", "editor@example.com")

    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            _password_sign_in("glass")

    entries = AuditEntry.objects.filter(action="auth.break_glass_sign_in")
    assert entries.count() == 2
    assert len(mail.outbox) == 2
    assert sorted(mail.outbox[0].bcc) == ["one@example.com", "two@example.com"]
    assert "glass" in mail.outbox[0].subject


def test_break_glass_sign_ins_are_audited_while_local_passwords_are_still_on(
    sso: Provider, settings: Settings
) -> None:
    settings.SSO_BREAK_GLASS_USERNAMES = ["glass"]
    _with_password(Role.ADMIN, "glass")
    _password_sign_in("glass")
    assert AuditEntry.objects.filter(action="auth.break_glass_sign_in").count() == 1


def test_a_password_session_ends_once_local_passwords_are_turned_off(
    sso: Provider, settings: Settings
) -> None:
    _with_password(Role.EDITOR, "editor")
    client = _password_sign_in("editor")
    assert client.get(reverse("home")).status_code == 200

    settings.SSO_LOCAL_PASSWORDS = False

    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    ended = AuditEntry.objects.get(action="auth.session_ended")
    assert ended.data == {"reason": "method_off"}


def test_the_break_glass_account_signs_in_while_the_provider_is_down(
    db: None, settings: Settings
) -> None:
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens there
    settings.SSO_LOCAL_PASSWORDS = False
    settings.SSO_BREAK_GLASS_USERNAMES = ["glass"]
    _with_password(Role.ADMIN, "glass")

    client = _password_sign_in("glass")

    assert SESSION_KEY in client.session
    assert client.get(reverse("home")).status_code == 200
    assert Client().get(reverse("sso:start")).status_code == 503
