from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_approve
from console.roles import Role
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle
from users_admin.identifiers import RESOURCE_TYPE

pytestmark = pytest.mark.django_db

NEW_USER = {
    "email": "nora.new@example.com",
    "given_name": "Nora",
    "family_name": "New",
    "department": "marketing",
    "company_permissions": [],
    "workspace_permissions": "demo: basic_access, send_campaigns_canvases",
}


@pytest.fixture
def names(scim_sandbox: SandboxHandle) -> list[str]:
    """Two workspace permission names of the profile's kind, in the order Braze lists them."""
    if scim_sandbox.reference:
        return ["basic_access", "send_campaigns_canvases"]
    return ["edit_campaigns", "view_campaigns"]


@pytest.fixture
def new_user(names: list[str]) -> dict[str, Any]:
    return {**NEW_USER, "workspace_permissions": f"demo: {', '.join(names)}"}


@pytest.fixture
def admin() -> User:
    return user_with_role(Role.ADMIN)


@pytest.fixture
def admin_client(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def _scim_requests(sandbox: SandboxHandle) -> int:
    return len([e for e in sandbox.admin.log() if "/scim/" in str(e.get("path", ""))])


def _seeded_id(sandbox: SandboxHandle, email: str) -> str:
    with sandbox.client() as http:
        response = http.get(
            "/scim/v2/Users",
            params={"filter": f'userName eq "{email}"'},
            headers=sandbox.scim_headers(),
        )
    return str(response.json()["Resources"][0]["id"])


def _sandbox_user(sandbox: SandboxHandle, email: str) -> dict[str, Any] | None:
    with sandbox.client() as http:
        response = http.get(
            "/scim/v2/Users",
            params={"filter": f'userName eq "{email}"'},
            headers=sandbox.scim_headers(),
        )
    resources = response.json()["Resources"]
    return resources[0] if resources else None


def test_a_search_by_email_finds_the_account_and_its_permissions(
    admin_client: Client, scim_sandbox: SandboxHandle
) -> None:
    response = admin_client.get(
        reverse("users_admin:dashboard_users"), {"email": "mark.eting@example.com"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Mark Eting" in html
    if scim_sandbox.reference:
        assert "demo: basic_access, send_campaigns_canvases" in html
    else:
        assert "demo: view_campaigns, edit_campaigns, launch_campaigns" in html
    assert scim_sandbox.scim_token not in html


def test_a_search_for_an_unknown_email_says_so(
    admin_client: Client, scim_sandbox: SandboxHandle
) -> None:
    response = admin_client.get(
        reverse("users_admin:dashboard_users"), {"email": "nobody@example.com"}
    )
    assert "Braze has no dashboard user with the email nobody@example.com" in (
        response.content.decode()
    )


def test_a_malformed_email_is_refused_before_braze_is_asked(
    admin_client: Client, scim_sandbox: SandboxHandle
) -> None:
    before = _scim_requests(scim_sandbox)
    response = admin_client.get(reverse("users_admin:dashboard_users"), {"email": "not-an-email"})
    assert "valid email address" in response.content.decode()
    assert _scim_requests(scim_sandbox) == before


def test_a_braze_failure_is_shown_in_words_with_its_status(
    admin_client: Client, scim_sandbox: SandboxHandle, settings: Any
) -> None:
    scim_sandbox.admin.set_injection(error_rate=1.0, error_status=500, groups=["scim"])
    settings.BRAZE_RETRY = {"attempts": 1, "backoff_base": 0.01, "backoff_cap": 0.01}
    response = admin_client.get(
        reverse("users_admin:dashboard_users"), {"email": "mark.eting@example.com"}
    )
    html = response.content.decode()
    assert "Braze had a problem on its side." in html
    assert "Braze error: Internal Server Error." in html


def test_a_wrong_scim_token_is_explained_and_never_shown(
    admin_client: Client, scim_sandbox: SandboxHandle, settings: Any
) -> None:
    from console.braze import close_client

    settings.BRAZE_SCIM_TOKEN = "not-the-scim-token-123"
    close_client()
    response = admin_client.get(
        reverse("users_admin:dashboard_users"), {"email": "mark.eting@example.com"}
    )
    html = response.content.decode()
    assert "Braze did not accept" in html
    assert "not-the-scim-token-123" not in html


def test_the_account_page_shows_permissions_by_workspace(
    client_for: Callable[[Role | None], Client], scim_sandbox: SandboxHandle
) -> None:
    user_id = _seeded_id(scim_sandbox, "pam.manager@example.com")
    response = client_for(Role.AUDITOR).get(
        reverse("users_admin:dashboard_user_detail", args=[user_id])
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "pam.manager@example.com" in html
    assert "Product Management" in html
    assert "manage_company_settings" in html
    assert "<td>demo</td>" in html
    # Auditors read; only Admins propose.
    assert "Propose a change" not in html


def test_an_unknown_account_is_a_404(admin_client: Client, scim_sandbox: SandboxHandle) -> None:
    response = admin_client.get(reverse("users_admin:dashboard_user_detail", args=["no-such-id"]))
    assert response.status_code == 404


def test_an_admin_proposes_a_new_dashboard_user_and_nothing_is_sent_yet(
    admin_client: Client, scim_sandbox: SandboxHandle, new_user: dict[str, Any], names: list[str]
) -> None:
    response = admin_client.post(reverse("users_admin:dashboard_user_create"), new_user)
    assert response.status_code == 302
    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    assert cr.state == ChangeState.PENDING
    assert cr.action == "create"
    assert cr.payload["email"] == "nora.new@example.com"
    assert cr.payload["permissions"]["appGroup"] == [
        {"appGroupName": "demo", "appGroupPermissions": names}
    ]
    assert "nora" not in cr.identifier
    assert _sandbox_user(scim_sandbox, "nora.new@example.com") is None


def test_a_bad_proposal_gets_brazes_rules_and_keeps_the_entries(
    admin_client: Client, scim_sandbox: SandboxHandle
) -> None:
    form = {
        **NEW_USER,
        "email": "nora@",
        "family_name": " ",
        "department": "sales",
        "workspace_permissions": "demo: basic_access, make_coffee",
    }
    response = admin_client.post(reverse("users_admin:dashboard_user_create"), form)
    html = response.content.decode()
    assert response.status_code == 400
    assert "valid email address" in html
    assert "name.familyName" in html
    assert "Braze requires a department from its list" in html
    assert "make_coffee is not a Braze workspace permission" in html
    assert "demo: basic_access, make_coffee" in html
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, Role.REVIEWER, Role.AUDITOR])
def test_only_admins_may_propose_dashboard_users(
    client_for: Callable[[Role | None], Client], role: Role
) -> None:
    response = client_for(role).post(reverse("users_admin:dashboard_user_create"), NEW_USER)
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_an_approved_proposal_creates_the_account_in_braze(
    admin_client: Client,
    scim_sandbox: SandboxHandle,
    run_on_commit: Any,
    new_user: dict[str, Any],
    names: list[str],
) -> None:
    admin_client.post(reverse("users_admin:dashboard_user_create"), new_user)
    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    with run_on_commit():
        change_request_approve(actor=user_with_role(Role.ADMIN), change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED, cr.error_message
    account = _sandbox_user(scim_sandbox, "nora.new@example.com")
    assert account is not None
    assert account["name"] == {"givenName": "Nora", "familyName": "New"}
    assert account["permissions"]["appGroup"][0]["appGroupPermissions"] == names


def test_a_scim_refusal_on_apply_is_recorded_in_words(
    admin_client: Client, scim_sandbox: SandboxHandle, run_on_commit: Any, new_user: dict[str, Any]
) -> None:
    # Someone created the account in Braze after the proposal: SCIM answers 409.
    admin_client.post(
        reverse("users_admin:dashboard_user_create"),
        {**new_user, "email": "mark.eting@example.com"},
    )
    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    with run_on_commit():
        change_request_approve(actor=user_with_role(Role.ADMIN), change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    assert "A dashboard user with this email already exists." in cr.error_message
    assert "User already exists in the database." in cr.error_id


def test_an_approved_update_changes_permissions_and_keeps_teams(
    admin_client: Client, scim_sandbox: SandboxHandle, run_on_commit: Any, names: list[str]
) -> None:
    user_id = _seeded_id(scim_sandbox, "fin.ance@example.com")
    scim_sandbox.admin.edit_scim_user(
        user_id,
        permissions={
            "companyPermissions": [],
            "appGroup": [
                {
                    "appGroupName": "demo",
                    "appGroupPermissions": names[:1],
                    "team": [{"teamName": "Shoes", "teamPermissions": ["admin"]}],
                }
            ],
        },
    )
    url = reverse("users_admin:dashboard_user_edit", args=[user_id])
    page = admin_client.get(url)
    assert f"demo: {names[0]}" in page.content.decode()
    base_hash = page.context["form"].initial["base_hash"]
    response = admin_client.post(
        url,
        {
            "given_name": "Fin",
            "family_name": "Ance",
            "department": "finance",
            "company_permissions": [],
            "workspace_permissions": f"demo: {', '.join(names)}",
            "base_hash": base_hash,
        },
    )
    assert response.status_code == 302
    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    assert cr.identifier == user_id
    with run_on_commit():
        change_request_approve(actor=user_with_role(Role.ADMIN), change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED, cr.error_message
    group = _sandbox_user(scim_sandbox, "fin.ance@example.com")["permissions"]["appGroup"][0]  # type: ignore[index]
    assert group["appGroupPermissions"] == names
    assert [t["teamName"] for t in group["team"]] == ["Shoes"]


def test_an_edit_over_a_change_made_meanwhile_in_braze_is_stopped_and_keeps_the_entries(
    admin_client: Client, scim_sandbox: SandboxHandle, names: list[str]
) -> None:
    user_id = _seeded_id(scim_sandbox, "fin.ance@example.com")
    url = reverse("users_admin:dashboard_user_edit", args=[user_id])
    base_hash = admin_client.get(url).context["form"].initial["base_hash"]
    scim_sandbox.admin.edit_scim_user(user_id, department="bi")
    response = admin_client.post(
        url,
        {
            "given_name": "Finn",
            "family_name": "Ance",
            "department": "finance",
            "workspace_permissions": f"demo: {names[0]}",
            "base_hash": base_hash,
        },
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "changed in Braze since you opened the form" in html
    assert 'value="Finn"' in html
    assert not ChangeRequest.objects.exists()


def test_an_approved_removal_deletes_the_account(
    admin_client: Client, scim_sandbox: SandboxHandle, run_on_commit: Any
) -> None:
    user_id = _seeded_id(scim_sandbox, "aggie.agency@example.com")
    url = reverse("users_admin:dashboard_user_remove", args=[user_id])
    assert "aggie.agency@example.com" in admin_client.get(url).content.decode()
    assert admin_client.post(url).status_code == 302
    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    assert cr.action == "delete"
    with run_on_commit():
        change_request_approve(actor=user_with_role(Role.ADMIN), change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert _sandbox_user(scim_sandbox, "aggie.agency@example.com") is None


def test_an_account_page_braze_cannot_serve_explains_why(
    admin_client: Client, scim_sandbox: SandboxHandle, settings: Any
) -> None:
    user_id = _seeded_id(scim_sandbox, "pam.manager@example.com")
    scim_sandbox.admin.set_injection(error_rate=1.0, error_status=503, groups=["scim"])
    settings.BRAZE_RETRY = {"attempts": 1, "backoff_base": 0.01, "backoff_cap": 0.01}
    response = admin_client.get(reverse("users_admin:dashboard_user_edit", args=[user_id]))
    assert response.status_code == 502
    assert "Braze had a problem on its side." in response.content.decode()


def test_without_a_scim_token_the_page_says_the_console_is_not_set_up(
    admin_client: Client, settings: Any
) -> None:
    from console.braze import close_client

    settings.BRAZE_SCIM_TOKEN = ""
    close_client()
    response = admin_client.get(reverse("users_admin:dashboard_user_detail", args=["any-id"]))
    close_client()
    assert response.status_code == 502
    assert "The console is not set up to reach Braze" in response.content.decode()


def test_an_update_of_name_and_department_keeps_roles_permission_sets_teams_and_unknown_fields(
    admin_client: Client, scim_sandbox: SandboxHandle, run_on_commit: Any, names: list[str]
) -> None:
    user_id = _seeded_id(scim_sandbox, "fin.ance@example.com")
    held = {
        "companyPermissions": [],
        "roles": [{"roleName": "Content Editor"}],
        "appGroup": [
            {
                "appGroupName": "demo",
                "appGroupPermissions": names,
                "team": [{"teamName": "Shoes", "teamPermissions": names[:1]}],
                "note": "kept",
            },
            {
                "appGroupName": "Other Workspace",
                "appGroupPermissionSets": [{"appGroupPermissionSetName": "Campaign Editors"}],
            },
        ],
    }
    # Set through SCIM itself, so Braze's ids are filled in as they would be.
    with scim_sandbox.client() as http:
        put = http.put(
            f"/scim/v2/Users/{user_id}",
            headers=scim_sandbox.scim_headers(),
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "name": {"givenName": "Fin", "familyName": "Ance"},
                "department": "finance",
                "permissions": held,
                "title": "Designer",
            },
        )
    assert put.status_code == 200, put.text
    before = put.json()
    url = reverse("users_admin:dashboard_user_edit", args=[user_id])
    page = admin_client.get(url)
    assert "Content Editor" in page.content.decode()  # shown as kept
    form = page.context["form"]
    response = admin_client.post(
        url,
        {
            "given_name": "Finley",
            "family_name": "Ance",
            "department": "bi",
            "company_permissions": [],
            "workspace_permissions": form.initial["workspace_permissions"],
            "base_hash": form.initial["base_hash"],
        },
    )
    assert response.status_code == 302, response.content.decode()
    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    with run_on_commit():
        change_request_approve(actor=user_with_role(Role.ADMIN), change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED, cr.error_message
    after = _sandbox_user(scim_sandbox, "fin.ance@example.com")
    assert after is not None
    assert (after["name"]["givenName"], after["department"]) == ("Finley", "bi")
    # Everything else is as Braze held it.
    assert after["title"] == "Designer"
    assert after["permissions"] == before["permissions"]


def test_the_form_offers_granular_names_and_refuses_new_legacy_ones(
    admin_client: Client, scim_sandbox: SandboxHandle, settings: Any
) -> None:
    settings.BRAZE_SCIM_PERMISSIONS = "granular"
    url = reverse("users_admin:dashboard_user_create")
    offered = admin_client.get(url).context["form"].permission_names
    assert "view_campaigns" in offered
    assert "basic_access" not in offered
    response = admin_client.post(url, {**NEW_USER, "workspace_permissions": "demo: basic_access"})
    assert response.status_code == 400
    assert "basic_access is a legacy Braze permission name" in response.content.decode()
    assert "December 2026" in response.content.decode()
    assert not ChangeRequest.objects.exists()
    ok = admin_client.post(url, {**NEW_USER, "workspace_permissions": "demo: view_campaigns"})
    assert ok.status_code == 302


def test_legacy_mode_offers_and_accepts_the_legacy_names(
    admin_client: Client, scim_sandbox: SandboxHandle, settings: Any
) -> None:
    settings.BRAZE_SCIM_PERMISSIONS = "legacy"
    url = reverse("users_admin:dashboard_user_create")
    assert "basic_access" in admin_client.get(url).context["form"].permission_names
    response = admin_client.post(url, {**NEW_USER, "workspace_permissions": "demo: basic_access"})
    assert response.status_code == 302
    refused = admin_client.post(
        url,
        {**NEW_USER, "email": "other@example.com", "workspace_permissions": "demo: view_campaigns"},
    )
    assert "view_campaigns is a granular Braze permission name" in refused.content.decode()


@pytest.mark.one_profile("current")
def test_legacy_names_read_from_braze_are_shown_marked_and_kept_on_edit(
    admin_client: Client, scim_sandbox: SandboxHandle
) -> None:
    user_id = _seeded_id(scim_sandbox, "fin.ance@example.com")
    scim_sandbox.admin.edit_scim_user(
        user_id,
        permissions={
            "companyPermissions": [],
            "appGroup": [
                {"appGroupName": "demo", "appGroupPermissions": ["basic_access", "view_campaigns"]}
            ],
        },
    )
    detail = admin_client.get(reverse("users_admin:dashboard_user_detail", args=[user_id]))
    html = detail.content.decode()
    assert "basic_access <small>(legacy)</small>" in html
    assert "view_campaigns <small>" not in html
    assert "Braze stops accepting legacy names in December 2026" in html
    url = reverse("users_admin:dashboard_user_edit", args=[user_id])
    form = admin_client.get(url).context["form"]
    response = admin_client.post(
        url,
        {
            "given_name": "Fin",
            "family_name": "Ance",
            "department": "finance",
            "workspace_permissions": "demo: basic_access, view_campaigns, view_segments",
            "base_hash": form.initial["base_hash"],
        },
    )
    assert response.status_code == 302


def test_without_a_scim_origin_the_console_makes_no_scim_call_and_says_why(
    admin_client: Client, scim_sandbox: SandboxHandle, settings: Any
) -> None:
    from console.braze import BrazeConfigurationError, close_client, get_client

    user_id = _seeded_id(scim_sandbox, "mark.eting@example.com")
    settings.BRAZE_SCIM_ORIGIN = ""
    close_client()
    before = _scim_requests(scim_sandbox)
    page = admin_client.get(
        reverse("users_admin:dashboard_users"), {"email": "mark.eting@example.com"}
    )
    html = page.content.decode()
    assert "BRAZE_SCIM_ORIGIN" in html
    assert "X-Request-Origin" in html
    assert "Mark Eting" not in html
    detail = admin_client.get(reverse("users_admin:dashboard_user_detail", args=[user_id]))
    assert detail.status_code == 502
    assert "BRAZE_SCIM_ORIGIN" in detail.content.decode()
    with pytest.raises(BrazeConfigurationError, match="BRAZE_SCIM_ORIGIN"):
        get_client().scim_user_get(user_id=user_id)
    assert _scim_requests(scim_sandbox) == before
    close_client()
