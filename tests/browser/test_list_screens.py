import pytest
from playwright.sync_api import Page, expect

from console.services import demo_users_create
from tests.browser.helpers import sign_in


@pytest.mark.django_db(transaction=True)
def test_typing_in_a_filter_and_sorting_swap_the_results_in_place(live_server, page: Page) -> None:
    demo_users_create()
    sign_in(page, live_server.url, "admin", "admin-demo-pass")
    page.goto(f"{live_server.url}/users/console/")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(7)  # one demo user per role, two Reviewers, two Admins

    page.get_by_label("Search", exact=True).fill("reviewer")
    expect(rows).to_have_count(2)
    assert "q=reviewer" in page.url  # the filter is in the address, so it can be shared
    page.locator("#results th a").first.click()
    expect(page.locator("#results th[aria-sort]")).to_have_count(1)
    # Each swap replaces the results; it never nests a second results region.
    expect(page.locator("#results")).to_have_count(1)
    expect(page.locator("#results #results")).to_have_count(0)
