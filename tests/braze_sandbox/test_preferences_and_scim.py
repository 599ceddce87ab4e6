"""Preference centers and SCIM dashboard users."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox
from tests.braze_sandbox.conftest import SCIM

pytestmark = pytest.mark.usefixtures("unlimited")

PC_CREATE = {
    "name": "My_Preference_Center",
    "preference_center_title": "Example Preference Center Title",
    "preference_center_page_html": "HTML for preference center here",
    "confirmation_page_html": "HTML here with a message to users here",
    "state": "active",
    "options": {"meta-viewport-content": "width=device-width, initial-scale=2"},
}
SCIM_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "user@test.com",
    "name": {"givenName": "Test", "familyName": "User"},
    "department": "finance",
    "permissions": {
        "companyPermissions": ["manage_company_settings"],
        "appGroup": [
            {
                "appGroupName": "Test App Group",
                "appGroupPermissions": ["basic_access", "send_campaigns_canvases"],
                "team": [
                    {
                        "teamName": "Test Team",
                        "teamPermissions": ["basic_access", "export_user_data"],
                    }
                ],
            }
        ],
    },
}


def test_the_documented_preference_center_examples_are_accepted(client: TestClient) -> None:
    created = client.post("/preference_center/v1", json=PC_CREATE)
    assert created.status_code == 201
    body = created.json()
    assert body["liquid_tag"] == "{{preference_center.${My_Preference_Center}}}"
    pc_id = body["preference_center_api_id"]
    update = {
        "name": "Example",
        "preference_center_title": "Example Preference Center Title",
        "preference_center_page_html": "New HTML",
        "confirmation_page_html": "HTML here with a message to users here",
        "state": "active",
    }
    updated = client.put(f"/preference_center/v1/{pc_id}", json=update)
    assert updated.status_code == 200
    assert set(updated.json()) == {
        "preference_center_api_id",
        "created_at",
        "updated_at",
        "message",
    }
    view = client.get(f"/preference_center/v1/{pc_id}").json()
    assert view["name"] == "My_Preference_Center"  # the name never changes
    assert view["preference_center_page_html"] == "New HTML"
    assert view["preference_center_options"] == PC_CREATE["options"]
    assert view["redirect_page_html"] is None
    names = [
        p["name"] for p in client.get("/preference_center/v1/list").json()["preference_centers"]
    ]
    assert names == ["main_preferences", "My_Preference_Center"]
    url = client.get(f"/preference_center/v1/{pc_id}/url/user-1").json()["preference_center_url"]
    assert url.startswith("https://")
    assert client.get(f"/preference_center_v1/{pc_id}/url/user-1").json() == {
        "preference_center_url": url
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "has space"},
        {"name": ""},
        {"preference_center_page_html": ""},
        {"confirmation_page_html": None},
        {"state": "live"},
        {"options": "x"},
    ],
)
def test_preference_center_create_refuses_invalid_input(
    client: TestClient, changes: dict[str, Any]
) -> None:
    response = client.post("/preference_center/v1", json={**PC_CREATE, **changes})
    assert response.status_code == 400
    assert response.json()["message"]


def test_preference_center_writes_are_limited_to_10_per_minute(
    client: TestClient, sandbox: Any
) -> None:
    sandbox.config.rate_limits_enabled = True
    statuses = [
        client.post("/preference_center/v1", json={**PC_CREATE, "name": f"pc{i}"}).status_code
        for i in range(11)
    ]
    assert statuses == [201] * 10 + [429]
    assert client.get("/preference_center/v1/list").headers["x-ratelimit-limit"] == "1000"


def test_the_view_shows_only_the_options_brazes_view_page_shows(
    client: TestClient, sandbox: Sandbox
) -> None:
    favicon = {"rel": "icon", "href": "https://cdn.example.com/favicon.png"}
    options = {"meta-viewport-content": "width=device-width", "links-tags": [favicon]}
    created = client.post("/preference_center/v1", json={**PC_CREATE, "options": options})
    pc_id = created.json()["preference_center_api_id"]
    shown = client.get(f"/preference_center/v1/{pc_id}").json()["preference_center_options"]
    if sandbox.config.reference:
        assert shown == options
    else:
        assert shown == {"meta-viewport-content": "width=device-width"}
    # An update that leaves the options out keeps them all, shown or not.
    update = {k: PC_CREATE[k] for k in ("preference_center_page_html", "confirmation_page_html")}
    assert client.put(f"/preference_center/v1/{pc_id}", json=update).status_code == 200
    row = sandbox.store.q1("SELECT options FROM preference_centers WHERE id=?", (pc_id,))
    assert row is not None
    assert json.loads(row["options"]) == options


def test_an_unknown_preference_center_is_404(client: TestClient) -> None:
    assert client.get("/preference_center/v1/nope").status_code == 404


def test_scim_create_lookup_search_update_and_remove(client: TestClient) -> None:
    created = client.post("/scim/v2/Users", json=SCIM_USER, headers=SCIM)
    assert created.status_code == 201
    user = created.json()
    assert user["userName"] == "user@test.com"
    assert user["permissions"]["appGroup"][0]["appGroupId"]
    assert user["lastSignInAt"] == "Thursday, January 1, 1970 12:00:00 AM"
    found = client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "user@test.com"'}, headers=SCIM
    ).json()
    assert found["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == user["id"]
    update = {key: value for key, value in SCIM_USER.items() if key != "userName"}
    update["department"] = "marketing"
    updated = client.put(f"/scim/v2/Users/{user['id']}", json=update, headers=SCIM)
    assert updated.json()["department"] == "marketing"
    assert client.get(f"/scim/v2/Users/{user['id']}", headers=SCIM).status_code == 200
    assert client.delete(f"/scim/v2/Users/{user['id']}", headers=SCIM).status_code == 204
    missing = client.get(f"/scim/v2/Users/{user['id']}", headers=SCIM)
    assert missing.status_code == 404
    assert missing.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "detail": "User not found",
        "status": 404,
    }


def test_scim_refuses_a_duplicate_user_with_409(client: TestClient) -> None:
    client.post("/scim/v2/Users", json=SCIM_USER, headers=SCIM)
    duplicate = client.post("/scim/v2/Users", json=SCIM_USER, headers=SCIM)
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == "User already exists in the database."


def test_scim_refuses_to_change_the_user_name(client: TestClient) -> None:
    user = client.post("/scim/v2/Users", json=SCIM_USER, headers=SCIM).json()
    changed = {**SCIM_USER, "userName": "other@test.com"}
    assert client.put(f"/scim/v2/Users/{user['id']}", json=changed, headers=SCIM).status_code == 400


@pytest.mark.parametrize(
    "changes",
    [
        {"department": "sales"},
        {"userName": "not-an-email"},
        {"schemas": []},
        {"name": {"givenName": "A"}},
        {"permissions": {"companyPermissions": ["root"]}},
    ],
)
def test_scim_refuses_invalid_users(client: TestClient, changes: dict[str, Any]) -> None:
    response = client.post("/scim/v2/Users", json={**SCIM_USER, **changes}, headers=SCIM)
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_scim_uses_its_own_token_not_rest_keys(client: TestClient) -> None:
    assert client.get("/scim/v2/Users", params={"filter": 'userName eq "a@b.co"'}).status_code == (
        401
    )
    rest_only = client.get("/catalogs", headers=SCIM)
    assert rest_only.status_code == 401


def test_a_scim_token_with_a_service_origin_requires_the_matching_header(
    client: TestClient,
) -> None:
    token = client.post("/_sandbox/scim_tokens", json={"origin": "idp.example.com"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    query = {"filter": 'userName eq "ada.admin@example.com"'}
    assert client.get("/scim/v2/Users", params=query, headers=headers).status_code == 401
    ok = client.get(
        "/scim/v2/Users", params=query, headers={**headers, "X-Request-Origin": "idp.example.com"}
    )
    assert ok.json()["totalResults"] == 1


QUERY = {"filter": 'userName eq "ada.admin@example.com"'}


@pytest.mark.one_profile("current")
def test_under_the_current_profile_every_scim_token_needs_its_service_origin(
    client: TestClient,
) -> None:
    bearer = {"Authorization": SCIM["Authorization"]}
    missing = client.get("/scim/v2/Users", params=QUERY, headers=bearer)
    assert missing.status_code == 401
    assert missing.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert missing.json()["detail"].startswith("Unauthorized")
    assert "X-Request-Origin" in missing.json()["detail"]
    wrong = client.get(
        "/scim/v2/Users", params=QUERY, headers={**bearer, "X-Request-Origin": "elsewhere.example"}
    )
    assert wrong.status_code == 401
    # A token made without an origin has the sandbox's development one.
    token = client.post("/_sandbox/scim_tokens", json={}).json()["token"]
    other = {"Authorization": f"Bearer {token}"}
    assert client.get("/scim/v2/Users", params=QUERY, headers=other).status_code == 401
    assert client.get("/scim/v2/Users", params=QUERY, headers=SCIM).json()["totalResults"] == 1


@pytest.mark.one_profile("reference")
def test_the_reference_profile_checks_the_origin_only_of_tokens_given_one(
    client: TestClient,
) -> None:
    bearer = {"Authorization": SCIM["Authorization"]}
    assert client.get("/scim/v2/Users", params=QUERY, headers=bearer).json()["totalResults"] == 1


FULL_USER = {
    **SCIM_USER,
    "userName": "full@test.com",
    "title": "Designer",  # a field the sandbox does not know: stored and answered as sent
    "permissions": {
        "companyPermissions": [],
        "roles": [{"roleName": "Content Editor"}, {"roleId": "role-from-elsewhere"}],
        "appGroup": [
            {
                "appGroupName": "demo",
                "appGroupPermissions": ["view_campaigns"],
                "team": [{"teamName": "Shoes", "teamPermissions": ["edit_campaigns"]}],
                "note": "kept",
            },
            {
                "appGroupName": "Other Workspace",
                "appGroupPermissionSets": [{"appGroupPermissionSetName": "Campaign Editors"}],
            },
        ],
    },
}


def test_scim_stores_and_returns_roles_permission_sets_teams_and_unknown_fields(
    client: TestClient, sandbox: Any
) -> None:
    user = client.post("/scim/v2/Users", json=FULL_USER, headers=SCIM).json()
    got = client.get(f"/scim/v2/Users/{user['id']}", headers=SCIM).json()
    assert got["title"] == "Designer"
    roles = got["permissions"]["roles"]
    assert [r.get("roleName") for r in roles] == ["Content Editor", None]
    assert roles[0]["roleId"]
    assert roles[1]["roleId"] == "role-from-elsewhere"
    demo, other = got["permissions"]["appGroup"]
    assert demo["team"][0]["teamName"] == "Shoes"
    assert demo["note"] == "kept"
    permission_set = other["appGroupPermissionSets"][0]
    assert permission_set["appGroupPermissionSetName"] == "Campaign Editors"
    assert permission_set["appGroupPermissionSetId"]
    if not sandbox.config.reference:
        # As Braze's answers do, the current profile describes what a role and a set grant.
        assert roles[0]["appGroup"][0]["appGroupPermissions"]
        assert "launch_campaigns" in permission_set["permissions"]
    # A PUT replaces the account: what it leaves out is gone.
    update = {k: v for k, v in FULL_USER.items() if k not in {"userName", "title"}}
    update["permissions"] = {**FULL_USER["permissions"], "roles": []}  # type: ignore[dict-item]
    after = client.put(f"/scim/v2/Users/{user['id']}", json=update, headers=SCIM).json()
    assert "title" not in after
    assert after["permissions"]["roles"] == []


@pytest.mark.parametrize(
    "permissions",
    [
        {"appGroup": [{"appGroupName": "demo", "appGroupPermissions": ["make_coffee"]}]},
        {
            "appGroup": [
                {
                    "appGroupName": "demo",
                    "appGroupPermissions": ["view_campaigns"],
                    "team": [{"teamName": "Shoes", "teamPermissions": ["view_api_keys"]}],
                }
            ]
        },
        {"appGroup": [{"appGroupName": "demo"}]},
        {"roles": [{"note": "no name, no id"}], "appGroup": []},
        {
            "appGroup": [
                {
                    "appGroupName": "demo",
                    "appGroupPermissionSets": [
                        {"appGroupPermissionSetName": "A"},
                        {"appGroupPermissionSetName": "B"},
                    ],
                }
            ]
        },
    ],
)
@pytest.mark.one_profile("current")
def test_the_current_profile_refuses_permission_strings_and_objects_braze_does_not_document(
    client: TestClient, permissions: dict[str, Any]
) -> None:
    body = {**SCIM_USER, "permissions": {"companyPermissions": [], **permissions}}
    response = client.post("/scim/v2/Users", json=body, headers=SCIM)
    assert response.status_code == 400
    assert response.json()["status"] == 400


@pytest.mark.one_profile("current")
def test_the_current_profile_accepts_granular_and_still_legacy_strings(
    client: TestClient,
) -> None:
    body = {
        **SCIM_USER,
        "permissions": {
            "companyPermissions": [],
            "appGroup": [
                {
                    "appGroupName": "demo",
                    "appGroupPermissions": ["view_campaigns", "basic_access"],
                    "team": [{"teamName": "Shoes", "teamPermissions": ["create_reports", "admin"]}],
                }
            ],
        },
    }
    assert client.post("/scim/v2/Users", json=body, headers=SCIM).status_code == 201


@pytest.mark.one_profile("reference")
def test_the_reference_profile_does_not_check_workspace_permission_strings(
    client: TestClient,
) -> None:
    body = {
        **SCIM_USER,
        "permissions": {
            "companyPermissions": [],
            "appGroup": [{"appGroupName": "demo", "appGroupPermissions": ["make_coffee"]}],
        },
    }
    assert client.post("/scim/v2/Users", json=body, headers=SCIM).status_code == 201


def test_the_seeded_accounts_follow_the_profile(client: TestClient, sandbox: Any) -> None:
    query = {"filter": 'userName eq "mark.eting@example.com"'}
    mark = client.get("/scim/v2/Users", params=query, headers=SCIM).json()["Resources"][0]
    names = mark["permissions"]["appGroup"][0]["appGroupPermissions"]
    if sandbox.config.reference:
        assert names == ["basic_access", "send_campaigns_canvases"]
        assert "roles" not in mark["permissions"]
    else:
        assert names == ["view_campaigns", "edit_campaigns", "launch_campaigns"]
        assert mark["permissions"]["roles"][0]["roleName"] == "Content Editor"
