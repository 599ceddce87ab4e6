import pytest
from playwright.sync_api import Page, expect

from console.roles import Role
from console.services import demo_users_create
from tests.browser.helpers import sign_in

ALL_SECTIONS = [
    "Catalogs",
    "Email templates",
    "Content blocks",
    "Preference centers",
    "Content files",
    "Approvals",
    "Audit log",
    "Users",
]
VISIBLE = {
    Role.VIEWER: [
        "Catalogs",
        "Email templates",
        "Content blocks",
        "Preference centers",
        "Content files",
    ],
    Role.EDITOR: [
        "Catalogs",
        "Email templates",
        "Content blocks",
        "Preference centers",
        "Content files",
        "Promote",
        "Approvals",
    ],
    Role.REVIEWER: [
        "Catalogs",
        "Email templates",
        "Content blocks",
        "Preference centers",
        "Content files",
        "Approvals",
    ],
    Role.AUDITOR: ALL_SECTIONS,
    Role.ADMIN: ALL_SECTIONS,
}


@pytest.mark.django_db(transaction=True)
def test_each_demo_user_signs_in_and_sees_the_sections_their_role_allows(
    live_server, page: Page
) -> None:
    accounts = {role: (username, password) for username, password, role in demo_users_create()}
    for role, (username, password) in accounts.items():
        page.context.clear_cookies()
        sign_in(page, live_server.url, username, password)
        expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
        expect(page.locator(".topbar")).to_contain_text(role.value)
        nav = page.get_by_role("navigation", name="Main")
        links = nav.get_by_role("link").all_inner_texts()
        assert [link.strip() for link in links] == VISIBLE[role], role
        # A section the role may open renders; the stylesheet is served from static/.
        nav.get_by_role("link", name=VISIBLE[role][0]).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(VISIBLE[role][0])


@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_shows_an_error_and_keeps_the_user_signed_out(
    live_server, page: Page
) -> None:
    demo_users_create()
    sign_in(page, live_server.url, "editor", "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    assert "/accounts/login/" in page.url


@pytest.mark.django_db(transaction=True)
def test_the_page_runs_htmx_under_the_content_security_policy(live_server, page: Page) -> None:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    demo_users_create()
    sign_in(page, live_server.url, "viewer", "viewer-demo-pass")
    assert page.evaluate("typeof window.htmx") == "object"
    assert not [e for e in errors if "Content Security Policy" in e], errors
