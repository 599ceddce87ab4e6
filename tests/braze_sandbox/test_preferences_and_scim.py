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
        "appGroup": [{
            "appGroupName": "Test App Group",
            "appGroupPermissions": ["basic_access", "send_campaigns_canvases"],
            "team": [{"teamName": "Test Team", "teamPermissions": ["basic_access",
                                                                  "export_user_data"]}],
        }],
    },
}  # fmt: skip


def test_the_documented_preference_center_examples_are_accepted(client: TestClient) -> None:
    created = client.post("/preference_center/v1", json=PC_CREATE)
    assert created.status_code == 201
    body = created.json()
    assert body["liquid_tag"] == "{{preference_center.${My_Preference_Center}}}"
    pc_id = body["preference_center_api_id"]
    update = {"name": "Example", "preference_center_title": "Example Preference Center Title",
              "preference_center_page_html": "New HTML",
              "confirmation_page_html": "HTML here with a message to users here",
              "state": "active"}  # fmt: skip
    updated = client.put(f"/preference_center/v1/{pc_id}", json=update)
    assert updated.status_code == 200
    assert set(updated.json()) == {"preference_center_api_id", "created_at", "updated_at",
                                   "message"}  # fmt: skip
    view = client.get(f"/preference_center/v1/{pc_id}").json()
    assert view["name"] == "My_Preference_Center"  # the name never changes
    assert view["preference_center_page_html"] == "New HTML"
    assert view["preference_center_options"] == PC_CREATE["options"]
    assert view["redirect_page_html"] is None
    names = [p["name"] for p in client.get("/preference_center/v1/list").json()[
        "preference_centers"]]  # fmt: skip
    assert names == ["main_preferences", "My_Preference_Center"]
    url = client.get(f"/preference_center/v1/{pc_id}/url/user-1").json()["preference_center_url"]
    assert url.startswith("https://")
    assert client.get(f"/preference_center_v1/{pc_id}/url/user-1").json() == {
        "preference_center_url": url
    }


@pytest.mark.parametrize(
    "changes",
    [{"name": "has space"}, {"name": ""}, {"preference_center_page_html": ""},
     {"confirmation_page_html": None}, {"state": "live"}, {"options": "x"}],
)  # fmt: skip
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
    statuses = [client.post("/preference_center/v1", json={**PC_CREATE, "name": f"pc{i}"})
                .status_code for i in range(11)]  # fmt: skip
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
    found = client.get("/scim/v2/Users", params={"filter": 'userName eq "user@test.com"'},
                       headers=SCIM).json()  # fmt: skip
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
    assert missing.json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                              "detail": "User not found", "status": 404}  # fmt: skip


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
    [{"department": "sales"}, {"userName": "not-an-email"}, {"schemas": []},
     {"name": {"givenName": "A"}}, {"permissions": {"companyPermissions": ["root"]}}],
)  # fmt: skip
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
    ok = client.get("/scim/v2/Users", params=query,
                    headers={**headers, "X-Request-Origin": "idp.example.com"})  # fmt: skip
    assert ok.json()["totalResults"] == 1
