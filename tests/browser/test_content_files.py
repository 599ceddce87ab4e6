"""Content as files in the browser: an Editor downloads the workspace's files, edits one,
uploads them and reads the one difference; a Reviewer approves and Braze holds the edit."""

import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bundles.appliers import RESOURCE_TYPE
from bundles.archive import content_zip
from console.braze import get_client
from console.changes.models import ChangeRequest, ChangeState
from console.services import demo_password, demo_users_create
from tests.browser.helpers import sign_in
from tests.fixtures.sandbox import SandboxHandle


def _signed_in(browser: Browser, base_url: str, username: str) -> Page:
    page = browser.new_context(accept_downloads=True).new_page()
    sign_in(page, base_url, username, demo_password(username))
    return page


@pytest.mark.django_db(transaction=True)
def test_an_editor_uploads_edited_files_and_a_reviewer_approves_the_one_difference(
    live_server, browser: Browser, braze: SandboxHandle, tmp_path: Path
) -> None:
    demo_users_create()
    base = live_server.url
    editor = _signed_in(browser, base, "editor")
    editor.get_by_role("navigation", name="Main").get_by_role("link", name="Content files").click()
    with editor.expect_download() as download_info:
        editor.get_by_role("link", name="Download the files (zip)").click()
    downloaded = tmp_path / "content.zip"
    download_info.value.save_as(downloaded)
    files = {
        info.filename: zipfile.ZipFile(downloaded).read(info)
        for info in zipfile.ZipFile(downloaded).infolist()
    }
    files["content_blocks/greeting.liquid"] = b"Good day {{${first_name} | default: 'you'}},"
    edited = tmp_path / "edited.zip"
    edited.write_bytes(content_zip(files))

    editor.get_by_label("Zip of the content files").set_input_files(str(edited))
    editor.get_by_role("button", name="Compare and open a change request").click()
    editor.wait_for_load_state("networkidle")
    parts = editor.locator("[data-part]")
    expect(parts).to_have_count(1)
    expect(parts.first).to_contain_text("Update Content Block “greeting”")
    expect(parts.first.locator("td.add").first).to_contain_text("Good day")
    expect(parts.first.locator("[data-part-outcome]")).to_have_text("Not applied yet.")

    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    assert cr.state == ChangeState.DRAFT
    editor.get_by_role("link", name="Back to the change request").click()
    editor.get_by_role("button", name="Submit for review").click()
    editor.wait_for_load_state("networkidle")

    reviewer = _signed_in(browser, base, "reviewer")
    reviewer.goto(f"{base}{cr.get_absolute_url()}")
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("[data-state]")).to_have_text("Applied")
    expect(reviewer.get_by_text('1. Update Content Block "greeting": applied.')).to_be_visible()

    blocks = {b.name: b.content_block_id for b in get_client().content_block_list()}
    info = get_client().content_block_info(content_block_id=blocks["greeting"])
    assert info.content == "Good day {{${first_name} | default: 'you'}},"
