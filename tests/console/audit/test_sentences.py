"""The audit trail reads as sentences: every action has one, people by their display name,
resources by the name kept when the entry was written, links where the object still exists."""

import re
import string

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.audit import events
from console.audit.models import AuditEntry
from console.audit.sentences import SENTENCES, audit_sentence, audit_sentences
from console.audit.services import SYSTEM, audit_append
from console.changes.models import ChangeRequest
from console.changes.services import change_request_approve
from console.roles import Role
from templates_app.kinds import KINDS
from templates_app.models import ContentVersion, ResourceType, VersionSource
from templates_app.services import content_propose
from tests.factories import user_with_role

PLACEHOLDERS = {"actor", "n", "title", "resource", "proposal", "promotion", "workspace"}


def _action_constants() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(events).items()
        if name.isupper() and isinstance(value, str)
    }


def test_every_action_constant_has_a_sentence() -> None:
    """A new action without a sentence fails here, so the log never shows a bare code."""
    missing = sorted(name for name, value in _action_constants().items() if value not in SENTENCES)
    assert missing == []


def test_every_sentence_uses_only_the_known_placeholders() -> None:
    for action, template in SENTENCES.items():
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        assert fields <= PLACEHOLDERS, (action, fields)


@pytest.mark.parametrize("action", sorted(_action_constants().values()))
def test_every_action_renders_as_a_capitalised_sentence_without_its_code(
    db: None, action: str
) -> None:
    actor = user_with_role(Role.EDITOR, first_name="Eddie", last_name="Editor")
    entry = audit_append(
        actor=actor,
        action=action,
        resource_type="catalog",
        resource_id="loyalty_tiers",
        change_request_id=None,
    )
    sentence = audit_sentence(entry)
    assert sentence.text[:1].isupper(), sentence.text
    assert "{" not in sentence.text
    assert action not in sentence.text


def _block_version(braze_id: str, name: str) -> None:
    ContentVersion.objects.create(
        resource_type=ResourceType.CONTENT_BLOCK,
        braze_id=braze_id,
        version=1,
        name=name,
        snapshot={"name": name, "content": "<p>Hi</p>"},
        digest="d",
        source=VersionSource.SYNCED,
    )


def _propose_block(
    editor: User, braze_id: str = "block-1", name: str = "welcome_header"
) -> ChangeRequest:
    return content_propose(
        actor=editor,
        kind=KINDS["content_block"],
        braze_id=braze_id,
        data={"name": name, "content": "<p>Hello</p>", "state": "active"},
        base_snapshot={"name": name, "content": "<p>Hi</p>"},
    )


def test_a_proposal_names_the_person_and_the_content_block_and_links_both(db: None) -> None:
    eddie = user_with_role(Role.EDITOR, first_name="Eddie", last_name="Editor")
    _block_version("block-1", "welcome_header")
    cr = _propose_block(eddie)
    entry = AuditEntry.objects.get(action=events.CHANGE_REQUEST_PROPOSED)
    sentence = audit_sentence(entry)
    assert sentence.text == (
        f"Eddie Editor proposed an edit to content block welcome_header (change #{cr.pk})"
    )
    block_url = reverse("templates_app:content_block_detail", args=["block-1"])
    assert f'<a href="{block_url}">welcome_header</a>' in sentence.html
    assert f'<a href="{cr.get_absolute_url()}">#{cr.pk}</a>' in sentence.html


def test_a_promotion_names_both_workspaces_and_every_part_as_kept(db: None) -> None:
    eddie = user_with_role(Role.EDITOR, first_name="Eddie", last_name="Editor")
    entry = audit_append(
        actor=eddie,
        action=events.BUNDLE_PROMOTED,
        resource_type="content_bundle",
        resource_id="bundle:abc",
        data={
            "source_label": "Staging",
            "target_label": "Production <b>",
            "objects": ["Content Block footer", "Email template Spring Sale"],
        },
    )
    sentence = audit_sentence(entry)
    assert sentence.text.startswith(
        "Eddie Editor promoted 2 objects from Staging to Production <b>: Content Block footer, "
        "Email template Spring Sale (change"
    )
    assert "Production &lt;b&gt;" in sentence.html


