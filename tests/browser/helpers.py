from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page

from console.services import demo_password
from tests.factories import totp_code_unused


def totp_code(username: str) -> str:
    """The next code of the person's authenticator app that the console has not seen."""
    return totp_code_unused(TOTPDevice.objects.get(user__username=username, confirmed=True))


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in with the password and, where the console asks for it, a code from the
    person's authenticator app (demo Reviewers and Admins have one)."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    if "/accounts/second-factor/" in page.url:
        page.get_by_label("Code").fill(totp_code(username))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state("networkidle")


def open_link(page: Page, name: str) -> None:
    """Follow the link `name` and wait until the page it opens has loaded: text typed into a
    form while the page is still being parsed is reset when parsing completes (Chromium, on
    a loaded machine), so a test must not fill a form any earlier."""
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("link", name=name).click()


def signed_in(browser: Browser, base_url: str, username: str) -> Page:
    """A new browser context signed in as the demo user ``username``."""
    page = browser.new_context().new_page()
    sign_in(page, base_url, username, demo_password(username))
    return page
