"""POST /users/export/ids: the demo workspace's customers, by Braze's "Export user profile by
identifier" page (_docs/_api/endpoints/export/user_data/post_users_identifier.md)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox
from tests.braze_sandbox.conftest import REST, sandbox_client

FIELDS = ["external_id", "first_name", "language", "custom_attributes"]


@pytest.mark.usefixtures("unlimited")
def test_it_exports_the_fields_asked_for_and_names_unknown_ids(client: TestClient) -> None:
    answer = client.post(
        "/users/export/ids",
        json={"external_ids": ["customer-1001", "nobody-here"], "fields_to_export": FIELDS},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["message"] == "success"
    assert body["invalid_user_ids"] == ["nobody-here"]
    [maya] = body["users"]
    assert set(maya) == set(FIELDS)
    assert (maya["first_name"], maya["language"]) == ("Maya", "sv")
    assert maya["custom_attributes"]["pets"][0]["name"] == "Sixten"


@pytest.mark.usefixtures("unlimited")
def test_fields_a_user_has_no_value_for_are_left_out(client: TestClient) -> None:
    body = client.post(
        "/users/export/ids",
        json={"external_ids": ["customer-1003"], "fields_to_export": FIELDS},
    ).json()
    assert body["users"] == [{"external_id": "customer-1003", "language": "en"}]
    assert "invalid_user_ids" not in body


@pytest.mark.usefixtures("unlimited")
def test_only_unknown_ids_give_an_empty_users_array(client: TestClient) -> None:
    body = client.post(
        "/users/export/ids", json={"external_ids": ["x-1"], "fields_to_export": FIELDS}
    ).json()
    assert (body["users"], body["invalid_user_ids"]) == ([], ["x-1"])


@pytest.mark.usefixtures("unlimited")
def test_users_are_found_by_alias_and_by_braze_id(client: TestClient) -> None:
    body = client.post(
        "/users/export/ids",
        json={
            "user_aliases": [{"alias_name": "maya-crm-1001", "alias_label": "crm_id"}],
            "braze_id": "5fa0c2d1e3b4a5968778a002",
            "fields_to_export": ["external_id"],
        },
    ).json()
    assert body["users"] == [{"external_id": "customer-1001"}, {"external_id": "customer-1002"}]


@pytest.mark.usefixtures("unlimited")
@pytest.mark.parametrize(
    "body",
    [
        {"fields_to_export": FIELDS},
        {"external_ids": [f"u{n}" for n in range(51)], "fields_to_export": FIELDS},
        {"external_ids": ["customer-1001"], "fields_to_export": ["first_name", "shoe_size"]},
        {"external_ids": "customer-1001", "fields_to_export": FIELDS},
    ],
    ids=["no identifier", "51 external ids", "unknown field", "ids not an array"],
)
def test_bad_requests_are_refused_with_a_message(
    client: TestClient, body: dict[str, object]
) -> None:
    answer = client.post("/users/export/ids", json=body)
    assert answer.status_code == 400
    assert answer.json()["message"]


@pytest.mark.usefixtures("unlimited")
def test_fields_to_export_is_required_under_the_current_profile_only(
    client: TestClient, sandbox: Sandbox
) -> None:
    answer = client.post("/users/export/ids", json={"external_ids": ["customer-1002"]})
    if sandbox.config.reference:
        assert answer.status_code == 200
        assert answer.json()["users"][0]["custom_attributes"]["tier"] == "bronze"
    else:
        assert answer.status_code == 400
        assert "fields_to_export" in answer.json()["message"]


def test_a_key_without_users_export_ids_is_refused(sandbox: Sandbox) -> None:
    with sandbox_client(sandbox, REST) as admin:
        key = admin.post("/_sandbox/keys", json={"permissions": ["templates.email.list"]}).json()[
            "key"
        ]
    with sandbox_client(sandbox, {"Authorization": f"Bearer {key}"}) as limited:
        answer = limited.post(
            "/users/export/ids",
            json={"external_ids": ["customer-1001"], "fields_to_export": FIELDS},
        )
    assert answer.status_code == 403


def test_the_endpoint_has_its_own_limit_group(client: TestClient, sandbox: Sandbox) -> None:
    expected = 2500 if sandbox.config.reference else 250
    answer = client.post(
        "/users/export/ids", json={"external_ids": ["customer-1001"], "fields_to_export": FIELDS}
    )
    assert answer.headers["x-ratelimit-limit"] == str(expected)
    assert answer.headers["x-ratelimit-remaining"] == str(expected - 1)
    # Other groups' quota is untouched by it.
    templates = client.get("/templates/email/list")
    assert int(templates.headers["x-ratelimit-remaining"]) == 250_000 - 1
