import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

from console.roles import Role, user_roles
from console.services import demo_users_create

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


def test_running_it_twice_keeps_one_account_each() -> None:
    demo_users_create()
    demo_users_create()
    assert User.objects.filter(username="reviewer").count() == 1


@override_settings(DEBUG=False, TESTING=False)
def test_it_refuses_to_create_demo_users_in_production() -> None:
    with pytest.raises(RuntimeError, match="development only"):
        demo_users_create()
    assert not User.objects.filter(username="admin").exists()
