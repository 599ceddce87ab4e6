import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from console.audit.models import AuditEntry, AuditPersonal
from console.audit.services import Outcome
from console.roles import Role, roles_ensure_groups, user_roles
from tests.factories import user_with_role
from users_admin import services
from users_admin.services import SelfLockoutError

pytestmark = pytest.mark.django_db


def _roles(user: User) -> set[Role]:
    user.refresh_from_db()
    if hasattr(user, "_console_roles"):
        del user._console_roles
    return set(user_roles(user))


def test_it_invites_a_user_with_no_password_and_emails_a_one_time_link(
    django_capture_on_commit_callbacks,
) -> None:
    admin = user_with_role(Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        user = services.user_create(
            actor=admin,
            username="nina",
            email="nina@example.com",
            first_name="Nina",
            last_name="North",
            roles={Role.EDITOR},
            base_url="http://console.test/",
        )
    assert not user.has_usable_password()
    assert _roles(user) == {Role.EDITOR}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["nina@example.com"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/users/welcome/" in line)
    path = link.removeprefix("http://console.test")

    client = Client()
    form = {"new_password1": "a-long-new-pass-phrase", "new_password2": "a-long-new-pass-phrase"}
    response = client.get(path, follow=True)  # Django swaps the token for a session URL
    response = client.post(response.redirect_chain[-1][0], form)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-long-new-pass-phrase")
    # The link is spent: opening it again shows no form.
    again = Client().get(path, follow=True)
    assert b"already been used or has expired" in again.content


def test_the_invitation_is_audited_with_the_email_kept_erasable() -> None:
    admin = user_with_role(Role.ADMIN)
    user = services.user_create(
        actor=admin,
        username="nina",
        email="nina@example.com",
        first_name="Nina",
        last_name="North",
        roles={Role.VIEWER},
        base_url="http://console.test/",
    )
    entry = AuditEntry.objects.get(action="user.invited")
    assert entry.resource_id == str(user.pk)
    assert entry.actor_id == admin.pk
    assert entry.data == {"roles": ["Viewer"]}
    assert "nina@example.com" not in str(entry.data)
    assert AuditPersonal.objects.get(entry=entry).data["email"] == "nina@example.com"


def test_a_role_change_is_audited_with_what_was_added_and_removed() -> None:
    admin = user_with_role(Role.ADMIN)
    user = user_with_role(Role.VIEWER)
    assert (
        services.user_set_roles(actor=admin, user=user, roles={Role.EDITOR, Role.AUDITOR}) is None
    )
    assert _roles(user) == {Role.EDITOR, Role.AUDITOR}
    entry = AuditEntry.objects.get(action="user.roles_changed")
    assert entry.data["before"] == ["Viewer"]
    assert entry.data["added"] == ["Auditor", "Editor"]
    assert entry.data["removed"] == ["Viewer"]
    assert entry.outcome == Outcome.SUCCESS


def test_saving_the_same_roles_writes_no_audit_entry() -> None:
    admin = user_with_role(Role.ADMIN)
    user = user_with_role(Role.VIEWER)
    services.user_set_roles(actor=admin, user=user, roles={Role.VIEWER})
    assert not AuditEntry.objects.filter(action="user.roles_changed").exists()


def test_the_last_active_admin_cannot_remove_their_own_admin_role() -> None:
    admin = user_with_role(Role.ADMIN)
    with pytest.raises(SelfLockoutError, match="last active Admin"):
        services.user_set_roles(actor=admin, user=admin, roles={Role.AUDITOR})
    assert _roles(admin) == {Role.ADMIN}
    refused = AuditEntry.objects.get(action="user.roles_changed")
    assert refused.outcome == Outcome.REFUSED


def test_an_admin_may_drop_their_admin_role_while_another_admin_is_active() -> None:
    admin = user_with_role(Role.ADMIN)
    user_with_role(Role.ADMIN)
    services.user_set_roles(actor=admin, user=admin, roles={Role.AUDITOR})
    assert _roles(admin) == {Role.AUDITOR}


def test_a_deactivated_admin_does_not_count_as_another_admin() -> None:
    admin = user_with_role(Role.ADMIN)
    user_with_role(Role.ADMIN, is_active=False)
    with pytest.raises(SelfLockoutError):
        services.user_set_roles(actor=admin, user=admin, roles=set())


def test_the_last_active_admin_cannot_deactivate_themselves() -> None:
    admin = user_with_role(Role.ADMIN)
    with pytest.raises(SelfLockoutError, match="cannot deactivate yourself"):
        services.user_deactivate(actor=admin, user=admin)
    admin.refresh_from_db()
    assert admin.is_active
    assert AuditEntry.objects.get(action="user.deactivated").outcome == Outcome.REFUSED


def test_deactivating_a_user_blocks_their_roles_and_is_audited() -> None:
    admin = user_with_role(Role.ADMIN)
    user = user_with_role(Role.EDITOR)
    services.user_deactivate(actor=admin, user=user)
    user.refresh_from_db()
    assert not user.is_active
    assert user_roles(user) == frozenset()
    entry = AuditEntry.objects.get(action="user.deactivated")
    assert entry.resource_id == str(user.pk)
    assert entry.data == {"roles": ["Editor"]}

    services.user_reactivate(actor=admin, user=user)
    user.refresh_from_db()
    assert user.is_active
    assert AuditEntry.objects.filter(action="user.reactivated").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_themselves_at_once_leave_one_admin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from django.db import connection

    from users_admin import services as module

    first, second = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    barrier = threading.Barrier(2, timeout=10)
    real = roles_ensure_groups

    arrived = threading.local()

    def both_arrive() -> None:
        # Both transactions reach the admin lock before either has committed.
        real()
        if threading.current_thread() is not threading.main_thread() and not getattr(
            arrived, "done", False
        ):
            arrived.done = True
            barrier.wait()

    monkeypatch.setattr(module, "roles_ensure_groups", both_arrive)
    outcomes: dict[int, str] = {}

    def demote(admin: User) -> None:
        try:
            services.user_set_roles(actor=admin, user=admin, roles={Role.AUDITOR})
            outcomes[admin.pk] = "changed"
        except SelfLockoutError:
            outcomes[admin.pk] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(a,)) for a in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes.values()) == ["changed", "refused"]
    assert User.objects.filter(is_active=True, groups__name="Admin").count() == 1


def test_admins_deactivating_each_other_cannot_leave_no_admin() -> None:
    first, second = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    services.user_deactivate(actor=first, user=second)
    # `second` was deactivated a moment after submitting their own request.
    with pytest.raises(SelfLockoutError, match="last active Admin"):
        services.user_deactivate(actor=second, user=first)
    first.refresh_from_db()
    assert first.is_active
