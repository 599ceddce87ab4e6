"""What an approved edit sends to Braze: the fields that changed, the fields Braze's docs
require on that endpoint, and nothing else (issue 17, points 3, 9 and 10)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_apply, change_request_approve
from templates_app import selectors
from tests.fixtures.sandbox import SandboxHandle
from tests.templates_app.conftest import block_named, bodies

FAVICON = {"rel": "icon", "type": "image/png", "href": "https://cdn.example.com/favicon.png"}
STATE_NOTICE = "Braze will publish this block (make it active) when this change is applied"


def _apply(cr: ChangeRequest, reviewer: User) -> ChangeRequest:
    change_request_approve(actor=reviewer, change_request=cr)
    return change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)


def _block_id(name: str) -> str:
    return next(b.content_block_id for b in selectors.content_block_rows() if b.name == name)


def _propose_block_content(editor: User, block_id: str, content: str) -> ChangeRequest:
    block = selectors.content_block_get(content_block_id=block_id)
    client = Client()
    client.force_login(editor)
    client.post(
        reverse("templates_app:content_block_edit", args=[block_id]),
        {
            "name": block.name,
            "description": block.description,
            "content": content,
            "state": "active",
            "tags": ", ".join(block.tags),
        },
    )
    return ChangeRequest.objects.filter(identifier=block_id).latest("pk")


def test_a_content_block_edit_sends_only_the_changed_content_and_the_state(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    block_id = _block_id("greeting")
    cr = _apply(_propose_block_content(editor, block_id, "Hello again {{${first_name}}}"), reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    updates = bodies(sent, "/content_blocks/update")
    # Braze's update makes a block active when no state is sent, so the state always goes.
    assert updates[0] == {
        "content_block_id": block_id,
        "content": "Hello again {{${first_name}}}",
        "state": "active",
    }
    if braze.reference:
        # The older reference requires name and content: refused, then sent with both.
        assert len(updates) == 2
        assert set(updates[1]) == {"content_block_id", "content", "state", "name"}
    else:
        assert len(updates) == 1
    held = block_named(braze, "greeting")
    assert held["content"] == "Hello again {{${first_name}}}"
    assert held["description"] == "Personal greeting"


def test_publishing_a_draft_without_other_changes_reaches_braze(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    client = Client()
    client.force_login(editor)
    form = {"name": "spring_banner", "description": "Spring", "content": "Spring!", "tags": ""}
    client.post(reverse("templates_app:content_block_create"), {**form, "state": "draft"})
    assert _apply(ChangeRequest.objects.get(), reviewer).state == ChangeState.APPLIED
    block_id = _block_id("spring_banner")
    client.post(
        reverse("templates_app:content_block_edit", args=[block_id]), {**form, "state": "active"}
    )
    cr = _apply(ChangeRequest.objects.filter(identifier=block_id).get(), reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert bodies(sent, "/content_blocks/update")[0] == {
        "content_block_id": block_id,
        "state": "active",
    }
    with braze.client() as http:  # Braze refuses to rename an active block, and only those
        rename = {"content_block_id": block_id, "name": "summer_banner", "content": "Spring!"}
        refused = http.post("/content_blocks/update", json=rename).json()["message"]
    assert refused == "Content Block name cannot be updated for active Content Blocks"
    assert selectors.content_block_state(content_block_id=block_id) == "active"


def test_an_email_template_edit_sends_only_the_changed_subject(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    template = selectors.email_template_rows()[0]
    base = selectors.email_template_snapshot(
        selectors.email_template_get(email_template_id=template.email_template_id)
    )
    client = Client()
    client.force_login(editor)
    form = {
        **base,
        "subject": "A brand new subject",
        "tags": ", ".join(base["tags"]),
        "should_inline_css": {True: "true", False: "false"}.get(base["should_inline_css"], ""),
    }
    client.post(
        reverse("templates_app:email_template_edit", args=[template.email_template_id]), form
    )
    cr = _apply(ChangeRequest.objects.get(), reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert bodies(sent, "/templates/email/update") == [
        {"email_template_id": template.email_template_id, "subject": "A brand new subject"}
    ]


def _center_form(center_id: str, **changes: Any) -> dict[str, Any]:
    center = selectors.preference_center_get(preference_center_id=center_id)
    return {
        "preference_center_title": center.preference_center_title,
        "preference_center_page_html": center.preference_center_page_html,
        "confirmation_page_html": center.confirmation_page_html,
        "state": center.state,
        "options": json.dumps(center.preference_center_options or {}),
        **changes,
    }


def _stored_options(braze: SandboxHandle, center_id: str) -> dict[str, Any]:
    # What the sandbox holds, whatever its view shows (the admin API answers the whole row).
    row = braze.admin.edit_preference_center(center_id, state="active")
    options: dict[str, Any] = json.loads(row["options"])
    return options


def test_a_preference_center_edit_keeps_options_the_view_does_not_show(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    center_id = selectors.preference_center_rows()[0].preference_center_api_id
    # Set in Braze's dashboard: a favicon, which today's view endpoint does not return.
    stored = {"meta-viewport-content": "width=device-width", "links-tags": [FAVICON]}
    braze.admin.edit_preference_center(center_id, options=stored)
    shown = selectors.preference_center_get(preference_center_id=center_id)
    assert ("links-tags" in shown.preference_center_options) is braze.reference

    client = Client()
    client.force_login(editor)
    client.post(
        reverse("templates_app:preference_center_edit", args=[center_id]),
        _center_form(center_id, preference_center_page_html="<p>Choose again</p>"),
    )
    cr = _apply(ChangeRequest.objects.get(), reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    # Both pages are required on every update; the options did not change, so they stay out.
    assert [set(b) for b in bodies(sent, "/preference_center/v1/")] == [
        {"preference_center_page_html", "confirmation_page_html"}
    ]
    assert _stored_options(braze, center_id) == stored


def test_changed_options_send_what_was_read_and_changed_and_nothing_else(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    center_id = selectors.preference_center_rows()[0].preference_center_api_id
    braze.admin.edit_preference_center(
        center_id, options={"meta-viewport-content": "width=device-width", "links-tags": [FAVICON]}
    )
    read = selectors.preference_center_get(preference_center_id=center_id)
    edited = {**read.preference_center_options, "meta-viewport-content": "initial-scale=2"}
    client = Client()
    client.force_login(editor)
    client.post(
        reverse("templates_app:preference_center_edit", args=[center_id]),
        _center_form(center_id, options=json.dumps(edited)),
    )
    cr = _apply(ChangeRequest.objects.get(), reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    (body,) = bodies(sent, "/preference_center/v1/")
    assert body["options"] == edited  # exactly what was read, with the person's change
    assert "state" not in body
    assert "preference_center_title" not in body
    expected_links = [FAVICON] if braze.reference else None
    assert body["options"].get("links-tags") == expected_links


def test_the_edit_form_says_plainly_that_a_block_of_unknown_state_will_be_published(
    braze: SandboxHandle, editor: User
) -> None:
    client = Client()
    client.force_login(editor)
    block_id = _block_id("greeting")  # made in the dashboard: the console never saw its state
    body = client.get(reverse("templates_app:content_block_edit", args=[block_id])).content.decode()
    assert STATE_NOTICE in body
    assert "cannot keep it as a draft" in body
    state_select = re.search(r'<select[^>]*name="state"[^>]*>', body)
    assert state_select is not None
    assert "disabled" in state_select.group()


def test_the_review_pages_say_plainly_that_the_change_publishes_the_block(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    block_id = _block_id("greeting")
    cr = _propose_block_content(editor, block_id, "Hi there")
    client = Client()
    client.force_login(reviewer)
    detail = client.get(reverse("changes:detail", args=[cr.pk])).content.decode()
    preview = client.get(reverse("templates_app:change_preview", args=[cr.pk])).content.decode()
    assert STATE_NOTICE in detail
    assert STATE_NOTICE in preview


def test_no_warning_once_the_console_knows_the_block_is_active(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    block_id = _block_id("greeting")
    assert _apply(_propose_block_content(editor, block_id, "Hi"), reviewer).state == "applied"
    cr = _propose_block_content(editor, block_id, "Hi again")
    client = Client()
    client.force_login(editor)
    assert STATE_NOTICE not in client.get(cr.get_absolute_url()).content.decode()
    editing = client.get(reverse("templates_app:content_block_edit", args=[block_id]))
    assert STATE_NOTICE not in editing.content.decode()
