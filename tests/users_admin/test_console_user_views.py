from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from console.audit.models import AuditEntry
from console.changes.models import ChangeRequest
from console.roles import Role
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> User:
    return user_with_role(Role.ADMIN, username="ada")


@pytest.fixture
def admin_client(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_the_list_shows_every_user_with_roles_and_status(admin_client: Client) -> None:
    user_with_role(Role.EDITOR, username="eddie")
    user_with_role(Role.VIEWER, username="gone", is_active=False)
    response = admin_client.get(reverse("users_admin:console_users"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "eddie" in html
    assert "Editor" in html
    assert "Deactivated" in html


def test_the_list_filters_by_role_and_htmx_gets_only_the_results(admin_client: Client) -> None:
    user_with_role(Role.EDITOR, username="eddie")
    user_with_role(Role.VIEWER, username="vera")
    response = admin_client.get(
        reverse("users_admin:console_users"),
        {"role": "Editor"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    html = response.content.decode()
    assert "eddie" in html
    assert "vera" not in html
    assert "<h1>" not in html


def test_inviting_a_user_creates_them_and_shows_where_the_link_went(
    admin_client: Client,
) -> None:
    response = admin_client.post(
        reverse("users_admin:user_create"),
        {
            "username": "nina",
            "first_name": "Nina",
            "last_name": "North",
            "email": "nina@example.com",
            "roles": ["Editor"],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert User.objects.filter(username="nina").exists()
    assert "emailed to nina@example.com" in response.content.decode()


def test_a_bad_invitation_keeps_what_was_typed_and_says_why(admin_client: Client) -> None:
    user_with_role(Role.VIEWER, username="taken")
    response = admin_client.post(
        reverse("users_admin:user_create"),
        {"username": "taken", "first_name": "Tess", "last_name": "", "email": "not-an-email"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "already exists" in html
    assert "valid email address" in html
    assert 'value="Tess"' in html


def test_an_admin_changes_someones_roles(admin_client: Client) -> None:
    user = user_with_role(Role.VIEWER)
    response = admin_client.post(
        reverse("users_admin:user_detail", args=[user.pk]),
        {"action": "roles", "roles": ["Editor", "Auditor"]},
    )
    assert response.status_code == 302
    assert set(user.groups.values_list("name", flat=True)) == {"Editor", "Auditor"}
    assert AuditEntry.objects.filter(action="user.roles_changed").count() == 1


def test_granting_reviewer_opens_a_change_request_and_changes_nothing_yet(
    admin_client: Client,
) -> None:
    user = user_with_role(Role.VIEWER, username="rob")
    response = admin_client.post(
        reverse("users_admin:user_detail", args=[user.pk]),
        {"action": "roles", "roles": ["Reviewer", "Auditor"]},
        follow=True,
    )
    cr = ChangeRequest.objects.get(resource_type="console_role")
    assert response.redirect_chain[-1][0] == cr.get_absolute_url()
    assert "another Admin approves" in response.content.decode()
    assert (cr.identifier, cr.payload) == (str(user.pk), {"roles": ["Auditor", "Reviewer"]})
    assert cr.base_snapshot == {"roles": ["Viewer"]}
    assert cr.title == "Give rob the Reviewer role"
    assert set(user.groups.values_list("name", flat=True)) == {"Viewer"}
    assert not AuditEntry.objects.filter(action="user.roles_changed").exists()
    # The user's page lists the open request.
    page = admin_client.get(reverse("users_admin:user_detail", args=[user.pk]))
    assert f"#{cr.pk} Give rob the Reviewer role" in page.content.decode()


def test_the_last_admin_removing_their_own_admin_role_is_refused_in_words(
    admin_client: Client, admin: User
) -> None:
    response = admin_client.post(
        reverse("users_admin:user_detail", args=[admin.pk]),
        {"action": "roles", "roles": ["Viewer"]},
    )
    assert response.status_code == 409
    assert "last active Admin" in response.content.decode()
    assert set(admin.groups.values_list("name", flat=True)) == {"Admin"}


def test_the_last_admin_deactivating_themselves_is_refused_in_words(
    admin_client: Client, admin: User
) -> None:
    response = admin_client.post(
        reverse("users_admin:user_detail", args=[admin.pk]), {"action": "deactivate"}
    )
    assert response.status_code == 409
    assert "cannot deactivate yourself" in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active


def test_an_admin_deactivates_and_reactivates_a_user(admin_client: Client) -> None:
    user = user_with_role(Role.EDITOR)
    url = reverse("users_admin:user_detail", args=[user.pk])
    admin_client.post(url, {"action": "deactivate"})
    user.refresh_from_db()
    assert not user.is_active
    admin_client.post(url, {"action": "reactivate"})
    user.refresh_from_db()
    assert user.is_active


def test_an_unknown_user_is_a_404(admin_client: Client) -> None:
    response = admin_client.get(reverse("users_admin:user_detail", args=[999999]))
    assert response.status_code == 404


def test_an_auditor_cannot_change_roles(client_for: Callable[[Role | None], Client]) -> None:
    user = user_with_role(Role.VIEWER)
    response = client_for(Role.AUDITOR).post(
        reverse("users_admin:user_detail", args=[user.pk]),
        {"action": "roles", "roles": ["Admin"]},
    )
    assert response.status_code == 403
    assert set(user.groups.values_list("name", flat=True)) == {"Viewer"}


def test_the_landing_page_offers_console_users_only_to_admins(
    client_for: Callable[[Role | None], Client],
) -> None:
    admin_page = client_for(Role.ADMIN).get(reverse("users_admin:index")).content.decode()
    auditor_page = client_for(Role.AUDITOR).get(reverse("users_admin:index")).content.decode()
    assert reverse("users_admin:console_users") in admin_page
    assert reverse("users_admin:console_users") not in auditor_page
    for page in (admin_page, auditor_page):
        assert reverse("users_admin:dashboard_users") in page
        assert reverse("users_admin:access_review") in page


def test_an_admin_emails_a_new_link_to_someone_who_has_no_password_yet(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    user = user_with_role(Role.VIEWER, email="vic@example.com")
    user.set_unusable_password()
    user.save()
    url = reverse("users_admin:user_detail", args=[user.pk])
    assert "Email a new password link" in admin_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"action": "resend"})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["vic@example.com"]
    assert "/users/welcome/" in mail.outbox[-1].body
    assert AuditEntry.objects.filter(action="user.invitation_resent").count() == 1


def test_an_unreachable_mail_server_does_not_undo_the_invitation(
    admin_client: Client, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    from users_admin import services

    def broken(**kwargs: Any) -> None:
        raise ConnectionRefusedError

    monkeypatch.setattr(services, "_invitation_mail", broken)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("users_admin:user_create"),
            {
                "username": "nina",
                "first_name": "Nina",
                "last_name": "North",
                "email": "nina@example.com",
                "roles": ["Viewer"],
            },
        )
    assert response.status_code == 302
    assert User.objects.filter(username="nina").exists()
