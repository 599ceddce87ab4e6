"""A day with the console: the reviewer's home shows what waits and for how long, the author
is told of the approval and the apply (email and signed webhook), and an auditor finds a
Content Block's events in the log by its name, in sentences."""

import hmac
import re
from datetime import timedelta
from hashlib import sha256

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Browser, expect

from console.changes.models import ChangeRequest, ChangeState
from console.services import demo_users_create
from templates_app.services import content_sync
from tests.browser.helpers import open_link, signed_in
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.webhook import WEBHOOK_SECRET, Received, Receiver


def _signed_by_the_secret(received: Received) -> bool:
    timestamp = received.headers["X-Console-Timestamp"]
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + received.body, sha256
    ).hexdigest()
    return hmac.compare_digest(received.headers["X-Console-Signature"], f"sha256={expected}")


@pytest.mark.django_db(transaction=True)
def test_a_block_edit_waits_on_the_reviewers_home_notifies_its_author_and_reads_in_the_log(
    live_server, browser: Browser, braze: SandboxHandle, receiver: Receiver
) -> None:
    demo_users_create()
    content_sync()  # what the scheduled sync would have recorded already
    base = live_server.url

    editor = signed_in(browser, base, "editor")
    editor.get_by_role("navigation", name="Main").get_by_role("link", name="Content blocks").click()
    editor.get_by_role("link", name="legal_notice").click()
    open_link(editor, "Edit")
    editor.get_by_label("Content (HTML)").fill("<p>© 2027 Example Outfitters Ltd.</p>")
    editor.get_by_role("button", name="Send for review").click()
    editor.wait_for_load_state("networkidle")
    cr = ChangeRequest.objects.get()
    assert cr.state == ChangeState.PENDING
    # It has waited since this morning.
    ChangeRequest.objects.filter(pk=cr.pk).update(
        submitted_at=timezone.now() - timedelta(hours=3, minutes=5)
    )

    # The reviewer lands on their home: the request, and how long it has waited.
    reviewer = signed_in(browser, base, "reviewer")
    waiting = reviewer.locator("#reviews")
    expect(waiting.get_by_role("link", name="1 request waiting for my review")).to_be_visible()
    row = waiting.locator(f'tr[data-change="{cr.pk}"]')
    expect(row.get_by_role("link")).to_have_text(f"#{cr.pk} {cr.title}")
    expect(row.get_by_role("cell").nth(1)).to_have_text("Eddie Editor")
    expect(row.locator("td.age")).to_have_text(re.compile(r"^3\s+hours"))
    open_link(reviewer, f"#{cr.pk} {cr.title}")
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("[data-state]")).to_have_text("Applied")

    # The author is told twice, by email and by the signed webhook.
    to_editor = [str(m.subject) for m in mail.outbox if "editor@example.com" in m.bcc]
    assert f"Approved: {cr.title}" in to_editor
    assert f"Applied: {cr.title}" in to_editor
    # Each is delivered by its own task, in whichever order they run.
    events = sorted(r.json["event"] for r in receiver.received)
    assert events == ["change_request.applied", "change_request.approved"]
    assert all(_signed_by_the_secret(r) for r in receiver.received)
    assert {r.json["change_request"]["id"] for r in receiver.received} == {cr.pk}

    # The auditor searches the log for the block's name and reads its events.
    auditor = signed_in(browser, base, "auditor")
    with auditor.expect_navigation(wait_until="load"):  # a field filled earlier is reset
        auditor.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    auditor.get_by_label("Search", exact=True).fill("legal_notice")
    auditor.get_by_role("button", name="Filter").click()
    results = auditor.locator("#results")
    expect(
        results.get_by_role(
            "cell",
            name=f"Eddie Editor proposed an edit to content block legal_notice (change #{cr.pk})",
        )
    ).to_be_visible()
    expect(
        results.get_by_role("cell", name=f"Rita Reviewer approved change #{cr.pk}: {cr.title}")
    ).to_be_visible()
    expect(
        results.get_by_role(
            "cell", name=f"Change #{cr.pk} was applied for Rita Reviewer: {cr.title}"
        )
    ).to_be_visible()
    # The raw action stays beside each sentence.
    expect(results.get_by_role("cell", name="change_request.approved")).to_be_visible()
