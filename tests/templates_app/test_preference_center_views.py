from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.audit.models import AuditEntry, AuditPersonal
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import (
    change_request_apply,
    change_request_approve,
    change_request_retry,
)
from console.roles import Role
from templates_app import rules, selectors
from tests.fixtures.sandbox import SandboxHandle
from tests.templates_app.conftest import writes


def _main_id() -> str:
    return selectors.preference_center_rows()[0].preference_center_api_id


def test_the_list_and_detail_show_both_pages_in_sandboxed_frames(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    client = client_for(Role.VIEWER)
    assert (
        "main_preferences"
        in client.get(reverse("templates_app:preference_centers")).content.decode()
    )
    body = client.get(
        reverse("templates_app:preference_center_detail", args=[_main_id()])
    ).content.decode()
    assert "Example Outfitters preferences" in body
    assert "Preference center page" in body
    assert "Confirmation page" in body
    assert body.count("<iframe") == 4
    assert body.count(" sandbox ") == 4
    assert "Generate link" not in body  # a Viewer may not ask for a user's link


def test_a_users_link_is_shown_once_and_its_generation_is_audited(
    braze: SandboxHandle, editor: User
) -> None:
    client = Client()
    client.force_login(editor)
    center_id = _main_id()
    response = client.post(
        reverse("templates_app:preference_center_user_url", args=[center_id]),
        {"external_id": "user-42"},
    )
    body = response.content.decode()
    assert "https://preferences.sandbox.invalid/" in body
    assert "no-store" in {d.strip() for d in response["Cache-Control"].split(",")}
    entry = AuditEntry.objects.get(action="preference_center.user_url")
    assert entry.resource_id == center_id
    assert entry.actor_id == editor.pk
    assert "preferences.sandbox.invalid" not in str(entry.data)  # the link itself is not kept
    assert AuditPersonal.objects.get(entry=entry).data == {"external_id": "user-42"}
    again = client.get(reverse("templates_app:preference_center_detail", args=[center_id]))
    assert "https://preferences.sandbox.invalid/" not in again.content.decode()


def test_a_bad_center_is_refused_with_brazes_words_before_anything_is_written(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preference_center_create"),
        {
            "name": "main_preferences",
            "preference_center_page_html": "",
            "confirmation_page_html": "<p>ok</p>",
            "state": "active",
            "options": '{"links-tags": [{"rel": "stylesheet"}]}',
        },
    )
    body = response.content.decode()
    assert rules.PC_NAME_TAKEN in body
    assert "preference_center_page_html is required" in body
    assert rules.PC_LINKS_INVALID in body
    assert writes(braze) == []


def test_options_that_are_not_json_are_refused_and_kept(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preference_center_create"),
        {
            "name": "new_one",
            "preference_center_page_html": "<p>x</p>",
            "confirmation_page_html": "<p>ok</p>",
            "state": "active",
            "options": "{oops",
        },
    )
    body = response.content.decode()
    assert "not valid JSON" in body
    assert "{oops" in body


def test_an_edit_is_applied_after_approval(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    client = Client()
    client.force_login(editor)
    center_id = _main_id()
    client.post(
        reverse("templates_app:preference_center_edit", args=[center_id]),
        {
            "preference_center_title": "Your email choices",
            "preference_center_page_html": "<p>Choose</p>",
            "confirmation_page_html": "<p>Saved</p>",
            "state": "active",
            "options": "{}",
        },
    )
    cr = ChangeRequest.objects.get()
    assert cr.payload["name"] == "main_preferences"  # fixed: the disabled field keeps it
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.APPLIED, cr.error_message
    center = selectors.preference_center_get(preference_center_id=center_id)
    assert center.preference_center_title == "Your email choices"


def test_an_unreadable_answer_to_the_write_fails_the_change_readably_and_a_retry_finds_it(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    client = Client()
    client.force_login(editor)
    center_id = _main_id()
    client.post(
        reverse("templates_app:preference_center_edit", args=[center_id]),
        {
            "preference_center_title": "Your email choices",
            "preference_center_page_html": "<p>Choose</p>",
            "confirmation_page_html": "<p>Saved</p>",
            "state": "active",
            "options": "{}",
        },
    )
    cr = ChangeRequest.objects.get()
    change_request_approve(actor=reviewer, change_request=cr)
    # Braze applies the write, but what comes back is a maintenance page.
    braze.admin.set_injection(malformed_rate=1.0, groups=["preference_center_write"])

    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.FAILED
    assert "cannot read" in cr.error_message
    assert "may or may not have been applied" in cr.error_message
    assert cr.error_id == "BrazeBadResponse"
    write = AuditEntry.objects.get(action="braze.write", change_request_id=cr.pk)
    assert write.data["error_id"] == "BrazeBadResponse"

    braze.admin.set_injection(malformed_rate=0.0)
    change_request_retry(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert cr.braze_response == {"note": "Braze already holds this change; nothing was sent."}
