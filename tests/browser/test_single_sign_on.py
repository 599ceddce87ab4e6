import re

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.oidc import Provider


@pytest.mark.django_db(transaction=True)
def test_a_person_signs_in_through_the_providers_page_gets_their_role_and_signs_out(
    live_server, page: Page, oidc_provider: Provider
) -> None:
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name=re.compile("^Sign in with")).click()

    # The provider's own page: choose the person.
    expect(page).to_have_url(re.compile(re.escape(oidc_provider.url) + "/oauth2/authorize"))
    page.get_by_role("button", name="Authorize as alice").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    assert page.url.startswith(live_server.url)
    expect(page.locator(".topbar")).to_contain_text("alice")
    expect(page.locator(".topbar .badge")).to_have_text(["Editor"])

    page.get_by_role("button", name="Sign out").click()
    # The provider ends its session too, then sends the browser back to the console.
    expect(page).to_have_url(re.compile(re.escape(oidc_provider.url) + "/oauth2/end_session"))
    page.get_by_role("button", name="End session").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile("/accounts/login/"))
    assert not csp_errors, csp_errors


@pytest.mark.django_db(transaction=True)
def test_a_person_whose_groups_grant_no_role_sees_why_in_the_browser(
    live_server, page: Page, oidc_provider: Provider
) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name=re.compile("^Sign in with")).click()
    page.get_by_role("button", name="Authorize as carol").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("You were not signed in")
    expect(page.get_by_role("alert")).to_contain_text("in no group that grants a role")