def test_the_entry_keeps_the_names_of_the_moment_it_was_written(db: None) -> None:
    """Renaming the request, or the block disappearing, does not rewrite what was recorded."""
    eddie = user_with_role(Role.EDITOR, first_name="Eddie", last_name="Editor")
    rita = user_with_role(Role.REVIEWER, first_name="Rita", last_name="Reviewer")
    cr = _propose_block(eddie)
    change_request_approve(change_request=cr, actor=rita)
    approved = AuditEntry.objects.filter(action=events.CHANGE_REQUEST_APPROVED).get()
    assert approved.data["title"] == "Edit Content Block welcome_header"
    assert approved.data["resource_name"] == "welcome_header"
    ChangeRequest.objects.filter(pk=cr.pk).update(title="Something else")
    sentence = audit_sentence(approved)
    assert (
        sentence.text
        == f"Rita Reviewer approved change #{cr.pk}: Edit Content Block welcome_header"
    )
    # No history of the block in the console: its name is shown, without a link.
    assert "welcome_header</a>" not in sentence.html


def test_an_entry_written_before_names_were_kept_reads_with_what_still_exists(db: None) -> None:
    eddie = user_with_role(Role.EDITOR, first_name="Eddie", last_name="Editor")
    cr = _propose_block(eddie)
    # As the writers wrote it before: the Braze id, and no title or name in the data.
    old = audit_append(
        actor=eddie,
        action=events.CHANGE_REQUEST_APPROVED,
        resource_type="content_block",
        resource_id="block-1",
        change_request_id=cr.pk,
        data={"state": "pending"},
    )
    assert audit_sentence(old).text == (
        f"Eddie Editor approved change #{cr.pk}: Edit Content Block welcome_header"
    )
    gone = audit_append(
        actor=SYSTEM,
        action=events.CONTENT_EXTERNAL_CHANGE,
        resource_type="content_block",
        resource_id="block-9",
    )
    assert (
        audit_sentence(gone).text
        == "Content block block-9 was changed in Braze, outside the console"
    )


def test_a_person_left_the_console_is_named_as_the_entry_recorded_them(db: None) -> None:
    eddie = user_with_role(Role.EDITOR, username="eddie", first_name="Eddie", last_name="Editor")
    entry = audit_append(actor=eddie, action=events.AUTH_SIGN_IN)
    eddie.delete()
    assert audit_sentence(entry).text == "eddie signed in"


def test_requests_about_people_name_nobody(db: None) -> None:
    admin = user_with_role(Role.ADMIN, first_name="Ada", last_name="Admin")
    entry = audit_append(
        actor=admin,
        action=events.CHANGE_REQUEST_PROPOSED,
        resource_type="dashboard_user",
        resource_id="dash-7",
        data={"name": "Ann Example", "title": "Create dashboard user Ann Example"},
    )
    text = audit_sentence(entry).text
    assert "Ann Example" not in text
    assert "dashboard user #dash-7" in text


def test_sentences_for_a_page_take_a_bounded_number_of_queries(db: None) -> None:
    eddie = user_with_role(Role.EDITOR)
    _block_version("block-1", "welcome_header")
    for i in range(5):
        _propose_block(eddie, braze_id=f"block-{i}", name=f"block_{i}")
    for i in range(20):
        audit_append(actor=user_with_role(Role.VIEWER), action=events.AUTH_SIGN_IN, data={"i": i})
    entries = list(AuditEntry.objects.order_by("-seq"))
    one_of_each = [entries[0], entries[-1]]  # a sign-in, a proposal
    with CaptureQueriesContext(connection) as few:
        audit_sentences(one_of_each)
    with CaptureQueriesContext(connection) as many:
        audit_sentences(entries)
    # Actors, change requests, and one query per resource type that links its pages.
    assert len(many.captured_queries) == len(few.captured_queries) <= 3


def test_the_list_shows_sentences_and_the_raw_action(db: None) -> None:
    eddie = user_with_role(Role.EDITOR, first_name="Eddie", last_name="Editor")
    cr = _propose_block(eddie)
    client = Client()
    client.force_login(user_with_role(Role.AUDITOR))
    body = client.get(reverse("audit:list")).content.decode()
    assert "What happened" in body
    assert re.search(r"Eddie Editor proposed an edit to content block welcome_header", body)
    assert "change_request.proposed" in body
    assert f'href="{cr.get_absolute_url()}"' in body


def test_the_entry_page_shows_the_sentence_beside_the_raw_action_and_data(db: None) -> None:
    eddie = user_with_role(Role.EDITOR, first_name="Eddie", last_name="Editor")
    _propose_block(eddie)
    entry = AuditEntry.objects.get(action=events.CHANGE_REQUEST_PROPOSED)
    client = Client()
    client.force_login(user_with_role(Role.AUDITOR))
    body = client.get(reverse("audit:detail", args=[entry.seq])).content.decode()
    assert 'id="sentence"' in body
    assert "Eddie Editor proposed an edit to content block" in body
    assert "<code>change_request.proposed</code>" in body
    assert "&quot;resource_name&quot;: &quot;welcome_header&quot;" in body
