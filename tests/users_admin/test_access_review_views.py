import csv
import io
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.audit.models import AuditEntry
from console.roles import Role
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle
from users_admin import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_scim_budget() -> None:
    from django.core.cache import cache

    from users_admin.selectors import access_review_budget_key

    cache.delete(access_review_budget_key())


@pytest.fixture
def auditor() -> User:
    return user_with_role(Role.AUDITOR, username="audrey", email="audrey@example.com")


@pytest.fixture
def auditor_client(auditor: User) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


def auditor_last_login(user: User) -> str:
    user.refresh_from_db()
    assert user.last_login is not None
    return user.last_login.isoformat()


def _csv(response: StreamingHttpResponse) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()  # type: ignore[arg-type]
    return list(csv.DictReader(io.StringIO(body)))


def test_the_review_lists_every_console_user_with_role_sign_in_and_status(
    auditor_client: Client,
) -> None:
    user_with_role(Role.EDITOR, username="eddie", last_login=timezone.now())
    user_with_role(Role.VIEWER, username="gone", is_active=False)
    user_with_role(None, username="nobody")
    response = auditor_client.get(reverse("users_admin:access_review"))
    html = response.content.decode()
    assert response.status_code == 200
    for expected in ("eddie", "Editor", "gone", "deactivated", "nobody", "(no role)"):
        assert expected in html
    # The emails to look up start from the console users.
    assert "audrey@example.com" in html


def _look_up(client: Client, emails: str) -> str:
    """Ask for a look-up; the run's token from the redirect."""
    response = client.post(reverse("users_admin:access_review"), {"emails": emails})
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["run"][0]


def _page(client: Client, token: str) -> str:
    return client.get(reverse("users_admin:access_review"), {"run": token}).content.decode()


def _export(client: Client, token: str) -> StreamingHttpResponse:
    response = client.post(reverse("users_admin:access_review_export"), {"run": token})
    assert isinstance(response, StreamingHttpResponse)
    return response


def test_looking_up_dashboard_users_shows_their_permissions(
    auditor_client: Client, scim_sandbox: SandboxHandle, eager_celery: None
) -> None:
    token = _look_up(auditor_client, "mark.eting@example.com\nnobody@example.com")
    html = _page(auditor_client, token)
    assert "Looked up all 2 emails." in html
    assert "Mark Eting" in html
    if scim_sandbox.reference:
        assert "demo: basic_access, send_campaigns_canvases" in html
    else:  # access through a role and a team counts as much as the workspace's own names
        assert (
            "roles: Content Editor; demo: view_campaigns, edit_campaigns, launch_campaigns; "
            "demo / team Shoes: view_campaigns, edit_campaigns"
        ) in html
    assert "no Braze dashboard account" in html


def test_the_export_is_a_csv_of_both_kinds_of_account_and_is_audited(
    auditor_client: Client, auditor: User, scim_sandbox: SandboxHandle, eager_celery: None
) -> None:
    user_with_role(Role.ADMIN, username="ada", first_name="=HYPERLINK(1)")
    token = _look_up(auditor_client, "pam.manager@example.com\nnobody@example.com")
    response = _export(auditor_client, token)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    entry = AuditEntry.objects.get(action="access_review.exported")
    assert entry.actor_id == auditor.pk
    assert entry.data == {"format": "csv", "console_users": 2, "dashboard_emails": 2}

    rows = _csv(response)
    console = {r["username"]: r for r in rows if r["account_type"] == "console"}
    assert console["ada"]["roles_or_permissions"] == "Admin"
    assert console["ada"]["name"].startswith("'=HYPERLINK")  # inert in a spreadsheet
    assert console["audrey"]["status"] == "active"
    assert console["audrey"]["last_sign_in"] == auditor_last_login(auditor)
    assert console["ada"]["last_sign_in"] == "never"
    braze = {r["email"]: r for r in rows if r["account_type"] == "braze_dashboard"}
    assert braze["pam.manager@example.com"]["roles_or_permissions"] == (
        "company: manage_company_settings; demo: basic_access"
        if scim_sandbox.reference
        else "company: manage_company_settings; roles: Workspace Manager; "
        "demo: view_campaigns, view_canvases"
    )
    assert braze["pam.manager@example.com"]["department"] == "Product Management"
    assert braze["nobody@example.com"]["status"] == "no Braze dashboard account"


def test_a_bad_email_in_the_list_is_refused_and_nothing_is_queued(
    auditor_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[tuple[int, str]] = []
    monkeypatch.setattr(tasks.access_review_lookup_task, "delay", lambda *a: queued.append(a))
    response = auditor_client.post(
        reverse("users_admin:access_review"), {"emails": "ok@example.com\nnot an email"}
    )
    assert response.status_code == 400
    assert "Not an email address: not an email." in response.content.decode()
    assert queued == []


def test_an_export_without_a_look_up_is_refused_with_a_message(auditor_client: Client) -> None:
    response = auditor_client.post(reverse("users_admin:access_review_export"), {"run": "nope"})
    assert response.status_code == 302
    page = auditor_client.get(response["Location"]).content.decode()
    assert "Look the dashboard users up first" in page
    assert not AuditEntry.objects.filter(action="access_review.exported").exists()


def test_a_scim_failure_during_the_look_up_is_written_into_the_row(
    auditor_client: Client, scim_sandbox: SandboxHandle, settings: object, eager_celery: None
) -> None:
    scim_sandbox.admin.set_injection(error_rate=1.0, error_status=500, groups=["scim"])
    settings.BRAZE_RETRY = {"attempts": 1, "backoff_base": 0.01, "backoff_cap": 0.01}  # type: ignore[attr-defined]
    token = _look_up(auditor_client, "pam.manager@example.com")
    row = next(
        r for r in _csv(_export(auditor_client, token)) if r["account_type"] == "braze_dashboard"
    )
    assert row["status"].startswith("lookup failed: Braze had a problem on its side.")


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, Role.REVIEWER])
def test_only_auditors_and_admins_may_export(
    client_for: Callable[[Role | None], Client], role: Role
) -> None:
    response = client_for(role).post(reverse("users_admin:access_review_export"), {"run": "x"})
    assert response.status_code == 403
    assert not AuditEntry.objects.filter(action="access_review.exported").exists()
