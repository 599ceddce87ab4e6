"""Email templates and Content Blocks (templates.md)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox

pytestmark = pytest.mark.usefixtures("unlimited")

BLOCK_EXAMPLE = {
    "name": "content_block",
    "description": "This is my content block",
    "content": "HTML content within block",
    "state": "draft",
    "tags": ["marketing"],
}
TEMPLATE_EXAMPLE = {
    "template_name": "email_template_name",
    "subject": "Welcome to my email template!",
    "body": "This is the text within my email body and https://www.braze.com/ here is a link.",
    "plaintext_body": "This is the text within my email body and a link to https://www.braze.com/.",
    "preheader": "My preheader is pretty cool.",
    "tags": ["Tag1", "Tag2"],
}


@pytest.fixture
def tagged(client: TestClient) -> TestClient:
    client.post("/_sandbox/tags", json={"tags": ["marketing", "Tag1", "Tag2"]})
    return client


def message(response: Any) -> str:
    assert response.status_code == 400, response.text
    return str(response.json()["message"])


def test_the_documented_content_block_examples_are_accepted(tagged: TestClient) -> None:
    created = tagged.post("/content_blocks/create", json=BLOCK_EXAMPLE)
    assert created.status_code == 201
    body = created.json()
    assert body["liquid_tag"] == "{{content_blocks.${content_block}}}"
    assert body["message"] == "success"
    update = {
        **BLOCK_EXAMPLE,
        "content_block_id": body["content_block_id"],
        "content": "HTML or text content within block",
    }
    assert tagged.post("/content_blocks/update", json=update).status_code == 200
    info = tagged.get(
        "/content_blocks/info", params={"content_block_id": body["content_block_id"]}
    ).json()
    assert info["content"] == "HTML or text content within block"
    assert info["tags"] == ["marketing"]
    assert info["inclusion_count"] == 0


def test_content_block_list_filters_limits_and_offsets(client: TestClient) -> None:
    listed = client.get("/content_blocks/list").json()
    assert listed["count"] == 6
    assert set(listed["content_blocks"][0]) == {
        "content_block_id",
        "name",
        "content_type",
        "liquid_tag",
        "inclusion_count",
        "created_at",
        "last_edited",
        "tags",
    }
    params: dict[str, str | int] = {
        "modified_after": "2020-01-01T01:01:01.000000",
        "limit": 2,
        "offset": 1,
    }
    assert client.get("/content_blocks/list", params=params).json()["count"] == 2
    future = client.get("/content_blocks/list", params={"modified_after": "2099-01-01T00:00:00"})
    assert future.json()["count"] == 0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"offset": 0}, "Offset must be greater than 0"),
        ({"offset": "x"}, "Offset is invalid"),
        ({"limit": 0}, "Content Block number limit must be greater than 0"),
        ({"limit": 1001}, "Content Block number limit exceeds maximum of 1000"),
        ({"limit": "x"}, "Content Block number limit is invalid"),
        ({"modified_after": "yesterday"}, "Modified after time is invalid"),
        ({"modified_before": "tomorrow"}, "Modified before time is invalid"),
        (
            {"modified_after": "2021-01-01", "modified_before": "2020-01-01"},
            "Modified after time must be earlier than or the same as modified before time.",
        ),
    ],
)
def test_content_block_list_refuses_bad_parameters(
    client: TestClient, params: dict[str, Any], expected: str
) -> None:
    assert message(client.get("/content_blocks/list", params=params)) == expected


def _block_id(client: TestClient, name: str) -> str:
    blocks = client.get("/content_blocks/list").json()["content_blocks"]
    return next(b["content_block_id"] for b in blocks if b["name"] == name)


def test_info_returns_inclusion_data_on_request(client: TestClient) -> None:
    block_id = _block_id(client, "email_footer")
    client.patch(
        f"/_sandbox/content_blocks/{block_id}",
        json={"inclusion_data": [{"message_variation_api_id": "mv-1"}]},
    )
    params = {"content_block_id": block_id, "include_inclusion_data": "true"}
    info = client.get("/content_blocks/info", params=params)
    assert info.json()["inclusion_count"] == 1
    assert info.json()["inclusion_data"] == [{"message_variation_api_id": "mv-1"}]
    assert (
        "inclusion_data"
        not in client.get("/content_blocks/info", params={"content_block_id": block_id}).json()
    )


def test_info_errors_match_the_documentation(client: TestClient, sandbox: Sandbox) -> None:
    # Current: "See Content Block information", Troubleshooting; reference: templates.md.
    workspace, dash = ("App Group", " - ") if sandbox.config.reference else ("workspace", "\u2014")
    assert message(client.get("/content_blocks/info")) == "Content Block ID cannot be blank"
    assert message(client.get("/content_blocks/info", params={"content_block_id": "nope"})) == (
        f"Content Block ID is invalid for this {workspace}"
    )
    block_id = _block_id(client, "greeting")
    params = {"content_block_id": block_id, "include_inclusion_data": "yes"}
    bad = client.get("/content_blocks/info", params=params)
    assert message(bad) == "Include Inclusion Data error"
    client.patch(f"/_sandbox/content_blocks/{block_id}", json={"deleted": True})
    deleted = client.get("/content_blocks/info", params={"content_block_id": block_id})
    assert message(deleted) == f"Content Block has been deleted{dash}content not available"


def test_an_unknown_email_template_uses_the_profiles_name_for_a_workspace(
    client: TestClient, sandbox: Sandbox
) -> None:
    workspace = "App Group" if sandbox.config.reference else "workspace"
    response = client.get("/templates/email/info", params={"email_template_id": "nope"})
    assert message(response) == f"Email template ID is invalid for this {workspace}"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": ""}, "Content Block name cannot be blank"),
        ({"name": "n" * 100}, "Content Block name must be shorter than 100 characters"),
        ({"name": "bad name!"}, "Content Block name can only contain alphanumeric characters"),
        ({"description": ""}, "Content Block description cannot be blank"),
        ({"description": 5}, "Content Block description must be a string"),
        (
            {"description": "d" * 250},
            "Content Block description must be shorter than 250 characters",
        ),
        ({"content": ""}, "Content cannot be blank"),
        ({"content": 5}, "Content must be a string"),
        ({"content": "x" * (50 * 1024 + 1)}, "Content must be smaller than 50kb"),
        ({"content": "{% if x %}never closed"}, "Content contains malformed liquid"),
        (
            {"content": "{{content_blocks.${content_block}}}"},
            "Content Block cannot be referenced within itself",
        ),
        ({"state": "live"}, "Content Block state must be either active or draft"),
        ({"tags": "marketing"}, "Tags must be an array"),
        ({"tags": [1]}, "All tags must be strings"),
        ({"tags": ["unknown-tag"]}, "Some tags could not be found"),
        ({"name": "greeting"}, "Content Block with this name already exists"),
    ],
)
def test_content_block_create_refuses_documented_error_cases(
    tagged: TestClient, changes: dict[str, Any], expected: str
) -> None:
    assert message(tagged.post("/content_blocks/create", json={**BLOCK_EXAMPLE, **changes})) == (
        expected
    )


def test_braze_liquid_extensions_are_not_malformed(tagged: TestClient) -> None:
    content = (
        "{{content_blocks.${greeting}}} {% connected_content https://api.example.com :save r %}"
        "{% catalog_items products sku-000001 :rerender %}{{ items[0].name }}"
        "{{${first_name} | default: 'friend'}} {% abort_message('no') %}"
    )
    response = tagged.post("/content_blocks/create", json={**BLOCK_EXAMPLE, "content": content})
    assert response.status_code == 201


BRAZE_LIQUID = [
    "{% translation id_0 %}Hello {{${first_name}}}!{% endtranslation %}",
    "{% message_extras :key test :value 123 %}",
    "{% connected_content https://example.com/api?user=${user_id} :save result %}",
    "{% catalog_items Games 1234 %}{{ items[0].title }}",
    "{% catalog_selection_items Games cheap_games %}{% for i in items %}{{ i.title }}{% endfor %}",
    "{% abort_message('no recommendations') %}",
    "{% promotion('spring25') %}",
    "<input {% form_field_name :email_global_state %}>",
    '<a href="{% landing_page_url customer-survey %}">Survey</a>',
    "{% if {{custom_attribute.${balance}}} > 0 %}Balance{% endif %}",
]
MALFORMED_LIQUID = [
    "{% if x %}",
    "Hello {{ first_name",
    "{% translation id_0 %}Hello",
    "Hello{% endtranslation %}",
    "{% raw %}Hello",
]


@pytest.mark.parametrize("content", BRAZE_LIQUID)
def test_each_of_brazes_own_liquid_tags_is_accepted(tagged: TestClient, content: str) -> None:
    response = tagged.post("/content_blocks/create", json={**BLOCK_EXAMPLE, "content": content})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content", MALFORMED_LIQUID)
def test_malformed_liquid_is_refused(tagged: TestClient, content: str) -> None:
    response = tagged.post("/content_blocks/create", json={**BLOCK_EXAMPLE, "content": content})
    assert message(response) == "Content contains malformed liquid"


@pytest.mark.parametrize("unit", ["<!--", "${", "{", "{% raw %}"])
def test_the_liquid_check_takes_linear_time(unit: str) -> None:
    from braze_sandbox.liquid_check import is_malformed

    def seconds(text: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            is_malformed(text)
            best = min(best, time.perf_counter() - started)
        return best

    small = seconds(unit * (4_000 // len(unit)))
    large = seconds(unit * (16_000 // len(unit)))
    # Four times the text: linear work grows 4 times, quadratic 16 times.
    assert large <= 6 * small + 0.05, (small, large)


def test_an_update_may_send_only_the_content_today_not_in_the_reference(
    tagged: TestClient, sandbox: Sandbox
) -> None:
    block_id = _block_id(tagged, "greeting")
    before = tagged.get("/content_blocks/info", params={"content_block_id": block_id}).json()
    response = tagged.post(
        "/content_blocks/update", json={"content_block_id": block_id, "content": "Hi there"}
    )
    if sandbox.config.reference:
        assert message(response) == "Content Block name cannot be blank"
        return
    assert response.status_code == 200, response.text
    after = tagged.get("/content_blocks/info", params={"content_block_id": block_id}).json()
    assert after["content"] == "Hi there"
    assert (after["name"], after["description"], after["tags"]) == (
        before["name"],
        before["description"],
        before["tags"],
    )


def test_an_update_without_a_state_publishes_a_draft(tagged: TestClient) -> None:
    block_id = _block_id(tagged, "seasonal_banner")  # a draft in the seed
    update = {"content_block_id": block_id, "name": "seasonal_banner", "content": "Now live"}
    assert tagged.post("/content_blocks/update", json=update).status_code == 200
    # Active now: renaming is refused as for any active block.
    renamed = tagged.post("/content_blocks/update", json={**update, "name": "other_name"})
    assert message(renamed) == "Content Block name cannot be updated for active Content Blocks"


def test_a_block_referring_to_a_missing_block_gets_braze_s_500(tagged: TestClient) -> None:
    content = "{{content_blocks.${not_there}}}"
    response = tagged.post("/content_blocks/create", json={**BLOCK_EXAMPLE, "content": content})
    assert response.status_code == 500


def test_an_active_block_cannot_return_to_draft_or_be_renamed(tagged: TestClient) -> None:
    block_id = _block_id(tagged, "greeting")
    base = {"content_block_id": block_id, "name": "greeting", "content": "Hello"}
    assert message(tagged.post("/content_blocks/update", json={**base, "state": "draft"})) == (
        "Active Content Block can not be updated to Draft. Create a new Content Block."
    )
    assert message(tagged.post("/content_blocks/update", json={**base, "name": "hello"})) == (
        "Content Block name cannot be updated for active Content Blocks"
    )


def test_a_draft_block_can_be_renamed_and_launched(tagged: TestClient) -> None:
    block_id = _block_id(tagged, "seasonal_banner")
    update = {
        "content_block_id": block_id,
        "name": "spring_banner",
        "content": "Spring!",
        "state": "active",
    }
    assert tagged.post("/content_blocks/update", json=update).status_code == 200
    info = tagged.get("/content_blocks/info", params={"content_block_id": block_id}).json()
    assert info["name"] == "spring_banner"


def test_the_documented_email_template_examples_are_accepted(tagged: TestClient) -> None:
    created = tagged.post("/templates/email/create", json=TEMPLATE_EXAMPLE)
    assert created.status_code == 201
    template_id = created.json()["email_template_id"]
    update = {
        "email_template_id": template_id,
        "template_name": "Weekly Newsletter",
        "subject": "This Week's Styles",
        "body": "Check out this week's digital lookbook. Take a look at https://www.braze.com/",
        "plaintext_body": "This is the updated text.",
        "preheader": "Best looks this Summer",
        "tags": ["Tag1", "Tag2"],
    }
    assert tagged.post("/templates/email/update", json=update).json() == {"message": "success"}
    info = tagged.get("/templates/email/info", params={"email_template_id": template_id}).json()
    assert info["template_name"] == "Weekly Newsletter"
    assert info["subject"] == "This Week's Styles"
    assert info["tags"] == ["Tag1", "Tag2"]
    for key in (
        "description",
        "preheader",
        "plaintext_body",
        "should_inline_css",
        "created_at",
        "updated_at",
        "body",
    ):
        assert key in info


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"template_name": ""}, "Template name is required"),
        ({"tags": "Tag1"}, "Tags must be an array"),
        ({"tags": [1]}, "All tags must be strings"),
        ({"tags": ["nope"]}, "Some tags could not be found"),
        ({"body": "{{content_blocks.${missing}}}"}, "Email must have valid Content Block names"),
        (
            {"should_inline_css": "true"},
            "Invalid value for `should_inline_css`. One of `true` or `false` was expected",
        ),
    ],
)
def test_email_template_create_refuses_documented_error_cases(
    tagged: TestClient, changes: dict[str, Any], expected: str
) -> None:
    response = tagged.post("/templates/email/create", json={**TEMPLATE_EXAMPLE, **changes})
    assert message(response) == expected


def test_template_list_hides_drag_and_drop_templates_and_pages(client: TestClient) -> None:
    listed = client.get("/templates/email/list").json()
    assert listed["count"] == 12
    assert "DnD Holiday Card" not in [t["template_name"] for t in listed["templates"]]
    assert set(listed["templates"][0]) == {
        "email_template_id",
        "template_name",
        "created_at",
        "updated_at",
        "tags",
    }
    page = client.get("/templates/email/list", params={"limit": 5, "offset": 10}).json()
    assert page["count"] == 2
    cutoff = {"modified_before": "2026-01-07T04:00:00+00:00"}
    assert client.get("/templates/email/list", params=cutoff).json()["count"] == 2


def test_a_dashboard_edit_shows_up_in_the_api(client: TestClient) -> None:
    template = client.get("/templates/email/list").json()["templates"][0]
    client.patch(
        f"/_sandbox/email_templates/{template['email_template_id']}",
        json={"subject": "Edited in the dashboard"},
    )
    params = {"email_template_id": template["email_template_id"]}
    info = client.get("/templates/email/info", params=params).json()
    assert info["subject"] == "Edited in the dashboard"
    assert info["updated_at"] > template["updated_at"]
