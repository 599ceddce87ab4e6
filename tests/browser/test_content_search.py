import pytest
from playwright.sync_api import Page, expect

from console.services import demo_users_create
from templates_app.models import ResourceType, VersionSource
from templates_app.services import version_record
from tests.browser.helpers import sign_in


@pytest.mark.django_db(transaction=True)
def test_a_search_typed_in_the_header_shows_highlighted_matches_and_narrows_in_place(
    live_server, page: Page
) -> None:
    demo_users_create()
    version_record(
        resource_type=ResourceType.EMAIL_TEMPLATE,
        braze_id="t1",
        snapshot={"template_name": "April letter", "body": "<p>Our spring_sale starts</p>"},
        source=VersionSource.SYNCED,
    )
    sign_in(page, live_server.url, "viewer", "viewer-demo-pass")
    box = page.get_by_role("search", name="Content").get_by_label("Search content")
    box.focus()  # reachable and labelled on every page
    box.press_sequentially("spring_sale", delay=20)
    with page.expect_navigation(wait_until="load"):
        box.press("Enter")
    expect(page.locator("#results mark").first).to_have_text("spring_sale")
    # Braze's HTML is shown as text: the tag is visible, never rendered.
    expect(page.locator("#results .snippet")).to_contain_text("<p>Our spring_sale starts</p>")
    page.get_by_label("Kind").select_option("content_block")
    expect(page.locator("#results")).to_contain_text("Nothing found")
    assert "kind=content_block" in page.url  # swapped in place, kept in the address
    expect(page.locator("#results")).to_have_count(1)
