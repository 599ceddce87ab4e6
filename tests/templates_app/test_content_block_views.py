from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_apply, change_request_approve
from console.roles import Role
from templates_app import rules, selectors
from templates_app.models import ContentVersion, ResourceType, VersionSource
from templates_app.services import version_record
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle
from tests.templates_app.conftest import block_named, writes


def _id_of(name: str) -> str:
    return next(b.content_block_id for b in selectors.content_block_rows() if b.name == name)


def test_the_list_shows_braze_blocks_with_type_tags_and_inclusions(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    response = client_for(Role.VIEWER).get(reverse("templates_app:content_blocks"))
    body = response.content.decode()
    assert response.status_code == 200
    for name in ("email_footer", "legal_notice", "greeting", "seasonal_banner"):
        assert name in body
    assert "Inclusions" in body


def test_the_list_filters_by_search_type_and_tag(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    client = client_for(Role.VIEWER)
    url = reverse("templates_app:content_blocks")
    by_text = client.get(url, {"q": "foot"}).content.decode()
    assert "email_footer" in by_text
    assert "legal_notice" not in by_text
    by_type = client.get(url, {"type": "text"}).content.decode()
    assert "greeting" in by_type
    assert "email_footer" not in by_type
    by_tag = client.get(url, {"tag": "legal"}).content.decode()
    assert "legal_notice" in by_tag
    assert "greeting" not in by_tag


def test_the_list_says_so_when_braze_cannot_be_reached(
    client_for: Callable[[Role | None], Client], settings: object
) -> None:
    from console.braze import close_client

    settings.BRAZE_REST_ENDPOINT = "http://127.0.0.1:9"  # type: ignore[attr-defined]
    settings.BRAZE_API_KEY = "some-key"  # type: ignore[attr-defined]
    close_client()
    try:
        response = client_for(Role.VIEWER).get(reverse("templates_app:content_blocks"))
    finally:
        close_client()
    assert response.status_code == 200
    assert "Braze cannot be reached" in response.content.decode()


def test_the_detail_shows_the_liquid_tag_inclusions_references_and_a_sandboxed_preview(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    footer = block_named(braze, "legal_notice")
    version_record(
        resource_type=ResourceType.CONTENT_BLOCK,
        braze_id="other",
        snapshot={"name": "email_footer", "content": "{{content_blocks.${legal_notice}}}"},
        source=VersionSource.SYNCED,
    )
    response = client_for(Role.VIEWER).get(
        reverse("templates_app:content_block_detail", args=[footer["content_block_id"]])
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="{{content_blocks.${legal_notice}}}"' in body
    assert "<title>legal_notice · " in body
    assert "<h1>legal_notice</h1>" in body
    assert "email_footer" in body  # referenced by a block the console knows
    where_used = reverse("templates_app:search") + "?uses=legal_notice&amp;history=1"
    assert f'<a href="{where_used}">Where used' in body
    assert "<iframe" in body
    assert " sandbox " in body
    assert footer["content"] not in body.split("<pre>")[0]  # Braze HTML is never inlined
    assert f"<pre>{escape(footer['content'])}</pre>" in body  # the source, escaped


def test_an_unknown_block_is_a_404(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    response = client_for(Role.VIEWER).get(
        reverse("templates_app:content_block_detail", args=["no-such-block"])
    )
    assert response.status_code == 404


def test_a_bad_block_is_refused_with_brazes_words_before_anything_is_written(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:content_block_create"),
        {"name": "bad name", "content": "{% if x %}", "state": "active", "tags": "nope"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert rules.BLOCK_NAME_CHARACTERS in body
    assert rules.MALFORMED_LIQUID in body
    assert rules.TAGS_NOT_FOUND in body
    assert "{% if x %}" in body  # what was typed is kept
    assert ChangeRequest.objects.count() == 0
    assert writes(braze) == []


def test_an_editor_proposes_a_block_edit_a_reviewer_approves_and_braze_holds_it(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client], reviewer: User
) -> None:
    editor = user_with_role(Role.EDITOR)
    client = Client()
    client.force_login(editor)
    block_id = _id_of("legal_notice")
    new = '<p style="font-size:11px">© 2027 Example Outfitters Ltd.</p>'
    response = client.post(
        reverse("templates_app:content_block_edit", args=[block_id]),
        {
            "name": "legal_notice",
            "description": "Legal small print",
            "content": new,
            "state": "active",
            "tags": "legal",
        },
    )
    cr = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == cr.get_absolute_url()
    assert cr.state == ChangeState.PENDING
    assert cr.identifier == block_id
    assert cr.base_snapshot is not None
    assert "2026" in cr.base_snapshot["content"]
    assert writes(braze) == []

    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert block_named(braze, "legal_notice")["content"] == new
    version = ContentVersion.objects.get(braze_id=block_id)
    assert version.source == VersionSource.APPLIED
    assert version.change_request_id == cr.pk
    assert version.snapshot["content"] == new
    assert version.state == "active"


def test_a_new_block_is_created_in_braze_when_approved(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    client = Client()
    client.force_login(editor)
    client.post(
        reverse("templates_app:content_block_create"),
        {
            "name": "promo_footer",
            "description": "Promo",
            "state": "draft",
            "tags": "promotional",
            "content": "<p>{{content_blocks.${legal_notice}}}</p>",
        },
    )
    cr = ChangeRequest.objects.get()
    assert cr.action == "create"
    assert cr.identifier == "name:promo_footer"
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert block_named(braze, "promo_footer")["tags"] == ["promotional"]
    assert ContentVersion.objects.get(name="promo_footer").state == "draft"


def test_a_dashboard_edit_after_the_proposal_is_a_conflict_not_overwritten(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    client = Client()
    client.force_login(editor)
    block_id = _id_of("greeting")
    client.post(
        reverse("templates_app:content_block_edit", args=[block_id]),
        {
            "name": "greeting",
            "content": "Hello!",
            "state": "active",
            "tags": "brand",
            "description": "Personal greeting",
        },
    )
    braze.admin.edit_content_block(block_id, content="Howdy {{${first_name}}}")
    cr = ChangeRequest.objects.get()
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.CONFLICT
    assert block_named(braze, "greeting")["content"] == "Howdy {{${first_name}}}"


def test_the_edit_form_keeps_an_active_blocks_name_and_state(
    braze: SandboxHandle, editor: User
) -> None:
    client = Client()
    client.force_login(editor)
    block_id = _id_of("greeting")
    response = client.post(
        reverse("templates_app:content_block_edit", args=[block_id]),
        {"name": "salutation", "content": "Hi", "state": "draft", "description": "x"},
    )
    body = response.content.decode()
    assert rules.BLOCK_RENAME_ACTIVE in body
    # Its state is unknown to the console, so the state field is fixed at active: the
    # "draft" posted is ignored rather than refused.
    assert response.context["form"].cleaned_data["state"] == "active"
    assert not ChangeRequest.objects.exists()


def test_a_known_active_block_cannot_go_back_to_draft() -> None:
    errors = rules.content_block_errors(
        {"name": "greeting", "content": "Hi", "state": "draft"},
        workspace=rules.Workspace(block_names=frozenset({"greeting"})),
        current_name="greeting",
        current_state="active",
    )
    assert errors["state"] == [rules.BLOCK_ACTIVE_TO_DRAFT]


def test_every_edit_screen_has_a_code_editor_with_a_live_preview(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    client = client_for(Role.EDITOR)
    block_id = _id_of("greeting")
    template_id = selectors.email_template_rows()[0].email_template_id
    center_id = selectors.preference_center_rows()[0].preference_center_api_id
    for url in (
        reverse("templates_app:content_block_create"),
        reverse("templates_app:content_block_edit", args=[block_id]),
        reverse("templates_app:email_template_create"),
        reverse("templates_app:email_template_edit", args=[template_id]),
        reverse("templates_app:preference_center_create"),
        reverse("templates_app:preference_center_edit", args=[center_id]),
    ):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "data-code-editor" in body, url
        assert f'hx-post="{reverse("templates_app:preview_live")}"' in body, url
        assert "templates_app/code-editor.js" in body, url


def test_the_resource_type_points_reviewers_at_the_rendered_before_and_after() -> None:
    from console.changes.resource_types import resource_type_get

    url = resource_type_get("content_block").review_url
    assert url == "templates_app:change_preview"


@pytest.mark.parametrize("kind", ["html", "shape"])
def test_an_unreadable_answer_from_braze_is_a_clear_message_not_a_500(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client], kind: str
) -> None:
    block_id = _id_of("legal_notice")
    braze.admin.set_injection(malformed_rate=1.0, malformed=kind)
    response = client_for(Role.VIEWER).get(
        reverse("templates_app:content_block_detail", args=[block_id])
    )
    assert response.status_code == 502
    body = response.content.decode()
    assert "Braze sent an answer the console cannot read" in body
    assert "HTTP 200" in body
