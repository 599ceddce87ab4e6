from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.audit.models import AuditEntry
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_apply, change_request_approve
from console.roles import Role
from templates_app import selectors
from templates_app.models import ContentVersion, ResourceType, VersionSource
from templates_app.services import content_sync
from tests.fixtures.sandbox import SandboxHandle
from tests.templates_app.conftest import block_named


def _block_id(name: str) -> str:
    return next(b.content_block_id for b in selectors.content_block_rows() if b.name == name)


def test_the_first_sync_records_every_item_without_calling_it_a_change(
    db: None, braze: SandboxHandle
) -> None:
    report = content_sync()
    assert report.errors == []
    # 12 HTML templates (the drag-and-drop one is invisible), 6 blocks, 1 preference center.
    assert ContentVersion.objects.count() == report.new_versions == 19
    assert report.external_changes == 0
    assert not AuditEntry.objects.filter(action="content.external_change").exists()


def test_a_second_sync_with_nothing_changed_stores_nothing(db: None, braze: SandboxHandle) -> None:
    content_sync()
    report = content_sync()
    assert report.new_versions == 0
    assert ContentVersion.objects.count() == 19


def test_an_edit_made_in_braze_is_a_new_version_and_an_audited_external_change(
    db: None, braze: SandboxHandle
) -> None:
    content_sync()
    block_id = _block_id("greeting")
    braze.admin.edit_content_block(block_id, content="Hello {{${first_name}}},")
    report = content_sync()
    assert report.external_changes == 1
    versions = list(
        ContentVersion.objects.filter(braze_id=block_id)
        .order_by("version")
        .values_list("version", "source")
    )
    assert versions == [(1, VersionSource.SYNCED), (2, VersionSource.SYNCED)]
    entry = AuditEntry.objects.get(action="content.external_change")
    assert entry.resource_type == ResourceType.CONTENT_BLOCK
    assert entry.resource_id == block_id
    assert entry.data["changes"][0]["field"] == "content"
    assert entry.data["changes"][0]["after"] == "Hello {{${first_name}}},"


def test_a_change_applied_by_the_console_is_not_reported_as_external(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    content_sync()
    block_id = _block_id("legal_notice")
    client = Client()
    client.force_login(editor)
    client.post(
        reverse("templates_app:content_block_edit", args=[block_id]),
        {
            "name": "legal_notice",
            "content": "<p>© 2027</p>",
            "state": "active",
            "tags": "legal",
            "description": "Legal small print",
        },
    )
    cr = ChangeRequest.objects.get()
    change_request_approve(actor=reviewer, change_request=cr)
    change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    report = content_sync()
    assert report.external_changes == 0
    sources = list(
        ContentVersion.objects.filter(braze_id=block_id)
        .order_by("version")
        .values_list("source", flat=True)
    )
    assert sources == [VersionSource.SYNCED, VersionSource.APPLIED]


def test_history_lists_versions_and_the_diff_shows_lines_and_renderings(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    content_sync()
    block_id = _block_id("email_header")
    braze.admin.edit_content_block(block_id, content="<header><h1>Example</h1></header>")
    content_sync()
    client = client_for(Role.VIEWER)
    history = client.get(reverse("templates_app:history", args=["content_block", block_id]))
    assert history.status_code == 200
    assert "Seen on sync" in history.content.decode()
    body = client.get(
        reverse("templates_app:version_diff", args=["content_block", block_id]), {"a": 1, "b": 2}
    ).content.decode()
    assert 'class="diff"' in body
    assert "&lt;header&gt;&lt;h1&gt;Example" in body
    assert body.count("<iframe") == 2
    assert "Restore version 1" not in body  # a Viewer cannot propose


def test_restoring_a_version_opens_a_change_request_that_puts_it_back(
    braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    content_sync()
    block_id = _block_id("email_header")
    original = block_named(braze, "email_header")["content"]
    braze.admin.edit_content_block(block_id, content="<header>Oops</header>")
    content_sync()
    client = Client()
    client.force_login(editor)
    response = client.post(
        reverse("templates_app:version_restore", args=["content_block", block_id, 1])
    )
    cr = ChangeRequest.objects.get()
    assert response["Location"] == cr.get_absolute_url()
    assert cr.title.startswith("Restore Content Block email_header to v1")
    assert cr.base_snapshot is not None
    assert cr.base_snapshot["content"] == "<header>Oops</header>"
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert block_named(braze, "email_header")["content"] == original
