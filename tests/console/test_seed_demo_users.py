import base64

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.roles import Role, user_roles
from console.services import demo_users_create
from mfa.selectors import demo_totp_key

pytestmark = pytest.mark.django_db


def test_it_creates_one_user_per_role_and_prints_their_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call_command("seed_demo_users")
    out = capsys.readouterr().out
    for role in Role:
        assert role.value in out
    editor = User.objects.get(username="editor")
    assert editor.check_password("editor-demo-pass")
    assert user_roles(editor) == {Role.EDITOR}
    # Reviewers and Admins need a second factor: theirs is an app whose key is printed.
    reviewer = User.objects.get(username="reviewer")
    key = demo_totp_key(username="reviewer")
    assert key is not None
    assert f"authenticator key: {key}" in out
    assert TOTPDevice.objects.get(user=reviewer).bin_key == base64.b32decode(key)
    assert demo_totp_key(username="editor") is None


def test_running_it_twice_keeps_one_account_each() -> None:
    demo_users_create()
    demo_users_create()
    assert User.objects.filter(username="reviewer").count() == 1


@override_settings(DEBUG=False, TESTING=False)
def test_it_refuses_to_create_demo_users_in_production() -> None:
    with pytest.raises(RuntimeError, match="development only"):
        demo_users_create()
    assert not User.objects.filter(username="admin").exists()
