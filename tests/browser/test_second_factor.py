"""Second factor in Chromium: an authenticator app and a passkey, each enrolled at the first
password sign-in of a Reviewer (who may do nothing before) and used at the next one. The
passkey is held by Chromium's virtual authenticator, driven through the DevTools protocol."""

import base64
import time
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django_otp.oath import TOTP
from playwright.sync_api import CDPSession, Page, expect

from console.roles import Role
from tests.browser.helpers import totp_code
from tests.factories import TEST_PASSWORD, user_with_role


def _password(page: Page, base_url: str, user: User) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def _code_for_key(key_shown: str) -> str:
    """What an authenticator app given the key on the page would show now."""
    key = base64.b32decode(
        key_shown.replace(" ", "") + "=" * (-len(key_shown.replace(" ", "")) % 8)
    )
    totp = TOTP(key)
    totp.time = time.time()
    return f"{totp.token():06d}"


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_enrols_an_app_keeps_recovery_codes_and_signs_in_with_each(
    live_server, page: Page
) -> None:
    reviewer = user_with_role(Role.REVIEWER)
    _password(page, live_server.url, reviewer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second factor")
    page.goto(f"{live_server.url}/changes/")  # nothing else before the second factor
    assert "/accounts/login/" in page.url
    page.go_back()
    page.reload()

    key = page.locator("[data-totp-secret]").inner_text()
    page.get_by_label("Code from the app").fill(_code_for_key(key))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Recovery codes")
    codes = page.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    _sign_out(page)

    _password(page, live_server.url, reviewer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Second factor")
    page.get_by_label("Code").fill(totp_code(reviewer.username))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    _sign_out(page)

    _password(page, live_server.url, reviewer)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_text("9 unused recovery codes")).to_be_visible()
    _sign_out(page)

    _password(page, live_server.url, reviewer)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not valid")


def _virtual_authenticator(page: Page) -> CDPSession:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_enrols_a_passkey_and_signs_in_with_it(live_server, page: Page) -> None:
    # Browsers take a domain name as the relying party, never an IP address.
    base = live_server.url.replace("127.0.0.1", "localhost")
    assert urlsplit(base).hostname == "localhost"
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    _virtual_authenticator(page)
    reviewer = user_with_role(Role.REVIEWER)

    _password(page, base, reviewer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second factor")
    page.get_by_label("Name").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Recovery codes")
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("cell", name="Laptop", exact=True)).to_be_visible()
    expect(page.get_by_text("This session passed a second factor (passkey)")).to_be_visible()
    _sign_out(page)

    _password(page, base, reviewer)
    expect(page.get_by_role("heading", level=1)).to_have_text("Second factor")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    expect(page.locator(".topbar")).to_contain_text(reviewer.get_full_name())
    assert not [e for e in errors if "Content Security Policy" in e], errors
