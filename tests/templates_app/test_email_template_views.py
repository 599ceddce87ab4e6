from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_apply, change_request_approve
from console.roles import Role
from templates_app import rules, selectors
from templates_app.models import ContentVersion
from tests.fixtures.sandbox import SandboxHandle
from tests.templates_app.conftest import writes


def _id_of(name: str) -> str:
    return next(
        t.email_template_id for t in selectors.email_template_rows() if t.template_name == name
    )


def test_the_list_shows_templates_but_never_drag_and_drop_ones(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    body = client_for(Role.VIEWER).get(reverse("templates_app:email_templates")).content.decode()
    assert "Weekly Newsletter" in body
    assert "DnD Holiday Card" not in body
    assert "drag-and-drop editor are not returned" in body


def test_the_list_filters_by_name_tag_and_modified_date(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    client, url = client_for(Role.VIEWER), reverse("templates_app:email_templates")
    by_tag = client.get(url, {"tag": "transactional"}).content.decode()
    assert "Password Reset" in by_tag
    assert "Weekly Newsletter" not in by_tag
    by_name = client.get(url, {"q": "spring"}).content.decode()
    assert "Spring Sale" in by_name
    assert "Welcome" not in by_name
    future = client.get(url, {"modified_after": "2099-01-01"}).content.decode()
    assert "Spring Sale" not in future
    assert "No email templates match" in future


def test_the_empty_state_explains_drag_and_drop_templates(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    body = (
        client_for(Role.VIEWER)
        .get(reverse("templates_app:email_templates"), {"q": "zzz-nothing"})
        .content.decode()
    )
    assert "drag-and-drop editor are not returned by Braze's API" in body


def test_the_detail_shows_fields_a_sandboxed_preview_at_two_widths_and_plaintext(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    response = client_for(Role.VIEWER).get(
        reverse("templates_app:email_template_detail", args=[_id_of("Spring Sale")])
    )
    body = response.content.decode()
    assert "Spring sale: up to 30% off" in body
    assert "Ends Sunday" in body
    assert "promotional, seasonal" in body
    assert "Inline CSS" in body
    assert body.count("<iframe") == 2
    assert 'class="preview-frame mobile" sandbox src=' in body
    assert "Visit https://www.example.com/" in body


def test_a_template_with_an_unknown_block_is_refused_before_braze(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:email_template_create"),
        {
            "template_name": "",
            "subject": "Hi",
            "body": "{{content_blocks.${ghost}}}",
            "should_inline_css": "true",
            "tags": "newsletter",
        },
    )
    body = response.content.decode()
    assert rules.TEMPLATE_NAME_REQUIRED in body
    assert rules.UNKNOWN_BLOCKS_IN_EMAIL in body
    assert not ChangeRequest.objects.exists()
    assert writes(braze) == []


def test_a_template_edit_is_applied_after_approval_and_kept_as_a_version(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    client = Client()
    client.force_login(editor)
    template_id = _id_of("Welcome")
    response = client.post(
        reverse("templates_app:email_template_edit", args=[template_id]),
        {
            "template_name": "Welcome",
            "subject": "Welcome aboard",
            "preheader": "Hello",
            "body": "<h1>Welcome aboard</h1>{{content_blocks.${email_footer}}}",
            "plaintext_body": "Welcome aboard",
            "should_inline_css": "false",
            "tags": "onboarding",
        },
    )
    assert response.status_code == 302
    cr = ChangeRequest.objects.get()
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.APPLIED, cr.error_message
    template = selectors.email_template_get(email_template_id=template_id)
    assert template.subject == "Welcome aboard"
    assert template.should_inline_css is False
    assert ContentVersion.objects.get(braze_id=template_id).change_request_id == cr.pk


def test_a_new_template_is_created_once_approved(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    client = Client()
    client.force_login(editor)
    client.post(
        reverse("templates_app:email_template_create"),
        {
            "template_name": "Birthday",
            "subject": "Happy birthday",
            "body": "<p>Cake</p>",
            "tags": "brand",
        },
    )
    cr = ChangeRequest.objects.get()
    assert cr.action == "create"
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.APPLIED, cr.error_message
    selectors.lists_forget()
    assert "Birthday" in [t.template_name for t in selectors.email_template_rows()]


def test_the_change_preview_shows_a_line_diff_and_both_renderings(
    braze: SandboxHandle, editor: User, client_for: Callable[[Role | None], Client]
) -> None:
    client = Client()
    client.force_login(editor)
    template_id = _id_of("Survey")
    template = selectors.email_template_get(email_template_id=template_id)
    client.post(
        reverse("templates_app:email_template_edit", args=[template_id]),
        {
            "template_name": "Survey",
            "subject": template.subject,
            "tags": "newsletter",
            "body": (template.body or "").replace("<h1>", "<h1>NEW "),
            "plaintext_body": template.plaintext_body,
        },
    )
    cr = ChangeRequest.objects.get()
    body = (
        client_for(Role.REVIEWER)
        .get(reverse("templates_app:change_preview", args=[cr.pk]))
        .content.decode()
    )
    assert 'class="diff"' in body
    assert "NEW Tell us how we did" in body
    assert "HTML body, before" in body
    assert "HTML body, after" in body
    assert body.count("<iframe") == 2
