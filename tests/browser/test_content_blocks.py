"""Content in the browser: Braze HTML never runs script, and a Content Block edit goes from
Editor to Reviewer to Braze, with both versions in its history."""

import pytest
from playwright.sync_api import Browser, expect

from console.braze import get_client
from console.changes.models import ChangeRequest, ChangeState
from console.services import demo_users_create
from templates_app.models import ContentVersion
from templates_app.services import content_sync
from tests.browser.helpers import open_link, signed_in
from tests.fixtures.sandbox import SandboxHandle

SCRIPTED = (
    "<html><body><p id='greeting'>Hello from the template</p>"
    "<script>document.getElementById('greeting').textContent = 'SCRIPT RAN';"
    "try { parent.document.title = 'SCRIPT RAN'; } catch (e) {}</script></body></html>"
)


@pytest.mark.django_db(transaction=True)
def test_a_script_in_template_html_never_runs_in_the_preview(
    live_server, browser: Browser, braze: SandboxHandle
) -> None:
    demo_users_create()
    template_id = get_client().email_template_create(
        template_name="Scripted", subject="Hi", body=SCRIPTED
    )
    page = signed_in(browser, live_server.url, "viewer")
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text))
    page.goto(f"{live_server.url}/content/templates/{template_id}/")
    frames = page.locator("iframe")
    expect(frames).to_have_count(2)
    for n in range(2):
        expect(frames.nth(n)).to_have_attribute("sandbox", "")
        inner = page.frame_locator("iframe").nth(n)
        expect(inner.locator("#greeting")).to_have_text("Hello from the template")
    expect(page).not_to_have_title("SCRIPT RAN")
    # The frame's document really is the template, and its script was refused, not absent.
    frame = next(f for f in page.frames if f != page.main_frame)
    assert "SCRIPT RAN" in frame.content()
    assert any("script" in text.lower() for text in blocked), blocked


@pytest.mark.django_db(transaction=True)
def test_an_editor_edits_a_block_a_reviewer_approves_and_history_shows_both_versions(
    live_server, browser: Browser, braze: SandboxHandle
) -> None:
    demo_users_create()
    content_sync()  # what the scheduled sync would have recorded already
    base = live_server.url
    new_content = '<p style="font-size:11px">© 2027 Example Outfitters Ltd.</p>'

    editor = signed_in(browser, base, "editor")
    editor.get_by_role("navigation", name="Main").get_by_role("link", name="Content blocks").click()
    editor.get_by_role("link", name="legal_notice").click()
    open_link(editor, "Edit")
    editor.get_by_label("Content (HTML)").fill(new_content)
    expect(editor.frame_locator("#preview-content iframe").first.locator("p")).to_have_text(
        "© 2027 Example Outfitters Ltd."
    )  # the live preview follows what is typed
    editor.get_by_role("button", name="Send for review").click()
    editor.wait_for_load_state("networkidle")
    cr = ChangeRequest.objects.get()
    assert cr.state == ChangeState.PENDING

    reviewer = signed_in(browser, base, "reviewer")
    reviewer.goto(f"{base}{cr.get_absolute_url()}")
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("[data-state]")).to_have_text("Applied")

    block_id = cr.identifier
    info = get_client().content_block_info(content_block_id=block_id)
    assert info.content == new_content

    reviewer.goto(f"{base}/content/history/content_block/{block_id}/")
    rows = reviewer.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Applied by the console")
    expect(rows.nth(1)).to_contain_text("Seen on sync")
    reviewer.get_by_role("button", name="Compare").click()
    expect(reviewer.locator("table.diff td.add").first).to_contain_text("2027")
    assert ContentVersion.objects.filter(braze_id=block_id).count() == 2
